"""Declarative topologies: validation errors with YAML paths, the shipped examples, up/down over REST."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from cli_helpers import Ctl

from spp.cli.client import RestClient
from spp.cli.main import main
from spp.cli.topology import TopologyError, load, parse
from spp.testing.fake_secondary import FakePrimary, FakeSecondary

EXAMPLES = resources.files("spp") / "examples"


@pytest.mark.parametrize("name", ["classify-icmp", "taas", "port-mirror"])
def test_examples_are_valid_and_match_their_recipes(name: str) -> None:
    topology = parse(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()), name)
    recipe = [line for line in (EXAMPLES / f"{name}.txt").read_text().splitlines() if not line.startswith("#")]
    assert topology.commands() == recipe


def test_classify_icmp_is_the_spec_scenario() -> None:
    topology = parse(yaml.safe_load((EXAMPLES / "classify-icmp.yaml").read_text()))
    commands = topology.commands()
    assert commands[0] == "vf 1; component start cls 3 classifier"
    assert "vf 1; port add phy:1 tx mgr" in commands
    assert commands[-1] == "vf 1; classifier_table add mac 52:54:00:12:34:58 ring:1"
    assert len(commands) == 16


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "nothing to do (no processes and no port_mirrors)"),
        ({"processes": [{"kind": "nat", "client_id": 1}]},
         "processes[0].kind: Input should be 'vf', 'mirror', 'nfv' or 'pcap'"),
        ({"processes": [{"kind": "pcap", "client_id": 1}]}, "processes[0]: capture: a pcap needs one"),
        ({"processes": [{"kind": "nfv", "client_id": 1, "components": [{"name": "a", "type": "forward", "core": 1}]}]},
         "an nfv has ports and patches, not components"),
        ({"processes": [{"kind": "nfv", "client_id": 1, "patches": [{"src": "ring:0", "dst": "ring0"}]}]},
         "processes[0].patches[0].dst: invalid port 'ring0'"),
        ({"processes": [{"kind": "vf", "client_id": 1, "ports": ["ring:0"]}]}, "only an nfv has them"),
        ({"processes": [{"kind": "vf", "client_id": 1, "components": [
            {"name": "a", "type": "forward", "core": "x"}]}]}, "processes[0].components[0].core"),
        ({"processes": [{"kind": "vf", "client_id": 1, "components": [
            {"name": "a", "type": "forward", "core": 1, "rx": ["ring0"]}]}]},
         "processes[0].components[0].rx[0].port: invalid port 'ring0'"),
        ({"processes": [{"kind": "vf", "client_id": 1, "components": [
            {"name": "a", "type": "forward", "core": 1, "tx": [{"port": "ring:0",
                                                              "vlan": {"operation": "add", "id": 5000}}]}]}]},
         "processes[0].components[0].tx[0].vlan.id: Input should be less than or equal to 4095"),
        ({"processes": [{"kind": "mirror", "client_id": 1, "components": [
            {"name": "a", "type": "forward", "core": 1}]}]}, "a mirror runs mirror, not 'forward'"),
        ({"processes": [{"kind": "vf", "client_id": 1, "classifier": [{"mac": "nope", "port": "ring:0"}]}]},
         "processes[0].classifier[0].mac: invalid MAC address 'nope'"),
        ({"processes": [{"kind": "vf", "client_id": 1, "classifier": [{"mac": 41135085296, "port": "ring:0"}]}]},
         "processes[0].classifier[0].mac: MAC read as the number 41135085296: quote MACs"),
        ({"processes": [{"kind": "vf", "client_id": 1, "classifier": [{"mac": "52:54:00:12:34:56\n",
                                                                        "port": "ring:0"}]}]},
         "processes[0].classifier[0].mac: invalid MAC"),
        ({"processes": [{"kind": "vf", "client_id": 1, "cpus": 3}]}, "processes[0].cpus: unknown field"),
        ({"processes": [{"kind": "vf", "client_id": 1}, {"kind": "vf", "client_id": 1}]}, "vf 1 is listed twice"),
        ({"port_mirrors": [{"name": "t", "source": "phy:0", "destination": "phy:0"}]},
         "port_mirrors[0]: destination: a port cannot be mirrored to itself"),
        ({"port_mirrors": [{"name": "t", "source": "phy:0", "destination": "phy:1", "flow": {"sport": 70000}}]},
         "port_mirrors[0].flow.sport: Input should be less than or equal to 65535"),
        ({"port_mirrors": [{"name": "t", "source": "phy:0", "destination": "phy:1", "direction": "in"}]},
         "port_mirrors[0].direction: Input should be 'rx', 'tx' or 'both'"),
    ],
)
def test_validation_names_the_field(data: object, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse(data, "t.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("t.yaml: ")


def test_bad_yaml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("processes: [\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load(bad)
    assert main(["up", str(tmp_path / "none.yaml"), "-b", "127.0.0.1:1"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_up_and_down(ctl: Ctl, tmp_path: Path) -> None:
    # the processes are already connected (fakes), so up only configures them
    primary: FakePrimary = ctl.primary()
    vf: FakeSecondary = ctl.secondary(1, "vf")
    mirror: FakeSecondary = ctl.secondary(2, "mirror")
    for fake in (vf, mirror):  # nothing configured yet
        fake.status_info = {"client-id": fake.client_id, "core": [], "classifier_table": []}
    try:
        topo = EXAMPLES / "taas.yaml"
        assert main(["up", str(topo), "-b", ctl.server]) == 0
        recipe = parse(yaml.safe_load(topo.read_text())).commands()

        def sent(fake: FakeSecondary | FakePrimary) -> list[str]:
            return [c for c in fake.commands if c not in ("status", "port_mirror list")]

        assert sent(vf) == [line.split("; ", 1)[1] for line in recipe if line.startswith("vf 1;")]
        assert sent(mirror) == [line.split("; ", 1)[1] for line in recipe if line.startswith("mirror 2;")]
        assert sent(primary) == []
        assert main(["down", str(topo), "-b", ctl.server]) == 0
        assert vf.commands[-1] == "exit" and mirror.commands[-1] == "exit"
    finally:
        ctl.close_fakes()


def test_up_launches_missing_processes(ctl: Ctl) -> None:
    primary = ctl.primary()
    try:
        topology = parse({"secondary": "127.0.0.1:6000",
                          "processes": [{"kind": "mirror", "client_id": 4, "cores": "1", "copy": "deep"}]})
        client = RestClient(ctl.server)
        from spp.cli import topology as topo_mod

        with pytest.raises(Exception, match="did not connect"):
            topo_mod.up(topology, client, log=lambda _line: None, launch_timeout=0.3)
        client.close()
        assert [c for c in primary.commands if c.startswith("launch")] == [
            'launch 4 spp_mirror {"proc_name":"spp_mirror","client_id":4,"eal":{"-l":"1"},'
            '"app":{"-s":"127.0.0.1:6000","--client-id":4,"--copy":"deep"}}'
        ]
    finally:
        ctl.close_fakes()


def test_nfv_in_a_topology() -> None:
    topo = parse({"processes": [{"kind": "nfv", "client_id": 3, "cores": "0,2", "ports": ["ring:6", "phy:0"],
                                 "patches": [{"src": "phy:1", "dst": "ring:6"}]}]})
    assert topo.commands() == ["nfv 3; add ring:6", "nfv 3; patch phy:1 ring:6", "nfv 3; forward"]
def test_pcap_in_a_topology() -> None:
    topo = parse({"processes": [{"kind": "pcap", "client_id": 4, "cores": "0,1,2",
                                 "capture": {"port": "phy:0", "out_dir": "/tmp/cap", "fsize": 1000000}}]})
    assert topo.commands() == ["pcap 4; start"]
    capture = topo.processes[0].capture
    assert capture is not None and capture.options() == ["-c", "phy:0", "--out-dir", "/tmp/cap", "--fsize", "1000000"]
    with pytest.raises(TopologyError, match="only a pcap has one"):
        parse({"processes": [{"kind": "nfv", "client_id": 3, "capture": {"port": "phy:0", "out_dir": "/tmp"}}]})


def test_errors_in_a_file_name_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("processes:\n  - kind: vf\n    client_id: 1\n    cpus: 3\nport_mirrors:\n"
                    "  - {name: 'a b', source: phy:0, destination: phy:1}\n")
    with pytest.raises(TopologyError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "line 4: processes[0].cpus: unknown field" in message
    assert "line 6: port_mirrors[0].name: invalid mirror name 'a b': must be 1 to 32 letters, digits" in message
    assert "pattern" not in message
