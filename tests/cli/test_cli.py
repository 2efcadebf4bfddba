"""The ``spp`` CLI non-interactively (-e, stdin, playback) against a real spp-ctl with fake processes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import Ctl

from spp.cli.main import main
from spp.testing.fake_secondary import FakePrimary, FakeSecondary, error_reply

CLASSIFY = [
    "vf 1; component start cls 3 classifier",
    "vf 1; component start fwd1 4 forward",
    "vf 1; port add phy:0 rx cls",
    "vf 1; port add ring:0 tx cls add_vlantag 101 3",
    "vf 1; port add ring:0 rx fwd1",
    "vf 1; port del ring:0 rx fwd1",
    "vf 1; classifier_table add mac 52:54:00:12:34:56 ring:0",
    "vf 1; classifier_table add vlan 101 default ring:0",
    "vf 1; component stop fwd1",
]
WIRE = [
    "component start cls 3 classifier",
    "component start fwd1 4 forward",
    "port add phy:0 rx cls",
    "port add ring:0 tx cls add_vlantag 101 3",
    "port add ring:0 rx fwd1",
    "port del ring:0 rx fwd1",
    "classifier_table add mac 52:54:00:12:34:56 ring:0",
    "classifier_table add vlan 101 default ring:0",
    "component stop fwd1",
]


def run(ctl: Ctl, *commands: str) -> int:
    argv = ["-b", ctl.server]
    for command in commands:
        argv += ["-e", command]
    return main(argv)


def test_execute_reaches_the_wire(ctl: Ctl, vf: FakeSecondary) -> None:
    assert run(ctl, *CLASSIFY) == 0
    assert vf.commands == WIRE


def test_status_tables(ctl: Ctl, vf: FakeSecondary, mirror: FakeSecondary, primary: FakePrimary,
                       capsys: pytest.CaptureFixture[str]) -> None:
    vf.status_info["core"][0]["tx_port"][0]["stats"] = {
        "rx_packets": 0, "rx_bytes": 0, "tx_packets": 1234, "tx_bytes": 5678, "drops": {"ring_full": 7}}
    assert run(ctl, "status", "vf 1; status", "mirror 2; status", "pri; status") == 0
    out = capsys.readouterr().out
    assert "vf" in out and "mirror" in out and "primary" in out
    assert "classifier" in out and "52:54:00:12:34:56" in out and "101/default" in out
    assert "1,234" in out and "ring_full=7" in out and "+vlan 101/3" in out
    assert "mir" in out and "ring:5" in out
    assert "compiling" not in out
    mirror.status_info["state"] = "compiling"  # a process that just started on an empty compile cache
    assert run(ctl, "mirror 2; status") == 0
    assert "compiling the data path: commands take effect when it is ready" in capsys.readouterr().out


def test_error_message_no_traceback(ctl: Ctl, vf: FakeSecondary, capsys: pytest.CaptureFixture[str]) -> None:
    vf.on("component start", error_reply("Invalid value (core)"))
    assert run(ctl, "vf 1; component start fwd9 99 forward", "vf 1; status") == 1
    err = capsys.readouterr().err
    assert "error: command error: Invalid value (core)" in err
    assert "Traceback" not in err
    assert run(ctl, "vf 7; status") == 1
    assert "no such process: vf 7" in capsys.readouterr().err
    assert main(["-b", "127.0.0.1:1", "-e", "status"]) == 1
    assert "cannot reach spp-ctl at 127.0.0.1:1" in capsys.readouterr().err


def test_stdin_and_playback_and_record(ctl: Ctl, vf: FakeSecondary, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "recipe.txt"
    recorded = tmp_path / "recorded.txt"
    recipe.write_text("# a comment\n" + "\n".join(CLASSIFY[:3]) + "\n")
    lines = f"record {recorded}\nplayback {recipe}\nvf 1; component stop cls\nrecord stop\nbye\nstatus\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["-b", ctl.server]) == 0
    assert vf.commands == [*WIRE[:3], "component stop cls"]
    assert recorded.read_text().splitlines() == [*CLASSIFY[:3], "vf 1; component stop cls"]


def test_playback_stops_at_first_failure(ctl: Ctl, vf: FakeSecondary, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "bad.txt"
    recipe.write_text("vf 1; component start a 1 forward\nvf 1; component start b x forward\n"
                      "vf 1; component start c 2 forward\n")
    assert run(ctl, f"playback {recipe}") == 1
    assert vf.commands == ["component start a 1 forward"]
    assert "stopped at line 2" in capsys.readouterr().err


def test_topo_text_dot_svg(ctl: Ctl, vf: FakeSecondary, mirror: FakeSecondary, primary: FakePrimary,
                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svg, dot = tmp_path / "t.svg", tmp_path / "t.dot"
    assert run(ctl, "topo", f"topo {svg}", f"topo {dot}") == 0
    out = capsys.readouterr().out
    assert "cls (classifier, core 3): phy:0 → ring:0, ring:1" in out
    assert "mir (mirror, core 2): ring:0 → ring:4, ring:5" in out
    text = svg.read_text()
    assert text.startswith("<svg") and "vf 1: cls" in text and "ring:5" in text
    assert '"ring:0" -> "mirror2:mir";' in dot.read_text()
    assert run(ctl, f"topo {tmp_path / 't.png'}") == 1


def test_topo_draws_nfv_patches_the_forwarder_and_pcap() -> None:
    from spp.cli.topo import Snapshot, to_dot, to_svg

    snap = Snapshot("h:1", [], {"phy_ports": [{"port": "phy:0"}], "forwarder": {
        "status": "running", "patches": [{"src": "ring:7", "dst": "phy:0"}]}}, {
        ("nfv", 3): {"client-id": 3, "status": "running", "ports": ["phy:0", "ring:5"],
                     "patches": [{"src": "phy:0", "dst": "ring:5"}, {"src": "ring:5", "dst": "phy:1"}]},
        ("pcap", 4): {"client-id": 4, "status": "running", "core": [
            {"core": 1, "role": "receive", "rx_port": [{"port": "phy:0"}]}, {"core": 2, "role": "write"}]}})
    graph = snap.graph()
    assert {("phy:0", "nfv3:patch0"), ("nfv3:patch0", "ring:5"), ("ring:5", "nfv3:patch1"),
            ("nfv3:patch1", "phy:1"), ("ring:7", "pri:patch0"), ("pri:patch0", "phy:0"),
            ("phy:0", "pcap4")} <= set(graph.edges)
    assert '"phy:0" -> "nfv3:patch0";' in to_dot(graph) and "nfv 3: patch" in to_svg(graph)


def test_server_switch(ctl: Ctl, vf: FakeSecondary, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-b", "127.0.0.1:1", "-b", ctl.server, "-e", "server", "-e", "server 2", "-e", "vf 1; status"]) == 0
    out = capsys.readouterr().out
    assert "1  127.0.0.1:1" in out and f"switched to {ctl.server}" in out
    assert run(ctl, "server 5") == 1


def test_console_script_subprocess(ctl: Ctl, vf: FakeSecondary) -> None:
    result = subprocess.run([sys.executable, "-m", "spp.cli.main", "-b", ctl.server],
                            input="vf 1; component start fwd1 2 forward\nvf 1; port add ring:9 rx\n",
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "wrong number of arguments for 'port add'" in result.stderr
    assert "Traceback" not in result.stderr
    assert vf.commands == ["component start fwd1 2 forward"]


def test_bench_is_dispatched(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import types

    calls: list[list[str]] = []
    fake = types.ModuleType("spp.bench.main")
    fake.main = lambda argv: calls.append(list(argv)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spp.bench.main", fake)
    assert main(["bench", "forward", "--seconds", "1"]) == 0
    assert calls == [["forward", "--seconds", "1"]]
    monkeypatch.setitem(sys.modules, "spp.bench.main", None)  # makes the import fail
    assert main(["bench"]) == 2
    assert "benchmark module is not available" in capsys.readouterr().err


def test_token(capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import running_ctl

    with running_ctl(token="s3cret") as secured:
        assert main(["-b", secured.server, "-e", "status"]) == 1
        assert "unauthorized" in capsys.readouterr().err
        assert main(["-b", secured.server, "--token", "s3cret", "-e", "status"]) == 0
