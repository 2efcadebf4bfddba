"""Every driver passes the same conformance suite (spp.testing.conformance)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from spp.ports.base import open_port
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.testing.conformance import ConformanceError, Harness, check_port, iter_steps
from spp.testing.memport import MemoryPort
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, unique_ifname
from spp.testing.packets import numbered

ALL = list(iter_steps())


def test_nullpmd_conforms(dp: Dataplane) -> None:
    template = numbered(0, size=64)

    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = open_port(dp, "nullpmd:0", template=template)
        yield Harness(port, inject=None, collect=None, runt=False, oversize=False, source_frame=template)
        port.close()

    assert check_port(make, dp) == ["rx", "tx", "tx_callbacks", "callbacks_live", "pool"]


def test_ring_conforms(dp: Dataplane) -> None:
    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = open_port(dp, "ring:3")
        ctrl, slots = dp.ring_ctrl[3], dp.ring_slots[3]

        def inject(frames: list[bytes]) -> None:
            ids = np.zeros(len(frames), np.int32)
            assert dp.alloc(ids) == len(frames)
            for b, f in zip(ids, frames, strict=True):
                dp.write_frame(int(b), f)
            assert ringcore.ring_enqueue(ctrl, slots, ids, 0, len(ids)) == len(ids)

        def collect(count: int, timeout: float) -> list[bytes]:
            out = np.zeros(max(count, 1) + 64, np.int32)
            k = int(ringcore.ring_dequeue(ctrl, slots, out, 0, len(out)))
            frames = [dp.frame(int(b)) for b in out[:k]]
            dp.free(out, k)
            return frames

        yield Harness(port, inject, collect, runt=False, oversize=False)
        port.close()

    assert check_port(make, dp) == [*ALL[:4], "callbacks_live", "pool"]


def test_memory_port_conforms() -> None:
    """Without a data plane, check_port makes its own leak-checked one."""
    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = MemoryPort(dp, 5, tx_room=13)  # accepts 13 per burst: exercises the refused remainder

        def collect(count: int, timeout: float) -> list[bytes]:
            out, port.sent[:] = list(port.sent), []
            return out

        yield Harness(port, port.inject, collect)
        port.close()

    assert check_port(make) == ALL


def _pcap_record(frame: bytes) -> bytes:
    return struct.pack("<IIII", 1, 2, len(frame), len(frame)) + frame


def _read_pcap(path: Path, skip: int) -> list[bytes]:
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[:4])[0] == 0xA1B2C3D4
    pos, out = 24, []
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        out.append(raw[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
    return out[skip:]


def test_pcap_conforms(dp: Dataplane, tmp_path: Path) -> None:
    rx, tx = tmp_path / "in.pcap", tmp_path / "out.pcap"
    rx.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = open_port(dp, "pcap:1", rx=str(rx), tx=str(tx), follow=True)
        taken = 0

        def inject(frames: list[bytes]) -> None:
            with rx.open("ab") as f:
                f.write(b"".join(_pcap_record(fr) for fr in frames))

        def collect(count: int, timeout: float) -> list[bytes]:
            nonlocal taken
            out = _read_pcap(tx, taken)
            taken += len(out)
            return out

        yield Harness(port, inject, collect)
        port.close()

    assert check_port(make, dp) == ALL


@pytest.mark.root
def test_tap_conforms(dp: Dataplane) -> None:
    name = unique_ifname("spptap")

    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = open_port(dp, "tap:7", name=name)
        try:
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], mtu=9000)
            # The kernel side of the TAP: what it sends we read from the fd, what we write it receives.
            sock = ns_packet_socket(None, name)
            try:
                yield Harness(port, lambda frames: [sock.send(f) for f in frames] and None,
                              lambda count, timeout: recv_frames(sock, count, timeout=timeout),
                              runt=False)
            finally:
                sock.close()
        finally:
            port.close()
        assert not os.path.exists(f"/sys/class/net/{name}"), "the TAP we created must disappear on close"

    assert check_port(make, dp) == ALL


@pytest.mark.root
def test_phy_conforms(dp: Dataplane, veth: Veth) -> None:
    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        dp.set_config({"phy": ["nonexistent0", veth.local]})
        port = open_port(dp, "phy:1")
        assert port.fileno() is not None  # starts receiving
        sock = ns_packet_socket(veth.ns, veth.peer)
        try:
            yield Harness(port, lambda frames: [sock.send(f) for f in frames] and None,
                          lambda count, timeout: recv_frames(sock, count, timeout=timeout),
                          runt=False)  # the kernel refuses to send frames < 14 bytes
        finally:
            sock.close()
            port.close()

    assert check_port(make, dp) == ALL


def test_conformance_catches_a_lying_port(dp: Dataplane) -> None:
    """The kit itself: a port whose counters are off must fail."""

    class Liar(MemoryPort):
        def count_rx(self, packets: int, nbytes: int) -> None:
            super().count_rx(packets, nbytes + 1)

    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        port = Liar(dp, 6)
        yield Harness(port, port.inject, lambda c, t: [])
        port.close()

    with pytest.raises(ConformanceError, match=r"\[rx\] counters"):
        check_port(make, dp)


def test_socket_module_has_packet_support() -> None:
    assert hasattr(socket, "AF_PACKET")
