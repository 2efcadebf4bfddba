"""``spp up`` plans before acting: validation against the live stack, dry run, diff, rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Ctl

from spp.cli.main import main
from spp.testing.fake_secondary import FakePrimary, FakeSecondary, error_reply

TOPO = """\
processes:
  - kind: vf
    client_id: 1
    cores: "0,1"
    components:
      - {name: cls, type: classifier, core: 1, rx: [phy:0], tx: [ring:0, ring:1]}
      - {name: fwd, type: forward, core: 1, rx: [ring:0], tx: [phy:1]}
    classifier:
      - {mac: "52:54:00:12:34:56", port: ring:0}
"""
BROKEN = """\
processes:
  - kind: vf
    client_id: 1
    cores: "0,1"
    components:
      - {name: cls, type: classifier, core: 1, rx: [phy:0], tx: [ring:0]}
      - {name: fwd, type: forward, core: 4, rx: [ring:0], tx: [phy:5]}
port_mirrors:
  - {name: tap, source: phy:0, destination: phy:7}
"""
NO_VLAN = {"operation": "none", "id": 0, "pcp": 0}


@pytest.fixture
def stack(ctl: Ctl) -> Iterator[tuple[FakePrimary, FakeSecondary]]:
    primary = ctl.primary()
    primary.status_info = {"phy_ports": [{"port": "phy:0"}, {"port": "phy:1"}], "processes": []}
    primary.on("port_mirror list", {"results": [{"result": "success"}], "info": {"port_mirrors": []}})
    vf = ctl.secondary(1, "vf")
    vf.status_info = {"client-id": 1, "core": [], "classifier_table": []}
    yield primary, vf
    ctl.close_fakes()


def _sent(fake: FakeSecondary | FakePrimary) -> list[str]:
    return [c for c in fake.commands if c not in ("status", "port_mirror list")]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


def test_a_file_that_does_not_fit_changes_nothing_and_names_every_line(
        ctl: Ctl, stack: tuple[FakePrimary, FakeSecondary], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    primary, vf = stack
    vf.status_info["core"] = [{"core": 1, "name": "cls", "type": "forward", "rx_port": [], "tx_port": []}]
    path = _write(tmp_path, BROKEN)
    assert main(["up", str(path), "-b", ctl.server]) == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err
    assert f"{path}:6 (processes[0].components[0].name): vf 1 already runs 'cls' as forward on core 1" in err
    assert f"{path}:7 (processes[0].components[1].core): core 4 is not in vf 1's cores '0,1'" in err
    assert f"{path}:7 (processes[0].components[1].tx[0]): phy:5: the stack has 2 phy ports (phy:0..1)" in err
    assert f"{path}:9 (port_mirrors[0].destination): phy:7" in err
    assert _sent(vf) == [] and _sent(primary) == []


def test_dry_run_prints_the_plan_and_changes_nothing(ctl: Ctl, stack: tuple[FakePrimary, FakeSecondary],
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, vf = stack
    path = _write(tmp_path, TOPO)
    assert main(["up", str(path), "-b", ctl.server, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"plan for {path}: 8 steps" in out
    assert f"  + vf 1; component start cls 1 classifier    # {path}:6 (processes[0].components[0])" in out
    assert "  + vf 1; classifier_table add mac 52:54:00:12:34:56 ring:0" in out
    assert _sent(vf) == []


def test_up_applies_only_the_difference_and_then_is_up_to_date(
        ctl: Ctl, stack: tuple[FakePrimary, FakeSecondary], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, vf = stack
    vf.status_info["core"] = [{"core": 1, "name": "cls", "type": "classifier",
                               "rx_port": [{"port": "phy:0", "vlan": NO_VLAN}],
                               "tx_port": [{"port": "ring:0", "vlan": NO_VLAN}]}]
    path = _write(tmp_path, TOPO)
    assert main(["up", str(path), "-b", ctl.server]) == 0
    assert _sent(vf) == [
        "component start fwd 1 forward", "port add ring:1 tx cls", "port add ring:0 rx fwd", "port add phy:1 tx fwd",
        "classifier_table add mac 52:54:00:12:34:56 ring:0",
    ]
    vf.status_info["core"] += [{"core": 1, "name": "fwd", "type": "forward",
                                "rx_port": [{"port": "ring:0", "vlan": NO_VLAN}],
                                "tx_port": [{"port": "phy:1", "vlan": NO_VLAN}]}]
    vf.status_info["core"][0]["tx_port"].append({"port": "ring:1", "vlan": NO_VLAN})
    vf.status_info["classifier_table"] = [{"type": "mac", "value": "52:54:00:12:34:56", "port": "ring:0"}]
    vf.reset()
    capsys.readouterr()
    assert main(["up", str(path), "-b", ctl.server]) == 0
    assert f"{path}: up to date, nothing to do" in capsys.readouterr().out
    assert _sent(vf) == []


def test_a_failure_halfway_rolls_back_in_reverse_order(ctl: Ctl, stack: tuple[FakePrimary, FakeSecondary],
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, vf = stack
    vf.on("port add ring:0 rx fwd", error_reply("ring:0 is busy"))
    path = _write(tmp_path, TOPO)
    assert main(["up", str(path), "-b", ctl.server]) == 1
    err = capsys.readouterr().err
    assert f"{path}:7 (processes[0].components[1].rx[0]): 'vf 1; port add ring:0 rx fwd' failed" in err
    assert "ring:0 is busy" in err and "rolled back 5 steps, the stack is as it was" in err
    assert _sent(vf) == [
        "component start cls 1 classifier", "component start fwd 1 forward", "port add phy:0 rx cls",
        "port add ring:0 tx cls", "port add ring:1 tx cls", "port add ring:0 rx fwd",
        "port del ring:1 tx cls", "port del ring:0 tx cls", "port del phy:0 rx cls",
        "component stop fwd", "component stop cls",
    ]


def test_dry_run_of_a_pcap_launches_it_with_its_capture_and_starts_it(
        ctl: Ctl, stack: tuple[FakePrimary, FakeSecondary], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    primary, _ = stack
    path = _write(tmp_path, "processes:\n  - kind: pcap\n    client_id: 4\n    cores: \"0,1,2\"\n"
                            "    capture: {port: phy:1, out_dir: /tmp/cap, count: 3}\n")
    assert main(["up", str(path), "-b", ctl.server, "--dry-run", "-s", "127.0.0.1:6666"]) == 0
    out = capsys.readouterr().out
    assert ("  + pri; launch pcap 4 -s 127.0.0.1:6666 -l 0,1,2 -- -c phy:1 --out-dir /tmp/cap --count 3"
            in out), out
    assert "  + pcap 4; start" in out
    assert _sent(primary) == []
