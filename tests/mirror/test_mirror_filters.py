"""The compiled filters against a plain-Python reference, on generated frames and filters."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spp.mirror import FilterError, FlowMatch, MatchSpec, parse_vlan_ranges
from spp.mirror.filters import select_frames
from spp.runtime.dataplane import HEADROOM
from spp.testing.packets import ether

MACS = ["52:54:00:00:00:01", "52:54:00:00:00:02", "ff:ff:ff:ff:ff:ff"]
IPS = ["10.0.0.1", "10.0.0.2", "10.0.1.7", "192.168.1.1"]
PROTOS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}


@st.composite
def frames(draw: st.DrawFn) -> dict[str, object]:
    f: dict[str, object] = {
        "dst": draw(st.sampled_from(MACS)), "src": draw(st.sampled_from(MACS)),
        "vlan": draw(st.one_of(st.none(), st.integers(0, 4095))),
        "ipv4": draw(st.booleans()), "proto": draw(st.sampled_from([1, 6, 17, 132, 47])),
        "sip": draw(st.sampled_from(IPS)), "dip": draw(st.sampled_from(IPS)),
        "sport": draw(st.sampled_from([53, 80, 1234])), "dport": draw(st.sampled_from([53, 80, 1234])),
        "frag": draw(st.sampled_from([0, 0, 0, 185])), "ihl": draw(st.sampled_from([5, 5, 6])),
        "truncate": draw(st.sampled_from([None, None, None, 15, 20, 30, 36])),
    }
    return f


def build(f: dict[str, object]) -> bytes:
    ihl = int(f["ihl"])  # type: ignore[call-overload]
    l4 = struct.pack("!HH", f["sport"], f["dport"]) + bytes(16)
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(l4), 0, f["frag"], 64, f["proto"], 0,
                     ipaddress.IPv4Address(f["sip"]).packed, ipaddress.IPv4Address(f["dip"]).packed)
    ip += bytes(4 * (ihl - 5))
    etype = 0x0800 if f["ipv4"] else 0x86DD
    frame = ether(str(f["dst"]), str(f["src"]), etype, ip + l4, vlan=f["vlan"])  # type: ignore[arg-type]
    if f["truncate"] is not None:
        frame = frame[: int(f["truncate"])]  # type: ignore[call-overload]
    return frame


def reference(frame: bytes, spec: MatchSpec) -> bool:
    """What the filters mean, written plainly."""
    if spec.empty:
        return True  # no filter: everything, runts included
    if len(frame) < 14:
        return False
    if spec.dst_mac is not None and frame[0:6] != bytes.fromhex(spec.dst_mac.replace(":", "")):
        return False
    if spec.src_mac is not None and frame[6:12] != bytes.fromhex(spec.src_mac.replace(":", "")):
        return False
    etype, l3, vid = int.from_bytes(frame[12:14], "big"), 14, None
    if etype == 0x8100:
        if len(frame) < 18:
            return False
        vid, etype, l3 = int.from_bytes(frame[14:16], "big") & 0xFFF, int.from_bytes(frame[16:18], "big"), 18
    if spec.vlan is not None and (vid is None or not any(lo <= vid <= hi for lo, hi in parse_vlan_ranges(spec.vlan))):
        return False
    fl = spec.flow
    if fl is None:
        return True
    ip = frame[l3:]
    if etype != 0x0800 or len(ip) < 20 or ip[0] >> 4 != 4:
        return False
    proto = ip[9]
    if fl.proto is not None and proto != (PROTOS[fl.proto] if isinstance(fl.proto, str) else fl.proto):
        return False
    for net, addr in ((fl.src, ip[12:16]), (fl.dst, ip[16:20])):
        if net is not None and ipaddress.IPv4Address(addr) not in ipaddress.IPv4Network(net, strict=False):
            return False
    if fl.sport is None and fl.dport is None:
        return True
    ihl = (ip[0] & 15) * 4
    frag = int.from_bytes(ip[6:8], "big") & 0x1FFF
    if frag or proto not in (6, 17, 132) or len(ip) < ihl + 4:
        return False
    return (fl.sport is None or int.from_bytes(ip[ihl : ihl + 2], "big") == fl.sport) and (
        fl.dport is None or int.from_bytes(ip[ihl + 2 : ihl + 4], "big") == fl.dport)


specs = st.builds(
    MatchSpec,
    src_mac=st.one_of(st.none(), st.sampled_from(MACS)),
    dst_mac=st.one_of(st.none(), st.sampled_from(MACS)),
    vlan=st.one_of(st.none(), st.sampled_from(["0", "9,18-27", "0-4095", "100-200,4095"])),
    flow=st.one_of(st.none(), st.builds(
        FlowMatch, proto=st.sampled_from([None, "udp", "tcp", 1, 132]),
        src=st.sampled_from([None, "10.0.0.0/24", "10.0.0.1", "0.0.0.0/0"]),
        sport=st.sampled_from([None, 53, 1234]), dst=st.sampled_from([None, "10.0.0.0/16", "192.168.1.1"]),
        dport=st.sampled_from([None, 80, 53]))),
)


@settings(max_examples=150, deadline=None)
@given(spec=specs, fs=st.lists(frames(), min_size=1, max_size=40))
def test_compiled_filters_match_the_reference(spec: MatchSpec, fs: list[dict[str, object]]) -> None:
    raw = [build(f) for f in fs]
    n = len(raw)
    data = np.zeros((n, 2304), np.uint8)
    meta = np.zeros((n, 8), np.int32)
    for b, fr in enumerate(raw):
        data[b, HEADROOM : HEADROOM + len(fr)] = np.frombuffer(fr, np.uint8)
        meta[b, 0], meta[b, 1], meta[b, 3] = HEADROOM, len(fr), -1
    params, vlanmap = spec.compile()
    ids = np.arange(n, dtype=np.int32)[::-1].copy()
    sel = np.zeros(n, np.int32)
    k = select_frames(data, meta, ids, n, np.zeros(1, np.bool_), False, params, vlanmap, sel)
    assert sel[:k].tolist() == [int(b) for b in ids if reference(raw[b], spec)]


def test_stripped_tag_in_meta_counts_for_vlan_filters() -> None:
    fr = ether(MACS[0], MACS[1], 0x0800, bytes(40))
    data = np.zeros((1, 2304), np.uint8)
    data[0, HEADROOM : HEADROOM + len(fr)] = np.frombuffer(fr, np.uint8)
    meta = np.array([[HEADROOM, len(fr), 0, (3 << 13) | 20, 0, 0, -1, 0]], np.int32)
    params, vlanmap = MatchSpec(vlan="18-27").compile()
    sel = np.zeros(1, np.int32)
    assert select_frames(data, meta, np.zeros(1, np.int32), 1, np.zeros(1, np.bool_), False, params, vlanmap, sel) == 1
    meta[0, 3] = 30
    assert select_frames(data, meta, np.zeros(1, np.int32), 1, np.zeros(1, np.bool_), False, params, vlanmap, sel) == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vlan": ""}, "expected ids and ranges"),
    ({"vlan": "4096"}, "must be 0..4095"),
    ({"vlan": "1,,2"}, "is not an id or a range"),
    ({"src_mac": "52-54-00-00-00-01"}, "must be a MAC address XX:XX:XX:XX:XX:XX"),
])
def test_filter_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        MatchSpec(**kwargs)  # type: ignore[arg-type]


def test_flow_errors_and_normal_form() -> None:
    with pytest.raises(FilterError, match=r"0\.\.65535"):
        FlowMatch(sport=70000)
    with pytest.raises(FilterError, match="IPv4 address, a CIDR prefix"):
        FlowMatch(src="10.0.0.300")
    with pytest.raises(FilterError, match="invalid protocol"):
        FlowMatch(proto="gre")
    assert FlowMatch.parse(["UDP", "*", "53", "10.0.0.0/8", "*"]) == FlowMatch("udp", None, 53, "10.0.0.0/8", None)
    assert str(FlowMatch("udp", None, 53)) == "udp * 53 * *"
