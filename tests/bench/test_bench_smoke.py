"""``spp bench`` runs each scenario briefly and prints well-formed results.  Speed is never asserted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spp.bench.common import dpdk_runtime_dir
from spp.bench.main import main
from spp.testing import wait_for

KEYS = {"scenario", "mpps", "peer", "peer_mpps", "ratio", "unit", "status", "native"}
HAVE_TESTPMD = os.access("/usr/bin/dpdk-testpmd", os.X_OK)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main([*args, "--json", "--seconds", "0.2", "--rounds", "1"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    for obj in lines:
        assert obj.keys() >= KEYS
        if obj["status"] == "ok":
            assert isinstance(obj["native"], bool), obj  # every row says which path ran
    return code, lines


@pytest.mark.skipif(not HAVE_TESTPMD, reason="dpdk-testpmd not installed")
def test_forward_with_peer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "forward", "--burst", "32")
    assert code == 0, out
    (r,) = out
    assert r["scenario"] == "forward" and r["burst"] == 32
    assert r["mpps"] > 0 and r["peer_mpps"] > 0  # type: ignore[operator]
    assert r["ratio"] == pytest.approx(r["mpps"] / r["peer_mpps"], rel=1e-2)  # type: ignore[operator]
    assert r["exact"] is True and r["native"] is True
    prefix = str(r["peer_command"]).split("--file-prefix=")[1].split()[0]
    assert not os.path.exists(dpdk_runtime_dir(prefix))  # testpmd's runtime files removed too


def test_forward_without_peer_has_null_peer_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "forward", "--burst", "64", "--no-peer")
    assert code == 0
    assert out[0]["peer"] is None and out[0]["peer_mpps"] is None and out[0]["ratio"] is None
    assert out[0]["exact"] is True


def test_ring_between_processes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "ring")
    assert code == 0, out
    (r,) = out
    assert r["mpps"] > 0 and r["exact"] is True  # type: ignore[operator]


def test_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "memory", "--no-peer")
    assert code == 0, out
    (r,) = out
    assert r["rss_mib"] > 0 and r["warm_start_s"] > 0 and r["cold_start_s"] > 0  # type: ignore[operator]
    assert r["cold_register_s"] > 0 and r["warm_register_s"] > 0  # type: ignore[operator]
    assert r["register_state"] == "compiling"  # registered before its (cold) data path was ready


def test_mirror_component_beside_forward(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "mirror-component")
    assert code == 0, out
    (r,) = out
    assert r["mpps"] > 0 and r["peer_mpps"] > 0 and r["ratio"] > 0  # type: ignore[operator]
    assert r["exact"] is True and r["mirrored_frames"] > 0  # type: ignore[operator]
    assert isinstance(r["peer_native"], bool)


def test_vlan_add_and_del(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "vlan")
    assert code == 0, out
    assert [r["operation"] for r in out] == ["add_vlantag", "del_vlantag"]
    for r in out:
        assert r["mpps"] > 0 and r["peer_mpps"] > 0  # type: ignore[operator]
        assert r["exact"] is True and r["tagged_ok"] is True, r


@pytest.mark.root
def test_phy_leaves_no_interfaces(capsys: pytest.CaptureFixture[str]) -> None:
    from pyroute2 import IPRoute

    tag = f"{os.getpid() % 10000}"
    code, out = run_json(capsys, "phy", "--rate", "0.02", *([] if HAVE_TESTPMD else ["--no-peer"]))
    (r,) = out
    assert r["scenario"] == "phy"
    if r["status"] == "not-runnable":
        assert code == 2 and r["reason"]
        return
    assert code == 0, out
    assert r["mpps"] > 0 and 0 <= r["loss"] <= 1  # type: ignore[operator]
    with IPRoute() as ipr:
        assert not [x for x in ipr.get_links() if x.get_attr("IFLA_IFNAME").endswith(tag)
                    and x.get_attr("IFLA_IFNAME").startswith("spb")]
    assert not [n for n in os.listdir("/var/run/netns") if n.startswith("spb") and n.endswith(tag)] \
        if os.path.isdir("/var/run/netns") else True


def test_bad_arguments_say_what_is_right(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["warp"])
    err = capsys.readouterr().err
    assert "choose from: forward, ring, phy, " in err and "memory" in err
    with pytest.raises(SystemExit):
        main(["forward", "--seconds", "0"])
    assert "must be more than 0" in capsys.readouterr().err


def test_ctrl_c_removes_everything() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "spp.bench", "ring", "--seconds", "120", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def children() -> list[int]:
            kids = []
            for d in Path("/proc").iterdir():
                if d.name.isdigit():
                    try:
                        ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    except (OSError, IndexError, ValueError):
                        continue
                    if ppid == proc.pid:
                        kids.append(int(d.name))
            return kids

        wait_for(lambda: len(children()) == 2, timeout=120, message="both ring worker processes")
        kids = children()
        mine = list(Path("/dev/shm").glob(f"spp-bench{proc.pid}x*"))
        assert mine
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        assert not list(Path("/dev/shm").glob(f"spp-bench{proc.pid}x*"))
        for k in kids:
            wait_for(lambda k=k: not Path(f"/proc/{k}").exists() or _zombie(k), timeout=20,
                     message=f"child {k} gone")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def test_missing_testpmd_still_reports_spp(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import spp.bench.common

    monkeypatch.setattr(spp.bench.common, "TESTPMD", "/nonexistent/dpdk-testpmd")
    code, out = run_json(capsys, "forward", "--burst", "32")
    assert code == 0
    (r,) = out
    assert r["mpps"] > 0 and r["peer"] is None  # type: ignore[operator]
    assert "not found" in str(r["peer_error"]) and "--no-peer" in str(r["peer_error"])


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forward", "--burst", "32", "--no-peer", "--seconds", "0.2", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "forward b32" in out and "Mpps" in out and "exact" in out  # notes fold at the terminal width
