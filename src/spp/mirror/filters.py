"""Built-in mirror filters: MAC addresses, an IPv4 flow (5-tuple with wildcards), VLAN ranges.

A :class:`MatchSpec` is the declarative form (JSON-able, kept in the shared registry);
:meth:`MatchSpec.compile` turns it into two arrays that the compiled burst function
:func:`select_frames` reads, so filtering a burst never creates a Python object per
packet.  All given criteria must hold (logical AND); no criterion matches everything.

* ``src_mac`` / ``dst_mac``: ``"52:54:00:12:34:56"`` (case-insensitive).
* ``vlan``: TaaS ``vlan_filter`` syntax, ``"9,18-27"``: the frame's outer 802.1Q VLAN id
  (or the TCI a driver stripped into ``meta[M_TCI]``) is in the set; untagged frames
  never match.
* ``flow``: :class:`FlowMatch` — protocol, source/destination IPv4 address or CIDR
  prefix, source/destination port, each ``None`` (``*`` in text) for "any".  IPv4 only
  (behind at most one VLAN tag); ports are read for TCP, UDP and SCTP from the first
  fragment only, so a flow that names a port never matches ICMP or later fragments.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numba import njit

from spp import lang

PROTOCOLS: Final[dict[str, int]] = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}

# Layout of the compiled parameter vector.
F_FLAGS, F_SRC_MAC, F_DST_MAC, F_PROTO, F_SIP, F_SMASK, F_DIP, F_DMASK, F_SPORT, F_DPORT = range(10)
N_PARAMS: Final = 10
HAS_SRC_MAC: Final = 1
HAS_DST_MAC: Final = 2
HAS_VLAN: Final = 4
HAS_FLOW: Final = 8



class FilterError(ValueError):
    """A filter cannot be parsed; the message says what was wrong and what would be right."""


def parse_mac(text: str) -> int:
    """``"52:54:00:12:34:56"`` → 48-bit integer; :class:`FilterError` otherwise."""
    try:
        return int(lang.mac(text).replace(":", ""), 16)
    except lang.CommandError as e:
        raise FilterError(str(e)) from None


def parse_vlan_ranges(text: str) -> list[tuple[int, int]]:
    """TaaS ``vlan_filter``: ``"9,18-27"`` → ``[(9, 9), (18, 27)]`` (ids 0..4095)."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError(f"invalid VLAN filter {text!r}: expected ids and ranges like '9,18-27'")
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise FilterError(f"invalid VLAN filter {text!r}: {part.strip()!r} is not an id or a range "
                              "like 18-27")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if not 0 <= lo <= 4095 or not 0 <= hi <= 4095:
            raise FilterError(f"invalid VLAN filter {text!r}: VLAN ids must be 0..4095")
        if lo > hi:
            raise FilterError(f"invalid VLAN filter {text!r}: range {lo}-{hi} is reversed; write {hi}-{lo}")
        out.append((lo, hi))
    return out


def _parse_net(text: str | None, what: str) -> tuple[int, int]:
    if text is None or text == "*":
        return 0, 0
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise FilterError(f"invalid {what} {text!r}: expected an IPv4 address, a CIDR prefix "
                          "(10.0.0.0/24) or '*'") from None
    return int(net.network_address), int(net.netmask)


def _parse_port(value: int | str | None, what: str) -> int:
    if value is None or value == "*":
        return -1
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise FilterError(f"invalid {what} {value!r}: expected 0..65535 or '*'") from None
    if not 0 <= port <= 65535:
        raise FilterError(f"invalid {what} {value!r}: expected 0..65535 or '*'")
    return port


def _parse_proto(value: int | str | None) -> int:
    if value is None or value == "*":
        return -1
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return PROTOCOLS[value.lower()]
    try:
        proto = int(value)
    except (TypeError, ValueError):
        proto = -2
    if not 0 <= proto <= 255:
        raise FilterError(f"invalid protocol {value!r}: expected {', '.join(PROTOCOLS)}, a number 0..255 or '*'")
    return proto


@dataclass(frozen=True)
class FlowMatch:
    """An IPv4 5-tuple with wildcards (``None`` or ``"*"``: any)."""

    proto: int | str | None = None
    src: str | None = None
    sport: int | str | None = None
    dst: str | None = None
    dport: int | str | None = None

    def __post_init__(self) -> None:
        for f in ("proto", "sport", "dport"):  # normal form: numbers as int, names lower-case, '*' as None
            v = getattr(self, f)
            if isinstance(v, str):
                v = None if v == "*" else int(v) if v.isdigit() else v.lower()
                object.__setattr__(self, f, v)
        for f in ("src", "dst"):
            if getattr(self, f) == "*":
                object.__setattr__(self, f, None)
        self.compile()  # validate early, with the message of the first bad field

    @classmethod
    def parse(cls, tokens: list[str]) -> FlowMatch:
        """From ``PROTO SIP SPORT DIP DPORT`` (each may be ``*``)."""
        if len(tokens) != 5:
            raise FilterError(f"invalid flow {' '.join(tokens)!r}: expected 5 fields PROTO SIP SPORT DIP DPORT "
                              "(each may be '*'), e.g. 'udp 10.0.0.1 * 10.0.0.0/24 53'")
        return cls(*(None if t == "*" else t for t in tokens))

    def compile(self) -> tuple[int, int, int, int, int, int, int]:
        """``(proto, sip, smask, dip, dmask, sport, dport)`` with -1/0 for wildcards."""
        sip, smask = _parse_net(self.src, "source address")
        dip, dmask = _parse_net(self.dst, "destination address")
        return (_parse_proto(self.proto), sip, smask, dip, dmask, _parse_port(self.sport, "source port"),
                _parse_port(self.dport, "destination port"))

    def to_json(self) -> dict[str, Any]:
        return {"proto": self.proto, "src": self.src, "sport": self.sport, "dst": self.dst, "dport": self.dport}

    def __str__(self) -> str:
        return " ".join("*" if v is None else str(v) for v in (self.proto, self.src, self.sport, self.dst, self.dport))


@dataclass(frozen=True)
class MatchSpec:
    """The built-in filters of one mirror (all optional; all given ones must hold)."""

    src_mac: str | None = None
    dst_mac: str | None = None
    vlan: str | None = None
    flow: FlowMatch | None = None

    def __post_init__(self) -> None:
        self.compile()

    @property
    def empty(self) -> bool:
        return self.src_mac is None and self.dst_mac is None and self.vlan is None and self.flow is None

    def compile(self) -> tuple[np.ndarray, np.ndarray]:
        """``(params, vlanmap)`` for :func:`select_frames` (int64[N_PARAMS], uint8[4096])."""
        params = np.zeros(N_PARAMS, np.int64)
        vlanmap = np.zeros(4096, np.uint8)
        flags = 0
        if self.src_mac is not None:
            params[F_SRC_MAC] = parse_mac(self.src_mac)
            flags |= HAS_SRC_MAC
        if self.dst_mac is not None:
            params[F_DST_MAC] = parse_mac(self.dst_mac)
            flags |= HAS_DST_MAC
        if self.vlan is not None:
            for lo, hi in parse_vlan_ranges(self.vlan):
                vlanmap[lo : hi + 1] = 1
            flags |= HAS_VLAN
        if self.flow is not None:
            proto, sip, smask, dip, dmask, sport, dport = self.flow.compile()
            params[F_PROTO], params[F_SIP], params[F_SMASK] = proto, sip, smask
            params[F_DIP], params[F_DMASK], params[F_SPORT], params[F_DPORT] = dip, dmask, sport, dport
            flags |= HAS_FLOW
        params[F_FLAGS] = flags
        return params, vlanmap

    def to_json(self) -> dict[str, Any]:
        return {"src_mac": self.src_mac, "dst_mac": self.dst_mac, "vlan": self.vlan,
                "flow": None if self.flow is None else self.flow.to_json()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MatchSpec:
        flow = obj.get("flow")
        return cls(obj.get("src_mac"), obj.get("dst_mac"), obj.get("vlan"),
                   None if flow is None else FlowMatch(**flow))


@njit(cache=True, nogil=True)
def select_frames(data: np.ndarray, meta: np.ndarray, bufs: np.ndarray, n: int, mask: np.ndarray, use_mask: bool,
                  params: np.ndarray, vlanmap: np.ndarray, sel: np.ndarray) -> int:
    """Copy to ``sel`` the ids of ``bufs[:n]`` that pass ``mask`` (if ``use_mask``) and every filter in
    ``params``/``vlanmap`` (see the module docstring); return how many, in order.

    One loop over the burst with everything inlined by hand: a numba call per frame would
    cost more than the checks themselves (argument reference counting).
    """
    flags = params[0]
    k = 0
    for i in range(n):
        b = bufs[i]
        if use_mask and not mask[i]:
            continue
        if flags == 0:
            sel[k] = b
            k += 1
            continue
        off = meta[b, 0]
        ln = meta[b, 1]
        if ln < 14:
            continue
        if flags & 2:
            v = 0
            for j in range(6):
                v = (v << 8) | int(data[b, off + j])
            if v != params[2]:
                continue
        if flags & 1:
            v = 0
            for j in range(6, 12):
                v = (v << 8) | int(data[b, off + j])
            if v != params[1]:
                continue
        l3 = 14
        etype = (int(data[b, off + 12]) << 8) | int(data[b, off + 13])
        vid = -1
        if etype == 0x8100:
            if ln < 18:
                continue
            vid = ((int(data[b, off + 14]) << 8) | int(data[b, off + 15])) & 0xFFF
            etype = (int(data[b, off + 16]) << 8) | int(data[b, off + 17])
            l3 = 18
        elif meta[b, 3] >= 0:
            vid = meta[b, 3] & 0xFFF
        if flags & 4 and (vid < 0 or vlanmap[vid] == 0):
            continue
        if flags & 8:
            if etype != 0x0800 or ln < l3 + 20:
                continue
            ip = off + l3
            if data[b, ip] >> 4 != 4:
                continue
            proto = int(data[b, ip + 9])
            if params[3] >= 0 and proto != params[3]:
                continue
            sip = ((int(data[b, ip + 12]) << 24) | (int(data[b, ip + 13]) << 16) | (int(data[b, ip + 14]) << 8)
                   | int(data[b, ip + 15]))
            dip = ((int(data[b, ip + 16]) << 24) | (int(data[b, ip + 17]) << 16) | (int(data[b, ip + 18]) << 8)
                   | int(data[b, ip + 19]))
            if (sip & params[5]) != params[4] or (dip & params[7]) != params[6]:
                continue
            if params[8] >= 0 or params[9] >= 0:
                ihl = int(data[b, ip] & 0x0F) * 4
                frag = ((int(data[b, ip + 6]) << 8) | int(data[b, ip + 7])) & 0x1FFF
                if frag != 0 or ihl < 20 or ln < l3 + ihl + 4 or not (proto == 6 or proto == 17 or proto == 132):  # noqa: PLR1714 (numba)
                    continue
                l4 = ip + ihl
                if params[8] >= 0 and ((int(data[b, l4]) << 8) | int(data[b, l4 + 1])) != params[8]:
                    continue
                if params[9] >= 0 and ((int(data[b, l4 + 2]) << 8) | int(data[b, l4 + 3])) != params[9]:
                    continue
        sel[k] = b
        k += 1
    return k
