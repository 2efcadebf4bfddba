"""The command language: every command of SPEC §3/§4 parses to its dataclass; bad input says what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spp.components.vlan import VlanOp
from spp.control.manager import Manager
from spp.lang.base import CommandError, Exit, Status, tokenize
from spp.lang.vf import ClassifierTable, ComponentStart, ComponentStop, PortAdd, PortDel, parse
from spp.ports.base import PortId
from spp.runtime.dataplane import Dataplane

GOOD = [
    ("status", Status()),
    ("exit", Exit()),
    ("status\n", Status()),
    ("status\0", Status()),
    ("component start cls 3 classifier", ComponentStart("cls", 3, "classifier")),
    ("component start fwd1 4 forward", ComponentStart("fwd1", 4, "forward")),
    ("component start mgr 6 merge", ComponentStart("mgr", 6, "merge")),
    ("component stop fwd1", ComponentStop("fwd1")),
    ("port add phy:0 rx cls", PortAdd(PortId("phy", 0), "rx", "cls")),
    ("port add ring:1 tx cls", PortAdd(PortId("ring", 1), "tx", "cls")),
    ("port add phy:0nq1 rx cls", PortAdd(PortId("phy", 0, 1), "rx", "cls")),
    ("port add phy:0 nq 1 rx cls", PortAdd(PortId("phy", 0, 1), "rx", "cls")),
    ("port add ring:0 tx fwd1 add_vlantag 101 3", PortAdd(PortId("ring", 0), "tx", "fwd1", VlanOp("add", 101, 3))),
    ("port add phy:0 nq 2 rx f add_vlantag 4095 7", PortAdd(PortId("phy", 0, 2), "rx", "f", VlanOp("add", 4095, 7))),
    ("port add ring:0 rx fwd1 del_vlantag", PortAdd(PortId("ring", 0), "rx", "fwd1", VlanOp("del"))),
    ("port del ring:0 rx fwd1", PortDel(PortId("ring", 0), "rx", "fwd1")),
    ("port del phy:1 nq 3 tx m", PortDel(PortId("phy", 1, 3), "tx", "m")),
    ("classifier_table add mac 52:54:00:12:34:56 ring:0",
     ClassifierTable("add", None, "52:54:00:12:34:56", PortId("ring", 0))),
    ("classifier_table add mac FA:16:3E:7D:CC:35 ring:0",
     ClassifierTable("add", None, "fa:16:3e:7d:cc:35", PortId("ring", 0))),
    ("classifier_table del mac default ring:1", ClassifierTable("del", None, None, PortId("ring", 1))),
    ("classifier_table add vlan 101 default ring:1", ClassifierTable("add", 101, None, PortId("ring", 1))),
    ("classifier_table del vlan 4095 52:54:00:00:00:01 phy:0nq1",
     ClassifierTable("del", 4095, "52:54:00:00:00:01", PortId("phy", 0, 1))),
]


@pytest.mark.parametrize(("line", "expected"), GOOD)
def test_good_commands(line: str, expected: object) -> None:
    assert parse(line) == expected


def test_classifier_values() -> None:
    cmd = parse("classifier_table add vlan 101 default ring:1")
    assert isinstance(cmd, ClassifierTable)
    assert cmd.value == "101/default"
    assert cmd.mac_int == -1
    cmd = parse("classifier_table add mac 52:54:00:12:34:56 ring:0")
    assert isinstance(cmd, ClassifierTable)
    assert (cmd.value, cmd.mac_int) == ("52:54:00:12:34:56", 0x525400123456)


BAD = [
    ("", "empty command: expected one of status, component, port, classifier_table or exit"),
    ("   \n", "empty command"),
    ("fly away", "unknown command 'fly' for spp-vf: expected one of status, component, port, classifier_table or exit"),
    ("status now", "wrong number of arguments for 'status': expected status"),
    ("exit 1", "wrong number of arguments for 'exit'"),
    ("component", "unknown subcommand 'component ': expected component start or component stop"),
    ("component run a 1 forward", "unknown subcommand 'component run'"),
    ("component start fwd1 4", "wrong number of arguments for 'component start': "
     "expected component start NAME CORE_ID TYPE"),
    ("component start fwd1 4 fwd", "invalid component type 'fwd': must be 'forward', 'merge' or 'classifier'"),
    ("component start fwd1 x forward", "invalid core id 'x': must be an integer 0-1023"),
    ("component start fwd1 5000 forward", "invalid core id '5000': must be in range 0-1023"),
    ("component start " + "n" * 65 + " 1 forward", "invalid component name"),
    ("component stop", "wrong number of arguments for 'component stop': expected component stop NAME"),
    ("port add ring:0 rx", "wrong number of arguments for 'port add': expected port add RES_UID [nq Q] {rx|tx} "
     "NAME [add_vlantag VID PCP | del_vlantag]"),
    ("port add ring0 rx f", "invalid port 'ring0': must be TYPE:N"),
    ("port add foo:0 rx f", "unknown port type 'foo'"),
    ("port add ring:0 up f", "invalid direction 'up': must be 'rx' or 'tx'"),
    ("port add ring:0 rx f add_vlantag 5000 1", "invalid VLAN id '5000': must be in range 0-4095"),
    ("port add ring:0 rx f add_vlantag 10 8", "invalid PCP '8': must be in range 0-7"),
    ("port add ring:0 rx f add_vlantag 10", "wrong number of arguments for 'port add'"),
    ("port add ring:0 rx f del_vlantag 3", "wrong number of arguments for 'port add'"),
    ("port add ring:0 rx f set_vlan 3", "unknown VLAN option 'set_vlan': expected add_vlantag VID PCP or del_vlantag"),
    ("port add ring:0 nq 1 rx f", "only phy ports have queues"),
    ("port add phy:0 nq rx f", "invalid queue 'rx'"),
    ("port del ring:0 rx f add_vlantag 1 1", "wrong number of arguments for 'port del': "
     "expected port del RES_UID [nq Q] {rx|tx} NAME"),
    ("port move ring:0 rx f", "unknown subcommand 'port move': expected port add or port del"),
    ("classifier_table add", "wrong number of arguments for 'classifier_table'"),
    ("classifier_table put mac default ring:0", "invalid classifier_table action 'put': must be 'add' or 'del'"),
    ("classifier_table add ip default ring:0", "invalid classifier_table type 'ip': must be 'mac' or 'vlan'"),
    ("classifier_table add mac 52:54:00:12:34 ring:0", "invalid MAC address '52:54:00:12:34': "
     "must be a MAC address XX:XX:XX:XX:XX:XX (hex digits) or default"),
    ("classifier_table add vlan 4096 default ring:0", "invalid VLAN id '4096': must be in range 0-4095"),
    ("classifier_table add vlan 10 default ring:0 extra", "wrong number of arguments for 'classifier_table'"),
    ("classifier_table add mac default", "wrong number of arguments for 'classifier_table'"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_commands_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(CommandError) as e:
        parse(line)
    assert message in str(e.value)


MIRROR_BAD = [
    ("component start m 2 forward", "invalid component type 'forward': must be 'mirror'"),
    ("classifier_table add mac default ring:0", "unknown command 'classifier_table' for spp-mirror: "
     "expected one of status, component, port or exit"),
    ("port add ring:0 tx m add_vlantag 1 1", "VLAN option 'add_vlantag' is not supported by spp-mirror: "
     "expected port add RES_UID [nq Q] {rx|tx} NAME"),
    ("port add ring:0 tx m del_vlantag", "VLAN option 'del_vlantag' is not supported by spp-mirror"),
]


@pytest.mark.parametrize(("line", "message"), MIRROR_BAD)
def test_mirror_commands(line: str, message: str) -> None:
    with pytest.raises(CommandError) as e:
        parse(line, "mirror")
    assert message in str(e.value)
    assert parse("component start mr1 2 mirror", "mirror") == ComponentStart("mr1", 2, "mirror")
    assert parse("port add ring:0 rx mr1", "mirror") == PortAdd(PortId("ring", 0), "rx", "mr1")


VOCAB = ["status", "exit", "component", "start", "stop", "port", "add", "del", "rx", "tx", "nq", "mac", "vlan",
         "classifier_table", "add_vlantag", "del_vlantag", "default", "forward", "merge", "classifier", "mirror",
         "ring:0", "ring:1", "phy:0", "phy:0nq1", "nullpmd:0", "vhost:0", "ring:99", "cls", "fwd", "0", "1", "3",
         "4095", "4096", "-1", "52:54:00:12:34:56", "ff:ff:ff:ff:ff:ff", "zz:00", "", "\0", "\n", "é"]
tokens = st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=6)), max_size=10)


@settings(max_examples=400, deadline=None)
@given(tokens)
def test_random_lines_raise_only_command_error(words: list[str]) -> None:
    line = " ".join(words)
    for process in ("vf", "mirror"):
        try:
            parse(line, process)  # type: ignore[arg-type]
        except CommandError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(tokens, min_size=1, max_size=6))
def test_rejected_lines_never_change_manager_state(dp: Dataplane, lines: list[list[str]]) -> None:
    m = Manager(dp, cores=[0, 1], pin=False)
    try:
        m.execute("component start cls 1 classifier")
        m.execute("port add ring:1 tx cls")
        m.execute("classifier_table add mac 52:54:00:12:34:56 ring:1")
        before = m.status()
        for words in lines:
            line = " ".join(words)
            if tokenize(line)[:1] == ["exit"]:
                continue
            reply = m.execute(line)
            result = reply["results"][0]
            if result["result"] == "error":
                assert m.status() == before, line
                assert result["error_details"]["message"]
            else:
                before = m.status()
    finally:
        m.exit()
