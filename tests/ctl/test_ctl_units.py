"""spp-ctl's pure parts: command building, reply framing, host CPU facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spp.ctl import commands
from spp.ctl.api import format_validation_errors
from spp.ctl.controller import flatten_status
from spp.ctl.errors import BadReply, CommandError, InvalidArgument
from spp.ctl.hostinfo import cpu_layout, parse_cpu_list, read_cpu_times, usage_between
from spp.ctl.protocol import ProtocolError, ReplyDecoder, check_result

# -- commands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "wire"),
    [
        ("phy:0", "phy:0"),
        ("ring:12", "ring:12"),
        ("vhost:1", "vhost:1"),
        ("phy:0nq1", "phy:0 nq 1"),
        ("tap:3", "tap:3"),
        ("memif:0", "memif:0"),
        ("nullpmd:2", "nullpmd:2"),
        ("pcap:1", "pcap:1"),
    ],
)
def test_check_port_gives_the_wire_form(port: str, wire: str) -> None:
    assert commands.check_port("port", port) == wire


@pytest.mark.parametrize("port", ["phy", "phy:", "eth:0", "ring:-1", "ring:0nq1", "phy:0 nq 1", "PHY:0", 3, None])
def test_check_port_refuses(port: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        commands.check_port("port", port)
    assert info.value.field == "port"


def test_command_builders() -> None:
    assert commands.component_start("vf", "cls", 3, "classifier") == "component start cls 3 classifier"
    assert commands.port_add("ring:0", "tx", "cls", commands.VlanTag("add", 101, 3)) == (
        "port add ring:0 tx cls add_vlantag 101 3"
    )
    assert commands.port_add("ring:0", "tx", "cls", commands.VlanTag("none")) == "port add ring:0 tx cls"
    assert commands.classifier_table("add", "vlan", "default", "ring:1", "101") == (
        "classifier_table add vlan 101 default ring:1"
    )
    assert commands.primary_port("add", "phy:1nq2") == "port add phy:1 nq 2"
    launch = commands.launch(3, "spp_mirror", {"proc_name": "spp_mirror", "eal": {"-l": "1"}})
    assert launch == 'launch 3 spp_mirror {"proc_name":"spp_mirror","eal":{"-l":"1"}}'


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: commands.component_start("mirror", "m", 1, "forward"), "type"),
        (lambda: commands.component_start("vf", "a b", 1, "forward"), "name"),
        (lambda: commands.component_start("vf", "", 1, "forward"), "name"),
        (lambda: commands.component_start("vf", "f", -1, "forward"), "core"),
        (lambda: commands.component_start("vf", "f", True, "forward"), "core"),
        (lambda: commands.port_add("ring:0", "rx", "f", commands.VlanTag("add", 4096, 0)), "vlan.id"),
        (lambda: commands.port_add("ring:0", "rx", "f", commands.VlanTag("add", 1, 8)), "vlan.pcp"),
        (lambda: commands.classifier_table("add", "vlan", "default", "ring:0"), "vlan"),
        (lambda: commands.classifier_table("add", "mac", "00:11", "ring:0"), "mac_address"),
        (lambda: commands.component_stop("x" * 65), "name"),
    ],
)
def test_command_builders_name_the_bad_field(call: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field


# -- framing ----------------------------------------------------------------------------------------


def test_decoder_joins_segments_and_splits_objects() -> None:
    decoder = ReplyDecoder()
    text = json.dumps({"a": 'x}{"', "b": [1, {"c": 2}]}).encode()
    assert decoder.feed(text[:5]) == []
    assert decoder.feed(text[5:-1]) == []
    assert decoder.feed(text[-1:] + b"\n\0" + b'{"d":1}\0{"e"') == [{"a": 'x}{"', "b": [1, {"c": 2}]}, {"d": 1}]
    assert decoder.pending == 4
    assert decoder.feed(b":2}") == [{"e": 2}]
    assert decoder.pending == 0


def test_decoder_handles_utf8_split_in_the_middle() -> None:
    data = json.dumps({"name": "café"}, ensure_ascii=False).encode()
    decoder = ReplyDecoder()
    cut = data.index("é".encode()) + 1
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:]) == [{"name": "café"}]


@pytest.mark.parametrize("garbage", [b"hello", b"[1]", b"{]", b'{"a":}'])
def test_decoder_refuses_garbage(garbage: bytes) -> None:
    with pytest.raises(ProtocolError):
        ReplyDecoder().feed(garbage)


def test_decoder_refuses_endless_reply() -> None:
    decoder = ReplyDecoder(max_bytes=100)
    with pytest.raises(ProtocolError):
        decoder.feed(b'{"a":"' + b"x" * 200)


def test_check_result() -> None:
    assert check_result({"results": [{"result": "success"}], "x": 1}) == {"results": [{"result": "success"}], "x": 1}
    assert check_result({"info": {}}) == {"info": {}}
    with pytest.raises(CommandError, match="Invalid value"):
        check_result({"results": [{"result": "error", "error_details": {"message": "Invalid value (port)"}}]})
    with pytest.raises(CommandError, match="'failed'"):
        check_result({"results": [{"result": "failed"}]})
    with pytest.raises(BadReply):
        check_result({"results": "ok"})


def test_flatten_status_refuses_bad_shapes() -> None:
    with pytest.raises(BadReply):
        flatten_status("vf", 1, {"info": []})
    with pytest.raises(BadReply):
        flatten_status("vf", 1, {"info": {"core": {}}})
    assert flatten_status("mirror", 4, {"info": {}}) == {
        "client-id": 4,
        "ports": [],
        "master-lcore": None,
        "components": [],
    }


def test_validation_messages() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "name"), "msg": "Field required"},
        {"type": "literal_error", "loc": ("body", "dir"), "msg": "x", "ctx": {"expected": "'rx' or 'tx'"}},
        {"type": "int_parsing", "loc": ("path", "client_id"), "msg": "x"},
    ]
    assert format_validation_errors(errors) == (
        "invalid body: field 'name': required; field 'dir': must be 'rx' or 'tx'; "
        "invalid path: parameter 'client_id': must be an integer"
    )


# -- host CPUs --------------------------------------------------------------------------------------


def _fake_sys(root: Path, topology: dict[int, tuple[int, int]], online: str | None) -> Path:
    for lcore, (socket_id, core_id) in topology.items():
        topo = root / f"cpu{lcore}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{socket_id}\n")
        (topo / "core_id").write_text(f"{core_id}\n")
    (root / "cpufreq").mkdir()
    if online is not None:
        (root / "online").write_text(online + "\n")
    return root


def test_cpu_layout_groups_hyperthreads_by_socket_and_core(tmp_path: Path) -> None:
    topology = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1), 4: (0, 0), 5: (0, 1), 6: (1, 0), 7: (1, 1)}
    sys_cpu = _fake_sys(tmp_path / "cpu", topology, online="0-7")
    assert cpu_layout(sys_cpu, tmp_path / "none") == [
        {"socket_id": 0, "cores": [{"core_id": 0, "lcores": [0, 4]}, {"core_id": 1, "lcores": [1, 5]}]},
        {"socket_id": 1, "cores": [{"core_id": 0, "lcores": [2, 6]}, {"core_id": 1, "lcores": [3, 7]}]},
    ]


def test_cpu_layout_skips_offline_cpus_and_falls_back_to_cpuinfo(tmp_path: Path) -> None:
    sys_cpu = tmp_path / "cpu"
    sys_cpu.mkdir()
    for lcore in range(3):
        (sys_cpu / f"cpu{lcore}").mkdir()
    (sys_cpu / "online").write_text("0,2\n")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nphysical id\t: 0\ncore id\t: 5\n\nprocessor\t: 2\nphysical id\t: 1\ncore id\t: 7\n"
    )
    assert cpu_layout(sys_cpu, cpuinfo) == [
        {"socket_id": 0, "cores": [{"core_id": 5, "lcores": [0]}]},
        {"socket_id": 1, "cores": [{"core_id": 7, "lcores": [2]}]},
    ]
    (sys_cpu / "online").unlink()
    assert [c["lcores"] for s in cpu_layout(sys_cpu, tmp_path / "none") for c in s["cores"]] == [[0], [1], [2]]


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-3,6,8-9\n") == [0, 1, 2, 3, 6, 8, 9]
    assert parse_cpu_list("0") == [0]


def test_cpu_usage_from_two_samples(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0\nintr 1 2\n")
    before = read_cpu_times(stat)
    assert before == {0: (20, 100), 1: (0, 100)}
    stat.write_text("cpu0 60 0 10 130 0 0 0 0 0 0\ncpu1 0 0 0 200 0 0 0 0\n")
    assert usage_between(before, read_cpu_times(stat)) == [
        {"lcore_id": 0, "busy": 50.0},
        {"lcore_id": 1, "busy": 0.0},
    ]
