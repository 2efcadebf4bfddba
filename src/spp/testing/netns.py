"""Network namespaces, veth pairs and raw sockets for tests (needs root).

Everything here cleans up after itself, even when the body raises::

    with netns("spp1234a") as ns, veth_pair("spv1234a", "spv1234b", peer_ns=ns):
        sock = ns_packet_socket(ns, "spv1234b")   # an AF_PACKET socket living in ``ns``
        sock.send(frame)                          # arrives on spv1234a

Namespaces made here have IPv6 disabled by default (``conf/default/disable_ipv6``) and
so do the veth ends we create, so that the kernel's own chatter (router solicitations,
MLD reports, DAD) never shows up among the frames a test counts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPRoute, NetNS
from pyroute2 import netns as _netns

T = TypeVar("T")
ETH_P_ALL = 0x0003
IFNAMSIZ = 15


def unique_ifname(tag: str) -> str:
    """A name unique to this process: ``tag``, pid mod 10000, ``-``, a counter (≤ 15 chars)."""
    global _counter
    with _lock:
        _counter += 1
        n = _counter
    name = f"{tag}{os.getpid() % 10000}-{n}"
    if len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters; use a shorter tag")
    return name


_counter = 0
_lock = threading.Lock()


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name:
        raise ValueError(f"invalid interface/namespace name {name!r}: need 1..{IFNAMSIZ} chars, no '/' or spaces")


def in_netns(ns: str | None, fn: Callable[[], T]) -> T:
    """Run ``fn()`` in a helper thread that has entered namespace ``ns`` (``None``: here).

    Network namespaces are per thread, so the caller's thread never moves.  Sockets
    created by ``fn`` stay in ``ns`` for their whole life.
    """
    if ns is None:
        return fn()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            _netns.setns(ns)
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=run, name=f"netns-{ns}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _write_sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


@contextmanager
def netns(name: str) -> Iterator[str]:
    """Create network namespace ``name`` (IPv6 off, ``lo`` up); remove it on exit."""
    _check_name(name)
    _netns.create(name)
    try:

        def setup() -> None:
            _write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
            _write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1")

        in_netns(name, setup)
        with NetNS(name) as nsr:
            lo = nsr.link_lookup(ifname="lo")
            if lo:
                nsr.link("set", index=lo[0], state="up")
        yield name
    finally:
        with contextlib.suppress(OSError, FileNotFoundError):
            _netns.remove(name)


@dataclass(frozen=True)
class Veth:
    """A veth pair: ``local`` in our namespace, ``peer`` in namespace ``ns``."""

    local: str
    peer: str
    ns: str


@contextmanager
def veth_in_netns(tag: str = "spv", *, mtu: int | None = None) -> Iterator[Veth]:
    """A fresh namespace with a veth pair whose peer lives in it; everything removed on exit."""
    ns_name = unique_ifname(f"{tag}n")
    a, b = unique_ifname(f"{tag}a"), unique_ifname(f"{tag}b")
    with netns(ns_name) as ns, veth_pair(a, b, peer_ns=ns, mtu=mtu):
        yield Veth(a, b, ns)


def _route(ns: str | None) -> IPRoute | NetNS:
    return IPRoute() if ns is None else NetNS(ns)


def link_up(ifname: str, ns: str | None = None, *, up: bool = True) -> None:
    """Set ``ifname`` (in ``ns``) up or down."""
    with _route(ns) as r:
        idx = r.link_lookup(ifname=ifname)
        if not idx:
            raise LookupError(f"no interface {ifname!r} in namespace {ns or 'host'}")
        r.link("set", index=idx[0], state="up" if up else "down")


def link_exists(ifname: str, ns: str | None = None) -> bool:
    with _route(ns) as r:
        return bool(r.link_lookup(ifname=ifname))


def delete_link(ifname: str, ns: str | None = None) -> bool:
    """Delete ``ifname`` if it exists; return whether it did."""
    with _route(ns) as r:
        idx = r.link_lookup(ifname=ifname)
        if not idx:
            return False
        r.link("del", index=idx[0])
        return True


def create_veth(a: str, b: str, peer_ns: str | None = None, *, mtu: int | None = None) -> None:
    """Create veth ``a`` (here) ↔ ``b`` (in ``peer_ns``), both up, IPv6 off. No cleanup: see :func:`veth_pair`."""
    _check_name(a)
    _check_name(b)
    with IPRoute() as ipr:
        ipr.link("add", ifname=a, kind="veth", peer=b)
        ia = ipr.link_lookup(ifname=a)[0]
        ib = ipr.link_lookup(ifname=b)[0]
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{a}/disable_ipv6", "1")
        if mtu is not None:
            ipr.link("set", index=ia, mtu=mtu)
            ipr.link("set", index=ib, mtu=mtu)
        if peer_ns is None:
            _write_sysctl(f"/proc/sys/net/ipv6/conf/{b}/disable_ipv6", "1")
            ipr.link("set", index=ib, state="up")
        else:
            ipr.link("set", index=ib, net_ns_fd=peer_ns)
        ipr.link("set", index=ia, state="up")
    if peer_ns is not None:
        link_up(b, peer_ns)


@contextmanager
def veth_pair(a: str, b: str, peer_ns: str | None = None, *, mtu: int | None = None) -> Iterator[tuple[str, str]]:
    """A veth pair ``a`` ↔ ``b`` with ``b`` moved into ``peer_ns``; deleted on exit (if still there)."""
    try:
        create_veth(a, b, peer_ns, mtu=mtu)
        yield a, b
    finally:
        with contextlib.suppress(Exception):
            if not delete_link(a):
                delete_link(b, peer_ns)


def ns_packet_socket(ns: str | None, ifname: str, *, timeout: float = 5.0) -> socket.socket:
    """An AF_PACKET raw socket bound to ``ifname`` inside ``ns``: ``send`` injects a frame there,
    ``recv`` returns the frames that arrive there (VLAN tags restored by the kernel only in
    ``recvmsg`` auxdata, so use :func:`recv_frames` to get them byte-exact)."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            s.bind((ifname, ETH_P_ALL))
        except BaseException:
            s.close()
            raise
        s.settimeout(timeout)
        return s

    return in_netns(ns, make)


SOL_PACKET = 263
SO_RCVBUFFORCE = 33
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PACKET_OUTGOING = 4


def recv_frames(sock: socket.socket, count: int, *, timeout: float = 10.0) -> list[bytes]:
    """Receive ``count`` incoming frames from ``sock`` (from :func:`ns_packet_socket`), re-inserting
    the 802.1Q tag the kernel moved into auxdata.  Outgoing frames are skipped.  Raises
    ``TimeoutError`` saying how many arrived if fewer than ``count`` come in ``timeout`` s."""
    import struct
    import time

    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"received {len(out)} of {count} frames within {timeout}s")
        sock.settimeout(left)
        try:
            data, anc, _flags, addr = sock.recvmsg(65536, socket.CMSG_SPACE(32))
        except TimeoutError:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        for level, typ, cdata in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 20:
                status, _len, _snap, _mac, _net, tci, tpid = struct.unpack_from("=IIIHHHH", cdata)
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        out.append(data)
    return out
