"""Completing L4 checksums the kernel left for hardware offload.

A frame an application sends on a veth (or a NIC with tx checksum offload) carries a
*partial* TCP/UDP checksum: only the pseudo-header sum, to be finished by the NIC.  An
AF_PACKET socket on the other end sees it flagged ``TP_STATUS_CSUMNOTREADY``.  Forwarded
as is to another interface, such a frame arrives with a wrong checksum and the receiving
stack drops it, so TCP and UDP between containers through spp would fail while ICMP
(always checksummed in software) works.  :func:`complete_l4_checksum` computes the full
checksum in place, for IPv4 and IPv6 (no extension headers), behind at most one 802.1Q
tag; anything else is left untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

TP_STATUS_CSUMNOTREADY = 1 << 3


@njit(cache=True, nogil=True)
def _sum16(buf: np.ndarray, start: Any, end: Any) -> Any:
    s: Any = 0
    i = start
    while i + 1 < end:
        s += (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])
        i += 2
    if i < end:
        s += np.int64(buf[i]) << 8
    return s


@njit(cache=True, nogil=True)
def complete_l4_checksum(buf: np.ndarray, off: Any, ln: Any) -> bool:
    """Fill in the TCP/UDP checksum of the frame ``buf[off:off+ln]``; True if it did."""
    end = off + ln
    p = off + 12
    if p + 2 > end:
        return False
    etype = (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
    if etype == 0x8100 or etype == 0x88A8:  # noqa: PLR1714 (numba-friendly)
        p += 4
        if p + 2 > end:
            return False
        etype = (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])
    l3 = p + 2
    if etype == 0x0800:
        if l3 + 20 > end:
            return False
        ihl = (np.int64(buf[l3]) & 0x0F) * 4
        proto = np.int64(buf[l3 + 9])
        total = (np.int64(buf[l3 + 2]) << 8) | np.int64(buf[l3 + 3])
        l4 = l3 + ihl
        l4end = l3 + total
        if ihl < 20 or l4end > end or l4 >= l4end:
            return False
        s = _sum16(buf, l3 + 12, l3 + 20)  # source and destination addresses
    elif etype == 0x86DD:
        if l3 + 40 > end:
            return False
        proto = np.int64(buf[l3 + 6])
        plen = (np.int64(buf[l3 + 4]) << 8) | np.int64(buf[l3 + 5])
        l4 = l3 + 40
        l4end = l4 + plen
        if l4end > end:
            return False
        s = _sum16(buf, l3 + 8, l3 + 40)
    else:
        return False
    if proto == 6:
        cpos = l4 + 16
    elif proto == 17:
        cpos = l4 + 6
    else:
        return False
    if cpos + 2 > l4end:
        return False
    seglen = l4end - l4
    buf[cpos] = 0
    buf[cpos + 1] = 0
    s += proto + seglen + _sum16(buf, l4, l4end)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    if c == 0 and proto == 17:
        c = 0xFFFF
    buf[cpos] = (c >> 8) & 0xFF
    buf[cpos + 1] = c & 0xFF
    return True
