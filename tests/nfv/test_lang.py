"""spp.lang, the one parser of the nfv / pcap / primary forwarder commands: round trips and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spp import lang
from spp.ports.base import PortId
from spp.runtime.dataplane import PORT_TYPES

ports = st.builds(lambda t, i, q: PortId(t, i, q if t == "phy" else 0), st.sampled_from(PORT_TYPES),
                  st.integers(0, 10**6), st.integers(0, 3))
commands = st.one_of(
    st.sampled_from([lang.Status(), lang.Exit(), lang.Forward(), lang.Stop(), lang.PatchReset()]),
    st.builds(lang.AddPort, ports), st.builds(lang.DelPort, ports), st.builds(lang.Patch, ports, ports),
)


@given(commands)
def test_render_then_parse_is_identity(cmd: lang.Command) -> None:
    assert lang.parse(lang.render(cmd), "nfv") == cmd
    assert lang.parse(lang.render(cmd) + "\n\0", "primary") == cmd


@settings(max_examples=500)
@given(st.lists(st.one_of(st.sampled_from(["add", "del", "patch", "reset", "forward", "stop", "status", "exit",
                                           "start", "clear", "launch", "nq", "ring:0", "phy:1", "vhost:2",
                                           "ring:x", "foo:1", "phy:0nq1", "1", "spp_nfv", "{}", "--", "-l"]),
                          st.text(max_size=8)), max_size=6),
       st.sampled_from(["nfv", "pcap", "primary"]))
def test_any_line_parses_or_says_why(words: list[str], process: lang.ProcessKind) -> None:
    line = " ".join(words)
    try:
        cmd = lang.parse(line, process)
    except lang.CommandError as e:
        assert str(e) and "\n" not in str(e).replace("\\n", "")
        return
    if not isinstance(cmd, lang.Launch):
        assert lang.parse(lang.render(cmd), process) == cmd


@pytest.mark.parametrize("bad", ["ring:0\n", "ring:0 ", " ring:0", "ring:00x", "RING:0", "ring:-1", "vhost:0nq1"])
def test_port_id_full_match(bad: str) -> None:
    with pytest.raises(lang.CommandError):
        lang.port_id(bad)


def test_mac_full_match() -> None:
    assert lang.mac("52:54:00:AB:cd:01") == "52:54:00:ab:cd:01"
    for bad in ("52:54:00:12:34:56\n", "52:54:00:12:34", "52-54-00-12-34-56", 41135085296):
        with pytest.raises(lang.CommandError, match="must be a MAC address XX:XX:XX:XX:XX:XX"):
            lang.mac(bad)


def test_launch_both_forms() -> None:
    spp = lang.parse("launch 2 spp_nfv -l 1,2 -m 512 --proc-type secondary -- -n 2 -s 127.0.0.1:6666", "primary")
    assert isinstance(spp, lang.Launch) and spp.kind == "nfv"
    assert spp.body["eal"] == {"-l": "1,2", "-m": "512", "--proc-type": "secondary"}
    assert spp.body["app"] == {"-n": "2", "-s": "127.0.0.1:6666"}
    ours = lang.parse('launch 3 spp_pcap {"app": {"-c": "phy:0", "--out-dir": "/tmp/a b"}}', "primary")
    assert isinstance(ours, lang.Launch) and ours.body == {"app": {"-c": "phy:0", "--out-dir": "/tmp/a b"}}
    assert lang.parse(lang.render(ours), "primary") == ours


def test_trailing_newline_refused_everywhere() -> None:
    """The re.match + '$' defect: a value ending in a newline reached the wire as two tokens."""
    from spp.cli.client import CliError
    from spp.cli.translate import translate_secondary
    from spp.ctl import commands as ctl
    from spp.ctl.errors import InvalidArgument
    from spp.lang import base as wire

    for check in (lambda: ctl.check_mac("mac_address", "52:54:00:12:34:56\n"),
                  lambda: ctl.check_port("port", "ring:0\n"), lambda: ctl.check_name("name", "fwd1\n")):
        with pytest.raises(InvalidArgument):
            check()
    with pytest.raises(wire.CommandError):
        wire.mac("52:54:00:12:34:56\n")
    with pytest.raises(CliError):
        translate_secondary("vf", 1, ["classifier_table", "add", "mac", "52:54:00:12:34:56\n", "ring:0"])


def test_reply_framing_resumes_its_scan() -> None:
    """spp-ctl's reply decoder keeps its place between chunks (it rescanned the whole buffer on each one)."""
    import json

    from spp.ctl.protocol import ReplyDecoder

    reply = json.dumps({"results": [{"result": "success"}], "info": {"x": ['a\\"{[' * 10, "b" * (1 << 20)]}})
    data = reply.encode() + b"\n\0" + reply.encode()
    decoder = ReplyDecoder()
    got = []
    for i in range(0, len(data), 1000):
        got += decoder.feed(data[i : i + 1000])
        assert decoder._scan.pos in (0, decoder.pending)  # never re-reads what it has seen
    assert got == [json.loads(reply)] * 2 and decoder.pending == 0


@given(st.lists(st.dictionaries(st.text(max_size=5), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='{}[]"\\ ab\n', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8), max_size=4), min_size=1, max_size=4), st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_reply_framing_any_split(objects: list[dict[str, object]], cuts: list[int]) -> None:
    import json

    from spp.ctl.protocol import ReplyDecoder

    data = b"".join(json.dumps(o).encode() + sep for o, sep in zip(objects, [b"\n", b"\0", b" \n"] * 4,
                                                                   strict=False))
    decoder = ReplyDecoder()
    got: list[dict[str, object]] = []
    pos = 0
    for cut in cuts * (len(data) // max(sum(cuts), 1) + 1):
        got += decoder.feed(data[pos : pos + cut])
        pos += cut
        if pos >= len(data):
            break
    got += decoder.feed(data[pos:])
    assert got == objects and decoder.pending == 0


# -- spp-vf / spp-mirror / port_mirror: the same layer ---------------------------------------------

from spp.components.vlan import VlanOp  # noqa: E402
from spp.lang import port_mirror, vf, wire  # noqa: E402

names = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
vf_ports = st.builds(lambda t, i, q: PortId(t, i, q if t == "phy" else 0), st.sampled_from(PORT_TYPES),
                     st.integers(0, 10**6), st.integers(0, 1023))
vlans = st.one_of(st.none(), st.just(VlanOp("del")),
                  st.builds(lambda v, p: VlanOp("add", v, p), st.integers(0, 4095), st.integers(0, 7)))
macs = st.one_of(st.none(), st.builds(lambda b: ":".join(f"{x:02x}" for x in b), st.binary(min_size=6, max_size=6)))
vf_commands = st.one_of(
    st.builds(vf.ComponentStart, names, st.integers(0, 1023), st.sampled_from(lang.COMPONENT_TYPES["vf"])),
    st.builds(vf.ComponentStop, names),
    st.builds(vf.PortAdd, vf_ports, st.sampled_from(["rx", "tx"]), names, vlans),
    st.builds(vf.PortDel, vf_ports, st.sampled_from(["rx", "tx"]), names),
    st.builds(vf.ClassifierTable, st.sampled_from(["add", "del"]),
              st.one_of(st.none(), st.integers(0, 4095)), macs, vf_ports),
)


@given(vf_commands)
def test_vf_render_then_parse_is_identity(cmd: vf.Command) -> None:
    assert vf.parse(vf.render(cmd), "vf") == cmd


@given(st.builds(port_mirror.PortMirrorAdd, st.from_regex(r"[A-Za-z0-9_.-]{1,32}", fullmatch=True), vf_ports,
                 st.sampled_from(port_mirror.DIRECTIONS), vf_ports, st.one_of(st.none(), st.just("9,18-27")),
                 macs, macs, st.one_of(st.none(), st.just(("udp", "10.0.0.0/24", "*", "*", "53"))),
                 st.integers(0, 65535), st.sampled_from(port_mirror.COPY_MODES)))
def test_port_mirror_render_then_parse_is_identity(cmd: port_mirror.PortMirrorAdd) -> None:
    assert port_mirror.parse_words(port_mirror.render(cmd).split()[1:]) == cmd


@pytest.mark.parametrize(("line", "rest", "field", "reason"), [
    ("vf 1; port add ring:0 rx f add_vlantag 5000 0",
     ("port_add", ("ring:0", "rx", "f"), {"vlan": ("add", 5000, 0)}), "vlan.id", "must be in range 0-4095"),
    ("vf 1; component start f 1 fwd", ("component_start", ("vf", "f", 1, "fwd"), {}), "type",
     "must be 'forward', 'merge' or 'classifier'"),
    ("vf 1; classifier_table add mac 52:54:00 ring:0", ("classifier_table", ("add", "mac", "52:54:00", "ring:0"), {}),
     "mac_address", "must be a MAC address XX:XX:XX:XX:XX:XX (hex digits) or default"),
])
def test_one_error_text_on_the_wire_in_rest_and_in_the_cli(line: str, rest: tuple[str, tuple[object, ...],
                                                           dict[str, object]], field: str, reason: str) -> None:
    """The process's reply, spp-ctl's 400 and the CLI's error come from the same check."""
    from spp.cli.client import CliError
    from spp.cli.translate import split_target, translate_secondary
    from spp.ctl import commands as ctl
    from spp.ctl.errors import InvalidArgument

    target = split_target(line)
    assert target is not None and target.client_id is not None
    with pytest.raises(lang.CommandError) as wire_error:
        vf.parse(" ".join(target.words), "vf")
    with pytest.raises(CliError) as cli_error:
        translate_secondary(target.kind, target.client_id, target.words)
    fn, args, kwargs = rest
    if "vlan" in kwargs:
        op, vid, pcp = kwargs["vlan"]  # type: ignore[misc]
        kwargs = {"vlan": ctl.VlanTag(op, vid, pcp)}
    with pytest.raises(InvalidArgument) as rest_error:
        getattr(ctl, fn)(*args, **kwargs)
    assert str(cli_error.value) == wire_error.value.message and wire_error.value.message.endswith(": " + reason)
    assert (rest_error.value.field, rest_error.value.message) == (field, reason)


def test_a_command_longer_than_one_read_arrives_whole() -> None:
    """spp.lang.wire.receive_command: SPP's reader (continue while reads come back full), timeout restored."""
    import socket
    import threading

    a, b = socket.socketpair()
    with a, b:
        b.settimeout(2.0)
        text = "launch 3 spp_pcap " + '{"app":{"--out-dir":"' + "d" * 9000 + '"}}'
        sender = threading.Thread(target=lambda: a.sendall(wire.encode_command(text)))
        sender.start()
        data = b""
        while len(data) < len(text):  # one command may need several receive_command calls on a slow sender
            data += wire.receive_command(b)
        sender.join()
        assert wire.command_text(data) == text and b.gettimeout() == 2.0
        cmd = lang.parse(wire.command_text(data), "primary")
        assert isinstance(cmd, lang.Launch) and cmd.body["app"]["--out-dir"] == "d" * 9000
    assert wire.encode_reply(wire.error("x")) == b'{"results":[{"result":"error","error_details":{"message":"x"}}]}\n'


@settings(max_examples=400)
@given(st.lists(st.one_of(st.sampled_from(["add", "del", "list", "t1", "ring:0", "phy:1", "rx", "tx", "both", "vlan",
                                           "9,18-27", "27-x", "src_mac", "dst_mac", "52:54:00:12:34:56", "flow",
                                           "udp", "*", "snaplen", "64", "copy", "deep", "nq", "1"]),
                          st.text(max_size=6)), max_size=12))
def test_any_port_mirror_line_parses_or_says_why(words: list[str]) -> None:
    try:
        cmd = port_mirror.parse_words(lang.tokenize(" ".join(words)))
    except lang.CommandError as e:
        assert str(e)
        return
    assert port_mirror.parse_words(port_mirror.render(cmd).split()[1:]) == cmd
