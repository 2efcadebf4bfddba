"""kill -9 under traffic: spp-ctl, spp-primary and two spp-vf as real processes.

* a killed secondary disappears from ``GET /v1/processes``; the other keeps
  forwarding; the primary gives back the buffers it held (``pool.reclaimed``);
  restarted with the same client id it re-registers and takes commands again;
* a killed primary disappears from ``GET /v1/processes``; the secondaries keep the
  mapping and keep forwarding; a new primary on the same ``--file-prefix`` adopts
  the live stack (same pool, rings and counters) and the secondaries go on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spp.cli.stack import LocalStack
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.shm import segment_path
from spp.runtime.stats import TX_PACKETS
from spp.testing import wait_for

VF = "import sys; from spp.control.secondary import main_vf; sys.exit(main_vf())"


@pytest.fixture
def local() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        stack.start_ctl(reply_timeout=120)
        stack.start_primary(extra=["--pool-size", "2048", "--rings", "4", "--ring-size", "256"])
        yield stack
    assert not segment_path(stack.prefix, "dataplane").exists()


def start_vf(stack: LocalStack, cid: int) -> subprocess.Popen[bytes]:
    proc = stack.spawn(f"vf{cid}", [sys.executable, "-c", VF, "--client-id", str(cid), "-s", stack.secondary_addr,
                                     "--file-prefix", stack.prefix, "-l", "0,1", "--no-pin"])
    stack.wait_process({"type": "vf", "client-id": cid}, 120, check=f"vf{cid}")
    return proc


def ok(http: httpx.Client, method: str, path: str, body: dict[str, Any]) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == 204, (path, body, response.text)


def forward(http: httpx.Client, cid: int, name: str, rx: str, tx: str) -> None:
    ok(http, "POST", f"/v1/vfs/{cid}/components", {"name": name, "core": 1, "type": "forward"})
    ok(http, "PUT", f"/v1/vfs/{cid}/components/{name}/ports", {"action": "attach", "port": rx, "dir": "rx"})
    ok(http, "PUT", f"/v1/vfs/{cid}/components/{name}/ports", {"action": "attach", "port": tx, "dir": "tx"})


def sent(dp: Dataplane, port: str) -> int:
    ptype, index = port.split(":")
    return int(dp.stats[dp.port_slot(ptype, int(index))][TX_PACKETS])


def growing(dp: Dataplane, port: str) -> bool:
    before = sent(dp, port)
    return bool(wait_for(lambda: sent(dp, port) > before + 1000, timeout=60, message=f"{port} to keep sending"))


def listed(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.processes() or []


def test_kill_secondary_then_primary(local: LocalStack) -> None:
    dp = Dataplane.attach(local.prefix)
    try:
        start_vf(local, 1)
        start_vf(local, 2)
        with httpx.Client(base_url=local.url, timeout=150) as http:
            forward(http, 1, "gen", "nullpmd:0", "ring:0")
            forward(http, 1, "out", "ring:0", "nullpmd:1")
            forward(http, 2, "fwd", "nullpmd:2", "nullpmd:3")
            # generous: a child compiles the data path when numba's cache is stale
            wait_for(lambda: sent(dp, "nullpmd:1") > 0 and sent(dp, "nullpmd:3") > 0, timeout=180,
                     message="first traffic through both secondaries")

            # kill -9 vf 1 under traffic
            dead = local.procs["vf1"].pid
            local.procs["vf1"].send_signal(signal.SIGKILL)
            local.procs["vf1"].wait()
            wait_for(lambda: {"type": "vf", "client-id": 1} not in listed(local), timeout=60,
                     message="spp-ctl to drop vf 1")
            assert http.get("/v1/vfs/1").status_code == 404
            growing(dp, "nullpmd:3")  # the survivor keeps forwarding
            # what vf 1 held (bursts in flight) goes back to the pool; ring:0's content stays queued
            # (often nothing: a compiled worker holds no buffer between two calls of its loop)
            wait_for(lambda: f"held by dead pid {dead};" in local.log_tail("spp-primary", 50), timeout=30,
                     message=lambda: "the primary to reclaim what vf 1 held:\n" + local.log_tail("spp-primary"))

            # same client id again: re-registers and takes commands
            start_vf(local, 1)
            assert http.get("/v1/vfs/1").json()["components"] == [{"core": 1, "type": "unuse"}]
            before = sent(dp, "nullpmd:1")
            forward(http, 1, "gen", "nullpmd:0", "ring:0")
            forward(http, 1, "out", "ring:0", "nullpmd:1")
            wait_for(lambda: sent(dp, "nullpmd:1") > before, timeout=120, message="vf 1 forwarding again")

            # kill -9 the primary: spp-ctl drops it; the secondaries hold the mapping and keep forwarding
            local.procs["spp-primary"].send_signal(signal.SIGKILL)
            local.procs["spp-primary"].wait()
            wait_for(lambda: {"type": "primary"} not in listed(local), timeout=60,
                     message="spp-ctl to drop the primary")
            assert http.get("/v1/primary/status").status_code in (404, 502, 503)
            growing(dp, "nullpmd:1")
            growing(dp, "nullpmd:3")
            assert http.get("/v1/vfs/2").status_code == 200  # secondaries still take commands

            # a new primary on the same prefix adopts the live stack: the secondaries notice nothing
            local.spawn("spp-primary-2", [sys.executable, "-m", "spp.control.primary", "-s",
                                          f"{local.host}:{local.pri_port}", "--file-prefix", local.prefix])
            local.wait_process({"type": "primary"}, 60, check="spp-primary-2")
            status = http.get("/v1/primary/status")
            assert status.status_code == 200, status.text
            assert status.json()["pool"]["in_use"] > 0  # the same pool, in use by the running secondaries
            growing(dp, "nullpmd:1")
            growing(dp, "nullpmd:3")
            # orderly end: the secondaries exit on request and give their buffers back
            for cid in (1, 2):
                assert http.delete(f"/v1/vfs/{cid}").status_code == 204
            for cid in (1, 2):
                assert local.procs[f"vf{cid}"].wait(30) == 0
            # nothing runs now: every buffer in use is queued in a ring; nothing stayed stranded
            queued = sum(int(ringcore.ring_count(dp.ring_ctrl[i])) for i in range(dp.layout.n_rings))
            reclaimed = http.get("/v1/primary/status").json()["pool"]["reclaimed"]
            print(f"after kill -9 of vf 1 and of the primary: {reclaimed} buffers reclaimed, "
                  f"{queued} queued in rings, {dp.in_use - queued} stranded")
            assert dp.in_use == queued, (dp.pool_ctrl[[0, 8, 16, 24]], local.log_tail("spp-primary-2", 30))
            assert dp.double_frees == 0
    finally:
        dp.close()


def test_primary_stopped_while_a_secondary_runs(local: LocalStack) -> None:
    """SIGTERM of the primary leaves the segment to the running vf; the next primary adopts it."""
    path = segment_path(local.prefix, "dataplane")
    dp = Dataplane.attach(local.prefix)
    try:
        start_vf(local, 1)
        with httpx.Client(base_url=local.url, timeout=150) as http:
            forward(http, 1, "fwd", "nullpmd:0", "nullpmd:1")
            wait_for(lambda: sent(dp, "nullpmd:1") > 0, timeout=180, message="first traffic")
            assert local.stop_one("spp-primary") == 0
            assert path.exists()  # vf 1 still maps it: not removed under it
            growing(dp, "nullpmd:1")
            local.spawn("spp-primary-2", [sys.executable, "-m", "spp.control.primary", "-s",
                                          f"{local.host}:{local.pri_port}", "--file-prefix", local.prefix])
            local.wait_process({"type": "primary"}, 60, check="spp-primary-2")
            assert http.get("/v1/primary/status").status_code == 200
            growing(dp, "nullpmd:1")  # the vf never noticed
            assert http.delete("/v1/vfs/1").status_code == 204
            assert local.procs["vf1"].wait(30) == 0
    finally:
        dp.close()


def test_an_adopting_primary_knows_what_the_old_one_launched(local: LocalStack) -> None:
    """kill -9 of a primary that launched a vf: the next primary lists it, refuses a second one, stops it."""
    with httpx.Client(base_url=local.url, timeout=150) as http:
        body = {"proc_name": "spp_vf", "client_id": 2, "eal": {"-l": "0,1"}, "app": {"-s": local.secondary_addr}}
        assert http.put("/v1/primary/launch", json=body).status_code == 204
        wait_for(lambda: {"type": "vf", "client-id": 2} in listed(local), timeout=120, message="vf 2 registered")
        [launched] = http.get("/v1/primary/status").json()["processes"]
        local.procs["spp-primary"].send_signal(signal.SIGKILL)
        local.procs["spp-primary"].wait()
        wait_for(lambda: {"type": "primary"} not in listed(local), timeout=60, message="spp-ctl to drop the primary")
        local.spawn("spp-primary-2", [sys.executable, "-m", "spp.control.primary", "-s",
                                      f"{local.host}:{local.pri_port}", "--file-prefix", local.prefix])
        local.wait_process({"type": "primary"}, 60, check="spp-primary-2")
        [adopted] = http.get("/v1/primary/status").json()["processes"]
        assert (adopted["proc_name"], adopted["client_id"], adopted["pid"], adopted["alive"]) == (
            "vf", 2, launched["pid"], True)
        assert adopted["command"].endswith(launched["command"].split(" ", 1)[1])  # same options
        assert "adopted vf 2 (pid" in local.log_tail("spp-primary-2", 50)
        again = http.put("/v1/primary/launch", json=body)
        assert again.status_code == 400 and "already running" in again.text
        # the new primary's exit stops what the old one launched, and the segment goes with them
        assert http.delete("/v1/primary").status_code == 204
        wait_for(lambda: local.procs["spp-primary-2"].poll() is not None, timeout=30)
        assert local.procs["spp-primary-2"].returncode == 0
        wait_for(lambda: ended(launched["pid"]), timeout=15, message="vf 2 stopped")


def ended(pid: int) -> bool:
    """Process ``pid`` is gone or a zombie (its parent, the killed primary, cannot reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True
