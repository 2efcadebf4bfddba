"""Smoke tests of the peer scenarios (``mirror-copy``, ``mirror-peers``, ``vhost``): well-formed, books exact.

Each runs for a fraction of a second; speed is never asserted.  A scenario whose peer
is missing must still say so in a well-formed line.
"""

from __future__ import annotations

import json
import os

import pytest

from spp.bench.main import main

KEYS = {"scenario", "mpps", "peer", "peer_mpps", "ratio", "unit", "status"}
HAVE_TESTPMD = os.access("/usr/bin/dpdk-testpmd", os.X_OK)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main([*args, "--json", "--seconds", "0.2", "--rounds", "1"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    for obj in lines:
        assert obj.keys() >= KEYS
    return code, lines


def test_mirror_copy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "mirror-copy")
    assert code == 0, out
    assert [r["size"] for r in out] == [64, 1500]
    for r in out:
        assert r["scenario"] == "mirror-copy" and r["exact"] is True
        assert r["mpps"] > 0 and r["peer_mpps"] > 0  # type: ignore[operator]
        assert r["ratio"] == pytest.approx(r["mpps"] / r["peer_mpps"], rel=1e-2)  # type: ignore[operator]


@pytest.mark.root
@pytest.mark.skipif(not HAVE_TESTPMD, reason="dpdk-testpmd not installed (it is the guest)")
def test_vhost_both_directions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "vhost")
    assert code == 0, out
    assert [r["direction"] for r in out] == ["to-guest", "from-guest"]
    for r in out:
        assert r["exact"] is True and r["native"] is True  # the compiled loop drives vhost:0
        assert r["mpps"] > 0 and r["peer_mpps"] > 0  # type: ignore[operator]
        assert "net_vhost0" in str(r["peer_command"]) and "net_virtio_user0" in str(r["guest_command"])
    assert not [p for p in os.listdir("/tmp") if p.startswith("spbv") and p.endswith(f"{os.getpid() % 100000}.sock")]


def test_vhost_without_peer(capsys: pytest.CaptureFixture[str]) -> None:
    if not HAVE_TESTPMD:
        code, out = run_json(capsys, "vhost")
        assert code == 2 and out[0]["status"] == "not-runnable" and "dpdk" in str(out[0]["reason"])
        return
    code, out = run_json(capsys, "vhost", "--no-peer")
    assert code == 0, out
    assert all(r["peer"] is None and r["ratio"] is None and r["exact"] is True for r in out)


@pytest.mark.root
def test_mirror_peers(capsys: pytest.CaptureFixture[str]) -> None:
    from spp.bench.mirror_peers import ovs_missing

    code, out = run_json(capsys, "mirror-peers", "--rate", "0.05")
    assert code == 0, out
    assert [r["versus"] for r in out] == ["tc", "ovs"]
    for r in out:
        assert r["exact"] is True and r["offered_mpps"] == 0.05
        assert r["mpps"] > 0 and r["mirrored_mpps"] > 0  # type: ignore[operator]
        assert 0 <= r["loss"] <= 1 and 0 <= r["mirror_loss"] <= 1  # type: ignore[operator]
    tc, ovs = out
    assert tc["peer_mpps"] > 0 and tc["peer_mirrored_mpps"] > 0  # type: ignore[operator]
    if ovs_missing() is None and "another Open vSwitch" not in str(ovs.get("peer_error")):
        assert ovs["peer_mpps"] > 0 and ovs["peer_mirrored_mpps"] > 0, ovs  # type: ignore[operator]
    else:
        assert ovs["peer"] is None and ovs["peer_error"]
    tag = f"{os.getpid() % 10000}"
    assert not [n for n in os.listdir("/sys/class/net") if n.endswith(tag) and n.startswith("spm")]
    assert not os.path.exists("/sys/class/net/ovs-netdev")
