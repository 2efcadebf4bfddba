"""spp-primary: unit tests of its command handling, and over real TCP with spp-ctl."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from spp.cli.stack import LocalStack
from spp.control.primary import Primary, parse_options
from spp.ports.base import PortId
from spp.ports.ring import RingPort
from spp.runtime.dataplane import Dataplane
from spp.runtime.shm import segment_path
from spp.testing import wait_for

FAKE = str(Path(__file__).with_name("fake_vf.py"))


# -- in-process ---------------------------------------------------------------------


def test_status_shape_and_counters(dp: Dataplane) -> None:
    primary = Primary(dp, phy=["lo"])
    ring = RingPort(dp, PortId("ring", 3))
    bufs = np.empty(4, np.int32)
    assert dp.alloc(bufs) == 4
    for b in bufs:
        dp.write_frame(int(b), b"\x00" * 60)
    assert ring.tx_burst(bufs, 4) == 4
    reply = primary.handle("status")
    assert reply["results"] == [{"result": "success"}]
    info = reply["info"]
    assert info["phy_ports"][0]["port"] == "phy:0"
    assert info["phy_ports"][0]["iface"] == "lo"
    assert set(info["phy_ports"][0]["stats"]) >= {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drops"}
    (entry,) = info["ring_ports"]
    assert entry["port"] == "ring:3" and entry["count"] == 4
    assert entry["stats"]["tx_packets"] == 4 and entry["stats"]["tx_bytes"] == 240
    assert info["pool"] == {"n_bufs": dp.n_bufs, "free": dp.n_bufs - 4, "in_use": 4, "reclaimed": 0}
    assert info["processes"] == []
    # clear zeroes counters; port del drains the ring back into the pool
    assert primary.handle("clear") == {"results": [{"result": "success"}]}
    assert primary.handle("status")["info"]["ring_ports"][0]["stats"]["tx_packets"] == 0
    assert primary.handle("port del ring:3")["results"][0]["result"] == "success"
    assert dp.free_count == dp.n_bufs
    assert primary.handle("status")["info"]["ring_ports"] == []
    assert primary.handle("port add ring:5")["results"][0]["result"] == "success"
    assert [r["port"] for r in primary.handle("status")["info"]["ring_ports"]] == ["ring:5"]
    primary.handle("port del ring:5")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("frobnicate", "unknown command 'frobnicate' for spp-primary: expected one of status, add, del, port"),
        ("port add phy:0", "phy:0 needs no add"),
        ("port add ring:999", "out of range"),
        ("port del ring:1", "not in use"),
        ("launch x spp_vf {}", "invalid client id 'x': must be an integer"),
        ("launch 1 spp_foo {}", "unknown process 'spp_foo': expected spp_nfv, spp_vf, spp_mirror or spp_pcap"),
        ("launch 1 spp_vf {nope", "not JSON"),
        ("patch ring:0 ring:1", "patch source ring:0 is not a port of spp-primary: add ring:0 first"),
        ("forward", "nothing to forward: no patch"),
        ("add ring:999", "ring:999 out of range"),
    ],
)
def test_errors_are_spp_error_replies(dp: Dataplane, command: str, message: str) -> None:
    reply = Primary(dp).handle(command)
    (result,) = reply["results"]
    assert result["result"] == "error"
    assert message in result["error_details"]["message"]


def test_options_native_and_dpdk_forms() -> None:
    opts = parse_options(["-s", "10.0.0.1:5556", "--phy", "a,b", "--file-prefix", "x", "--rings", "4"])
    assert opts.server == ("10.0.0.1", 5556) and opts.phy == ["a", "b"] and opts.layout.n_rings == 4
    opts = parse_options(["-l", "1", "-n", "4", "--file-prefix", "y", "--", "-p", "0x02", "-n", "10",
                          "-s", "127.0.0.1:5555", "--phy", "a,b"])
    assert opts.file_prefix == "y" and opts.lcores == [1] and opts.layout.n_rings == 10 and opts.phy == ["b"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-s", "host:port"], "expected HOST:PORT"),
        (["--ring-size", "100"], "power of two"),
        (["--phy", "a", "-p", "0x3"], "--phy names 1"),
        (["--program", "foo=x"], "KIND=COMMAND with KIND one of nfv, vf, mirror, pcap"),
    ],
)
def test_bad_options_explain(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_options(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_interface_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    from spp.control.primary import main

    assert main(["--phy", "lo,nosuchif0", "--file-prefix", "never"]) == 2
    err = capsys.readouterr().err
    assert "no network interface 'nosuchif0'" in err
    assert not segment_path("never", "dataplane").exists()


# -- over TCP with a real spp-ctl ----------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl()
        programs = [f"--program=vf={sys.executable} {FAKE} --kind vf",
                    f"--program=mirror={sys.executable} {FAKE} --kind mirror"]
        local.start_primary(extra=["--pool-size", "1024", "--rings", "8", "--ring-size", "64", *programs])
        yield local
    assert not segment_path(local.prefix, "dataplane").exists()


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


def test_primary_over_rest(stack: LocalStack, http: httpx.Client) -> None:
    status = http.get("/v1/primary/status").json()
    assert status["pool"] == {"n_bufs": 1024, "free": 1024, "in_use": 0, "reclaimed": 0}
    assert status["file_prefix"] == stack.prefix
    assert http.put("/v1/primary/ports", json={"action": "add", "port": "ring:2"}).status_code == 204
    assert [r["port"] for r in http.get("/v1/primary/status").json()["ring_ports"]] == ["ring:2"]
    assert http.put("/v1/primary/ports", json={"action": "del", "port": "ring:2"}).status_code == 204
    response = http.put("/v1/primary/ports", json={"action": "del", "port": "ring:2"})
    assert response.status_code == 400 and "ring:2 is not in use" in response.text
    assert http.delete("/v1/primary/status").status_code == 204


def test_launch_tracks_and_stops_children(stack: LocalStack, http: httpx.Client) -> None:
    body = {"proc_name": "spp_vf", "client_id": 2, "eal": {"-l": "1,2", "-m": 512},
            "app": {"-s": stack.secondary_addr, "--client-id": 2}}
    assert http.put("/v1/primary/launch", json=body).status_code == 204
    mirror = {"proc_name": "spp_mirror", "client_id": 3, "eal": {"-l": "1,3"},
              "app": {"-s": stack.secondary_addr, "--copy": "deep"}}
    assert http.put("/v1/primary/launch", json=mirror).status_code == 204
    wait_for(lambda: {"type": "vf", "client-id": 2} in http.get("/v1/processes").json(), timeout=20)
    wait_for(lambda: {"type": "mirror", "client-id": 3} in http.get("/v1/processes").json(), timeout=20)
    procs = http.get("/v1/primary/status").json()["processes"]
    assert [(p["proc_name"], p["client_id"], p["alive"]) for p in procs] == [("vf", 2, True), ("mirror", 3, True)]
    assert f"--file-prefix {stack.prefix} -l 1,2" in procs[0]["command"]
    assert "--copy deep" in procs[1]["command"]
    again = http.put("/v1/primary/launch", json=body)
    assert again.status_code == 400 and "already running" in again.text
    # a secondary that exits is reaped and reported with its code
    assert http.delete("/v1/vfs/2").status_code == 204
    wait_for(lambda: not http.get("/v1/primary/status").json()["processes"][0]["alive"], timeout=10)
    # the primary's exit stops the remaining child and removes the segment
    assert http.delete("/v1/primary").status_code == 204
    wait_for(lambda: stack.procs["spp-primary"].poll() is not None, timeout=15)
    assert stack.procs["spp-primary"].returncode == 0
    assert not segment_path(stack.prefix, "dataplane").exists()
    wait_for(lambda: http.get("/v1/processes").json() == [], timeout=10)


def test_sigterm_removes_segment_and_reconnects(stack: LocalStack, http: httpx.Client) -> None:
    assert segment_path(stack.prefix, "dataplane").exists()
    # spp-ctl restarts: the primary reconnects by itself
    stack.stop_one("spp-ctl")
    stack.start_ctl()
    stack.wait_process({"type": "primary"}, 20)
    assert json.loads(http.get("/v1/primary/status").text)["pool"]["in_use"] == 0
    assert stack.stop_one("spp-primary") == 0
    assert not segment_path(stack.prefix, "dataplane").exists()
