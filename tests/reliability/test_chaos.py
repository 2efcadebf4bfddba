"""Chaos: kill -9 any spp process under traffic, again and again; the pool never leaks.

The stack classifies and mirrors (spp-vf 1: ``gen`` nullpmd:0 → ring:0, ``cls`` classifier
ring:0 → ring:1 (default); spp-mirror 2: ``mir`` mirror ring:1 → ring:2, ring:3;
spp-vf 3: ``out`` merge ring:2, ring:3 → nullpmd:1).  Each round SIGKILLs one of vf 1,
mirror 2, vf 3 or the primary at a random moment, restarts it and applies its
configuration again.  Afterwards every survivor stops gracefully, and:

* the pool is whole: what is in use is exactly what the rings hold, and nothing was
  freed twice;
* nothing stranded: every buffer in use is in a ring.

(Counters are not compared across a kill: a compiled worker publishes its counters
once per call, so a process killed mid-call takes up to one call's counts with it.)

``SPP_CHAOS_ROUNDS`` sets the rounds (CI: 4; by hand: ``SPP_CHAOS_ROUNDS=100 pytest -s
tests/reliability/test_chaos.py``).
"""

from __future__ import annotations

import os
import random
import signal
import sys
from typing import Any

import httpx

from spp.cli.stack import LocalStack
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import TX_PACKETS
from spp.testing import wait_for

ROUNDS = int(os.environ.get("SPP_CHAOS_ROUNDS", "4"))
SECONDARY = "import sys; from spp.control.secondary import {0}; sys.exit({0}())"


def ok(http: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == 204, (method, path, body, response.text)


def component(http: httpx.Client, kind: str, cid: int, name: str, ctype: str,
              ports: list[tuple[str, str]]) -> None:
    ok(http, "POST", f"/v1/{kind}s/{cid}/components", {"name": name, "core": 1, "type": ctype})
    for port, d in ports:
        ok(http, "PUT", f"/v1/{kind}s/{cid}/components/{name}/ports", {"action": "attach", "port": port, "dir": d})


def configure(http: httpx.Client, name: str) -> None:
    """Apply process ``name``'s part of the scenario (as an operator would after a restart)."""
    if name == "vf1":
        component(http, "vf", 1, "gen", "forward", [("nullpmd:0", "rx"), ("ring:0", "tx")])
        component(http, "vf", 1, "cls", "classifier", [("ring:0", "rx"), ("ring:1", "tx")])
        ok(http, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "add", "type": "mac", "mac_address": "default", "port": "ring:1"})
    elif name == "mirror2":
        component(http, "mirror", 2, "mir", "mirror", [("ring:1", "rx"), ("ring:2", "tx"), ("ring:3", "tx")])
    elif name == "vf3":
        component(http, "vf", 3, "out", "merge", [("ring:2", "rx"), ("ring:3", "rx"), ("nullpmd:1", "tx")])


def start(stack: LocalStack, name: str) -> None:
    kind, cid = ("mirror", 2) if name == "mirror2" else ("vf", int(name[2:]))
    main = "main_mirror" if kind == "mirror" else "main_vf"
    stack.spawn(name, [sys.executable, "-c", SECONDARY.format(main), "--client-id", str(cid), "-s",
                       stack.secondary_addr, "--file-prefix", stack.prefix, "-l", "0,1", "--no-pin"])
    stack.wait_process({"type": kind, "client-id": cid}, 120, check=name)


def delivered(dp: Dataplane) -> int:
    return int(dp.stats[dp.port_slot("nullpmd", 1)][TX_PACKETS])


def test_kill_anything_under_traffic_pool_stays_whole() -> None:
    rng = random.Random(int(os.environ.get("SPP_CHAOS_SEED", "7")))
    with LocalStack() as stack:
        stack.start_ctl(reply_timeout=120)
        stack.start_primary(extra=["--pool-size", "4096", "--rings", "8", "--ring-size", "256"])
        dp = Dataplane.attach(stack.prefix)
        try:
            with httpx.Client(base_url=stack.url, timeout=150) as http:
                names = ["vf1", "mirror2", "vf3"]
                for name in names:
                    start(stack, name)
                    configure(http, name)
                before = delivered(dp)
                wait_for(lambda: delivered(dp) > before + 1000, timeout=120, message="traffic end to end")
                primaries = 1
                for _ in range(ROUNDS):
                    victim = rng.choice([*names, "primary"])
                    wait_for(lambda: True, timeout=rng.uniform(0.01, 0.3))  # a random moment
                    if victim == "primary":
                        proc = stack.procs[f"spp-primary{'' if primaries == 1 else f'-{primaries}'}"]
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        primaries += 1
                        wait_for(lambda: {"type": "primary"} not in (stack.processes() or []), timeout=60,
                                 message="spp-ctl to drop the primary")
                        stack.spawn(f"spp-primary-{primaries}", [
                            sys.executable, "-m", "spp.control.primary", "-s", f"{stack.host}:{stack.pri_port}",
                            "--file-prefix", stack.prefix])
                        stack.wait_process({"type": "primary"}, 60, check=f"spp-primary-{primaries}")
                    else:
                        stack.procs[victim].send_signal(signal.SIGKILL)
                        stack.procs[victim].wait()
                        kind, cid = ("mirror", 2) if victim == "mirror2" else ("vf", int(victim[2:]))
                        entry = {"type": kind, "client-id": cid}
                        wait_for(lambda e=entry: e not in (stack.processes() or []),  # type: ignore[misc]
                                 timeout=60, message=f"spp-ctl to drop {victim}")
                        start(stack, victim)
                        configure(http, victim)
                    mark = delivered(dp)
                    wait_for(lambda m=mark: delivered(dp) > m + 1000, timeout=120,  # type: ignore[misc]
                             message=f"traffic after killing {victim}")
                # every dead process handled: the primary has reclaimed (or found nothing to reclaim)
                wait_for(lambda: all(int(dp.members[r, 0]) == 0 or _alive(dp, r) for r in range(64)),
                         timeout=30, message="the primary to handle every dead process")
                for name, path in [("vf1", "/v1/vfs/1"), ("mirror2", "/v1/mirrors/2"), ("vf3", "/v1/vfs/3")]:
                    ok(http, "DELETE", path)
                    assert stack.procs[name].wait(30) == 0
                queued = sum(int(ringcore.ring_count(dp.ring_ctrl[i])) for i in range(dp.layout.n_rings))
                reclaimed = http.get("/v1/primary/status").json()["pool"]["reclaimed"]
                print(f"chaos: {ROUNDS} kills, {reclaimed} buffers reclaimed, "
                      f"{queued} queued, {dp.in_use} in use, {dp.double_frees} double frees")
                assert dp.in_use == queued
                assert dp.double_frees == 0
        finally:
            dp.close()


def _alive(dp: Dataplane, row: int) -> bool:
    from spp.runtime import members

    return members.start_time(int(dp.members[row, members.W_PID])) == int(dp.members[row, members.W_START])
