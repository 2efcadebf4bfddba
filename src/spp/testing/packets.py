"""Frame builders for tests and benchmarks (plain bytes; scapy is optional in tests)."""

from __future__ import annotations

import struct

BROADCAST = "ff:ff:ff:ff:ff:ff"


def mac_bytes(mac: str) -> bytes:
    """``"52:54:00:12:34:56"`` → 6 bytes."""
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"invalid MAC {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw[:6])


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ether(dst: str, src: str, ethertype: int, payload: bytes, vlan: int | None = None, pcp: int = 0) -> bytes:
    """An Ethernet frame, 802.1Q-tagged when ``vlan`` is given; no FCS."""
    hdr = mac_bytes(dst) + mac_bytes(src)
    if vlan is not None:
        hdr += struct.pack("!HH", 0x8100, (pcp << 13) | vlan)
    return hdr + struct.pack("!H", ethertype) + payload


def udp(dst: str = "52:54:00:12:34:56", src: str = "52:54:00:00:00:01", *, sip: str = "10.0.0.1",
        dip: str = "10.0.0.2", sport: int = 1234, dport: int = 5678, payload: bytes = b"",
        size: int | None = None, vlan: int | None = None, pcp: int = 0) -> bytes:
    """An Ethernet/IPv4/UDP frame; ``size`` pads the payload to that total length."""
    if size is not None:
        base = 14 + (4 if vlan is not None else 0) + 20 + 8
        payload = payload + bytes(max(0, size - base - len(payload)))
    ulen = 8 + len(payload)
    u = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    sa = bytes(int(x) for x in sip.split("."))
    da = bytes(int(x) for x in dip.split("."))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0x4000, 64, 17, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return ether(dst, src, 0x0800, ip + u, vlan=vlan, pcp=pcp)


def numbered(i: int, dst: str = "52:54:00:12:34:56", size: int = 64, **kw: object) -> bytes:
    """A UDP frame whose payload starts with ``i`` (8 bytes), to match frames end to end."""
    return udp(dst, payload=struct.pack("!Q", i), size=size, **kw)  # type: ignore[arg-type]


def frame_number(frame: bytes) -> int:
    """Inverse of :func:`numbered` (tagged or not)."""
    off = 14 + (4 if frame[12:14] == b"\x81\x00" else 0) + 20 + 8
    return int(struct.unpack("!Q", frame[off : off + 8])[0])
