"""SPP's CLI syntax → SPEC section 5's REST requests, verbatim."""

from __future__ import annotations

import re

import pytest

from spp.cli.client import CliError
from spp.cli.translate import Request, split_target, translate_primary, translate_secondary


def vf(line: str) -> Request:
    target = split_target(line)
    assert target is not None and target.client_id is not None
    return translate_secondary(target.kind, target.client_id, target.words)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vf 1; status", Request("GET", "/vfs/1")),
        ("vf 1; exit", Request("DELETE", "/vfs/1")),
        ("vf 1; component start fwd1 12 forward",
         Request("POST", "/vfs/1/components", {"name": "fwd1", "core": 12, "type": "forward"})),
        ("vf 1; component stop fwd1", Request("DELETE", "/vfs/1/components/fwd1")),
        ("vf 1; port add ring:0 rx fwd1",
         Request("PUT", "/vfs/1/components/fwd1/ports",
                 {"action": "attach", "port": "ring:0", "dir": "rx", "vlan": {}})),
        ("vf 1; port add vhost:1 rx fwd1 add_vlantag 677 0",
         Request("PUT", "/vfs/1/components/fwd1/ports",
                 {"action": "attach", "port": "vhost:1", "dir": "rx",
                  "vlan": {"operation": "add", "id": 677, "pcp": 0}})),
        ("vf 1; port add phy:0 nq 1 tx cls del_vlantag",
         Request("PUT", "/vfs/1/components/cls/ports",
                 {"action": "attach", "port": "phy:0nq1", "dir": "tx",
                  "vlan": {"operation": "del", "id": 0, "pcp": 0}})),
        ("vf 1; port del vhost:0 tx fwd1",
         Request("PUT", "/vfs/1/components/fwd1/ports", {"action": "detach", "port": "vhost:0", "dir": "tx"})),
        ("vf 1; classifier_table add mac FA:16:3E:7D:CC:35 ring:0",
         Request("PUT", "/vfs/1/classifier_table",
                 {"action": "add", "type": "mac", "mac_address": "FA:16:3E:7D:CC:35", "port": "ring:0"})),
        ("vf 1; classifier_table del vlan 475 default ring:0",
         Request("PUT", "/vfs/1/classifier_table",
                 {"action": "del", "type": "vlan", "vlan": "475", "mac_address": "default", "port": "ring:0"})),
        ("mirror 2; component start mr1 2 mirror",
         Request("POST", "/mirrors/2/components", {"name": "mr1", "core": 2, "type": "mirror"})),
        ("mirror 2; port add ring:0 rx mr1",
         Request("PUT", "/mirrors/2/components/mr1/ports", {"action": "attach", "port": "ring:0", "dir": "rx"})),
    ],
)
def test_secondary_bodies(line: str, expected: Request) -> None:
    assert vf(line) == expected


def test_primary_requests() -> None:
    assert translate_primary(["status"], "h:6666") == Request("GET", "/primary/status")
    assert translate_primary(["clear"], "h:6666") == Request("DELETE", "/primary/status")
    assert translate_primary(["port", "add", "ring:1"], "h:6666") == Request(
        "PUT", "/primary/ports", {"action": "add", "port": "ring:1"})
    assert translate_primary(["launch", "mirror", "3", "-l", "1,2", "--copy", "deep"], "h:6666") == Request(
        "PUT", "/primary/launch",
        {"proc_name": "spp_mirror", "client_id": 3, "eal": {"-l": "1,2"},
         "app": {"-s": "h:6666", "--client-id": 3, "--copy": "deep"}})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("vf x; status", "invalid client id 'x'"),
        ("vf; status", "a client id is required"),
        ("foo 1; status", "expected 'pri;', 'nfv N;', 'vf N;', 'mirror N;' or 'pcap N;'"),
        ("vf 1; component start fwd1 x forward", "invalid core id 'x'"),
        ("vf 1; component start fwd1 1 mirror", "must be 'forward', 'merge' or 'classifier'"),
        ("vf 1; port add ring0 rx fwd1", "invalid port 'ring0'"),
        ("vf 1; port add ring:0 up fwd1", "invalid direction 'up'"),
        ("vf 1; port add ring:0 rx fwd1 add_vlantag 5000 0", "invalid VLAN id '5000'"),
        ("vf 1; port add ring:0 rx fwd1 add_vlantag 1 9", "invalid PCP '9'"),
        ("vf 1; classifier_table add mac zz ring:0", "invalid MAC address 'zz'"),
        ("mirror 1; classifier_table add mac default ring:0", "unknown command 'classifier_table' for spp-mirror"),
        ("mirror 1; port add ring:0 rx m add_vlantag 1 1", "is not supported by spp-mirror"),
        ("vf 1; launch", "unknown command 'launch' for spp-vf"),
    ],
)
def test_bad_input_explains(line: str, message: str) -> None:
    with pytest.raises(CliError, match=message.replace("(", r"\(").replace(";", ";")):
        vf(line)


def test_port_mirror_requests() -> None:
    assert translate_primary(["port_mirror", "list"], "h:1") == Request("GET", "/port_mirrors")
    assert translate_primary(["port_mirror", "del", "tap1"], "h:1") == Request("DELETE", "/port_mirrors/tap1")
    words = "port_mirror add tap1 phy:0 rx phy:2 vlan 9,18-27 flow udp 10.0.0.0/24 * * 53 snaplen 128 copy deep"
    assert translate_primary(words.split(), "h:1") == Request("POST", "/port_mirrors", {
        "name": "tap1", "source": "phy:0", "direction": "rx", "destination": "phy:2", "vlan_filter": "9,18-27",
        "flow": {"proto": "udp", "src": "10.0.0.0/24", "dport": 53}, "snaplen": 128, "copy": "deep"})
    with pytest.raises(CliError, match="option 'flow' needs PROTO SIP SPORT DIP DPORT"):
        translate_primary(str.split("port_mirror add t phy:0 rx phy:1 flow udp"), "h:1")
    with pytest.raises(CliError, match="must be 'rx', 'tx' or 'both'"):
        translate_primary(str.split("port_mirror add t phy:0 in phy:1"), "h:1")


def test_spp_style_launch_is_accepted() -> None:
    words = str.split("launch vf 2 -l 1,2 -m 512 -- --client-id 2 -s 192.168.1.100:6666 --vhost-client")
    assert translate_primary(words, "h:6666").body == {
        "proc_name": "spp_vf", "client_id": 2, "eal": {"-l": "1,2", "-m": "512"},
        "app": {"-s": "192.168.1.100:6666", "--client-id": 2}}


@pytest.mark.parametrize(
    ("line", "method", "path", "body"),
    [
        ("nfv 1; status", "GET", "/nfvs/1", None),
        ("nfv 1; add ring:0", "PUT", "/nfvs/1/ports", {"action": "add", "port": "ring:0"}),
        ("nfv 1; del vhost:1", "PUT", "/nfvs/1/ports", {"action": "del", "port": "vhost:1"}),
        ("nfv 1; patch phy:0 ring:0", "PUT", "/nfvs/1/patches", {"src": "phy:0", "dst": "ring:0"}),
        ("nfv 1; patch phy:0 nq 1 ring:0", "PUT", "/nfvs/1/patches", {"src": "phy:0nq1", "dst": "ring:0"}),
        ("nfv 1; patch reset", "DELETE", "/nfvs/1/patches", None),
        ("nfv 1; forward", "PUT", "/nfvs/1/forward", {"action": "start"}),
        ("nfv 1; stop", "PUT", "/nfvs/1/forward", {"action": "stop"}),
        ("nfv 1; exit", "DELETE", "/nfvs/1", None),
        ("pcap 2; start", "PUT", "/pcaps/2/capture", {"action": "start"}),
        ("pcap 2; stop", "PUT", "/pcaps/2/capture", {"action": "stop"}),
        ("pcap 2; status", "GET", "/pcaps/2", None),
        ("pcap 2; exit", "DELETE", "/pcaps/2", None),
    ],
)
def test_nfv_and_pcap_lines_as_spp_cli_sends_them(line: str, method: str, path: str, body: object) -> None:
    target = split_target(line)
    assert target is not None and target.client_id is not None
    assert translate_secondary(target.kind, target.client_id, target.words) == Request(method, path, body)


@pytest.mark.parametrize(
    ("words", "method", "path", "body"),
    [
        (["add", "ring:0"], "PUT", "/primary/ports", {"action": "add", "port": "ring:0"}),
        (["patch", "phy:0", "ring:0"], "PUT", "/primary/patches", {"src": "phy:0", "dst": "ring:0"}),
        (["patch", "reset"], "DELETE", "/primary/patches", None),
        (["forward"], "PUT", "/primary/forward", {"action": "start"}),
        (["stop"], "PUT", "/primary/forward", {"action": "stop"}),
    ],
)
def test_primary_forwarder_lines(words: list[str], method: str, path: str, body: object) -> None:
    assert translate_primary(words, "127.0.0.1:6666") == Request(method, path, body)


def test_launch_nfv_and_pcap_spp_form() -> None:
    req = translate_primary(["launch", "nfv", "2", "-l", "1,2", "-m", "512", "--", "-n", "2", "-s",
                             "127.0.0.1:6666"], "x:1")
    assert req.body == {"proc_name": "spp_nfv", "client_id": 2, "eal": {"-l": "1,2", "-m": "512"},
                        "app": {"-s": "127.0.0.1:6666", "--client-id": 2}}
    req = translate_primary(["launch", "pcap", "3", "-l", "1,2", "--", "-c", "phy:0", "--out-dir", "/tmp",
                             "--fsize", "1000"], "x:1")
    assert req.body is not None and req.body["app"] == {"-s": "x:1", "--client-id": 3, "-c": "phy:0",
                                                        "--out-dir": "/tmp", "--fsize": "1000"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nfv 1; patch ring:0", "wrong number of arguments for 'patch': expected patch SRC DST"),
        ("nfv 1; add ring:0\n", None),
        ("nfv 1; add bogus:1", "unknown port type 'bogus'"),
        ("nfv 1; component start x 1 forward", "unknown command 'component' for spp-nfv"),
        ("pcap 1; forward", "unknown command 'forward' for spp-pcap"),
    ],
)
def test_nfv_bad_lines(line: str, message: str | None) -> None:
    target = split_target(line)
    assert target is not None and target.client_id is not None
    if message is None:  # a trailing newline is whitespace between words, not part of the port
        assert translate_secondary(target.kind, target.client_id, target.words).body == {"action": "add",
                                                                                          "port": "ring:0"}
        return
    with pytest.raises(CliError, match=re.escape(message)):
        translate_secondary(target.kind, target.client_id, target.words)
