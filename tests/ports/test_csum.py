"""Completing offloaded (partial) TCP/UDP checksums, checked against scapy's."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from spp.ports.csum import complete_l4_checksum


@pytest.mark.parametrize("frame", [
    Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / (b"x" * 33),
    Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2) / (b"y" * 100),
    Ether() / Dot1Q(vlan=5) / IP() / UDP() / b"odd",
    Ether() / IPv6(src="fe80::1", dst="fe80::2") / TCP() / (b"z" * 7),
    Ether() / IPv6() / UDP() / b"",
], ids=["udp4", "tcp4", "vlan-udp4", "tcp6", "udp6-empty"])
def test_matches_scapy(frame: Ether) -> None:
    good = bytes(frame)
    l4 = frame[UDP] if UDP in frame else frame[TCP]
    pos = len(good) - len(bytes(l4)) + (6 if UDP in frame else 16)
    partial = bytearray(good)
    partial[pos : pos + 2] = b"\x12\x34"  # what offload leaves: not the real checksum
    buf = np.zeros(len(good) + 20, np.uint8)
    buf[10 : 10 + len(good)] = np.frombuffer(bytes(partial), np.uint8)
    assert complete_l4_checksum(buf, 10, len(good))
    assert bytes(buf[10 : 10 + len(good)]) == good


def test_leaves_other_frames_alone() -> None:
    for frame in (bytes(Ether() / IP(proto=1) / b"icmp-ish"), bytes(Ether(type=0x0806) / (b"\0" * 28)), b"\x00" * 13):
        buf = np.frombuffer(frame, np.uint8).copy()
        assert not complete_l4_checksum(buf, 0, len(frame))
        assert bytes(buf) == frame
