"""spp-nfv's commands in process, over rings: patches, forward/stop, a patch change without loss, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from nfv_helpers import put, take

from spp.control.nfv import Nfv
from spp.ports.base import open_port
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.packets import frame_number, numbered

OK = {"results": [{"result": "success"}], "result": "succeeded"}


def ok(nfv: Nfv, *lines: str) -> None:
    for line in lines:
        reply = nfv.execute(line)
        assert reply.get("results") == [{"result": "success"}], (line, reply)


def err(nfv: Nfv, line: str) -> str:
    reply: dict[str, Any] = nfv.execute(line)
    result = reply["results"][0]
    assert result["result"] == "error", (line, reply)
    message: str = result["error_details"]["message"]
    return message


@pytest.fixture
def nfv(dp: Dataplane) -> Any:
    dp.set_config({"phy": []})
    n = Nfv(dp, 1, [0, 1], pin=False)
    yield n
    n.exit()
    for r in range(4):
        drain_ring(dp, r)


def test_patch_forward_status(dp: Dataplane, nfv: Nfv) -> None:
    ok(nfv, "add ring:0", "add ring:1", "patch ring:0 ring:1")
    assert nfv.execute("status") == {"client-id": 1, "status": "idling", "master-lcore": 0, "lcores": [0, 1],
                                     "ports": ["ring:0", "ring:1"],
                                     "patches": [{"src": "ring:0", "dst": "ring:1"}]}
    assert nfv.execute("forward") == {**OK, "command": "forward"}
    assert nfv.execute("status")["status"] == "running"
    r0, r1 = open_port(dp, "ring:0"), open_port(dp, "ring:1")
    frames = [numbered(i) for i in range(100)]
    put(dp, r0, frames)
    assert take(dp, r1, 100) == frames
    ok(nfv, "stop")
    assert nfv.execute("status")["status"] == "idling"
    put(dp, r0, frames[:5])  # stopped: they wait in ring:0
    ok(nfv, "forward")
    assert take(dp, r1, 5) == frames[:5]
    ok(nfv, "patch reset")
    assert nfv.execute("status")["patches"] == []
    ok(nfv, "stop", "del ring:0", "del ring:1")
    assert nfv.execute("status")["ports"] == []


def test_patch_change_while_forwarding_loses_nothing(dp: Dataplane, nfv: Nfv) -> None:
    """Each burst of 200 frames is still in flight (in ring:0 or the worker's buffers) when the patch moves."""
    ok(nfv, "add ring:0", "add ring:1", "add ring:2", "patch ring:0 ring:1", "forward")
    r0, r1, r2 = (open_port(dp, f"ring:{i}") for i in range(3))
    got: list[bytes] = []
    total = 0
    for round_ in range(10):
        put(dp, r0, [numbered(i) for i in range(total, total + 200)])
        total += 200
        ok(nfv, f"patch ring:0 ring:{2 if round_ % 2 == 0 else 1}")

        def all_in(want: int = total) -> bool:
            for port in (r1, r2):
                got.extend(take_some(dp, port))
            return len(got) >= want

        wait_for(all_in, timeout=60, message=lambda want=total: f"{want} frames (got {len(got)})")
    assert sorted(frame_number(f) for f in got) == list(range(total))
    assert nfv.execute("status")["patches"] == [{"src": "ring:0", "dst": "ring:1"}]
    stats = nfv.panel.stats()
    assert all(not v["drops"] for v in (*stats["patches"].values(), *stats["ports"].values())), stats


def take_some(dp: Dataplane, port: Any) -> list[bytes]:
    bufs = np.empty(32, np.int32)
    k = port.rx_burst(bufs)
    out = [dp.frame(int(b)) for b in bufs[:k]]
    dp.free(bufs, k)
    return out


BAD = [
    ("frobnicate", "unknown command 'frobnicate'"),
    ("patch ring:0", "wrong number of arguments for 'patch'"),
    ("add", "wrong number of arguments for 'add'"),
    ("status now", "wrong number of arguments for 'status'"),
    ("add ring:999", "cannot add ring:999"),
    ("add foo:1", "unknown port type 'foo'"),
    ("add ring:x", "invalid port 'ring:x'"),
    ("patch ring:5 ring:0", "patch source ring:5 is not a port of spp-nfv 1: add ring:5 first"),
    ("patch phy:7 ring:0", "patch source phy:7 is not a port of spp-nfv 1"),
    ("forward", "nothing to forward: no patch"),
    ("del ring:3", "ring:3 is not added"),
    ("add phy:0", "phy:0 needs no add"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_input_one_error_no_change(nfv: Nfv, line: str, message: str) -> None:
    ok(nfv, "add ring:0")
    before = nfv.execute("status")
    assert message in err(nfv, line)
    assert nfv.execute("status") == before


def test_del_patched_port_refused(nfv: Nfv) -> None:
    ok(nfv, "add ring:0", "add ring:1", "patch ring:0 ring:1")
    assert "ring:1 is patched (ring:0 -> ring:1): patch reset first" in err(nfv, "del ring:1")
    assert "ring:0 is already added" in err(nfv, "add ring:0")


def test_command_lines_ours_and_spps() -> None:
    from spp.control.nfv import parse_args

    o = parse_args(["-l", "0,1", "-n", "4", "--proc-type", "secondary", "--file-prefix", "x", "--", "-n", "2",
                    "-s", "10.0.0.1:7777"])
    assert (o.client_id, o.host, o.port, o.cores, o.file_prefix) == (2, "10.0.0.1", 7777, [0, 1], "x")
    o = parse_args(["--client-id", "3", "-l", "2-3"])
    assert (o.client_id, o.cores, o.file_prefix) == (3, [2, 3], "spp")


@pytest.mark.parametrize(("argv", "message"), [
    (["-l", "0,1"], "the following arguments are required: --client-id/-n"),
    (["-n", "x"], "invalid client id 'x'"),
    (["-n", "1", "-l", "3-1"], "the range must go upwards"),
    (["-n", "1", "-s", "nohost"], "expected HOST:PORT"),
])
def test_bad_command_lines(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from spp.control.nfv import parse_args

    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err
