"""vhost:N against a pure-Python frontend (no testpmd, no root): protocol, rings, accounting."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fake_guest import GPA_BASE, MEM_SIZE, FakeGuest

from spp.ports import vhost_port as vp
from spp.ports.base import Port, PortError, open_port
from spp.runtime.dataplane import DATA_ROOM, Dataplane
from spp.runtime.stats import ERRORS, REASON, RX_PACKETS, TX_BYTES, TX_PACKETS
from spp.testing import wait_for
from spp.testing.conformance import Harness, check_port
from spp.testing.packets import frame_number, numbered

pytestmark = pytest.mark.timeout(120)

SIZES = (60, 64, 100, 511, 1000, 1514)


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "vsock")


@pytest.fixture
def vport(dp: Dataplane, sock: str) -> Iterator[vp.VhostPort]:
    port = open_port(dp, "vhost:0", path=sock)
    assert isinstance(port, vp.VhostPort)
    try:
        yield port
    finally:
        port.close()


@contextmanager
def guest(port: vp.VhostPort, **kw: object) -> Iterator[FakeGuest]:
    g = FakeGuest(port.path, **kw)  # type: ignore[arg-type]
    try:
        wait_for(lambda: port.running(0) and port.running(1), timeout=10, message="both queues running")
        yield g
    finally:
        g.destroy()


def _send(dp: Dataplane, port: Port, frames: list[bytes]) -> int:
    ids = np.empty(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids.tolist(), frames, strict=True):
        dp.write_frame(b, f)
    k = port.tx_burst(ids, len(frames))
    if k < len(frames):
        port.count_drop(port.full_reason, len(frames) - k)
        dp.free(ids[k:].copy(), len(frames) - k)
    return k


def _recv_all(dp: Dataplane, port: Port, count: int) -> list[bytes]:
    got: list[bytes] = []
    bufs = np.empty(32, np.int32)

    def poll() -> bool:
        k = port.rx_burst(bufs)
        got.extend(dp.frame(b) for b in bufs[:k].tolist())
        dp.free(bufs, k)
        return len(got) >= count

    wait_for(poll, timeout=10, message=lambda: f"{count} frames ({len(got)} so far)")
    return got


# -- life cycle and bad input ---------------------------------------------------------


def test_socket_created_and_removed(dp: Dataplane, sock: str) -> None:
    port = open_port(dp, "vhost:3", path=sock)
    try:
        assert os.path.exists(sock)
        d = port.describe()
        assert d == {"port": "vhost:3", "path": sock, "mode": "server", "connected": False, "features": "0x0",
                     "queues_running": []}
    finally:
        port.close()
    assert not os.path.exists(sock)
    port.close()  # idempotent
    # A stale socket file (its process gone) is replaced.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()
    port = open_port(dp, "vhost:3", path=sock)
    port.close()


def test_default_path_is_tmp_sockN(dp: Dataplane) -> None:
    n = 40 + os.getpid() % 20
    if os.path.exists(f"/tmp/sock{n}"):
        pytest.skip(f"/tmp/sock{n} exists")
    port = open_port(dp, f"vhost:{n}")
    try:
        assert port.describe()["path"] == f"/tmp/sock{n}"
        assert os.path.exists(f"/tmp/sock{n}")
    finally:
        port.close()
    assert not os.path.exists(f"/tmp/sock{n}")


def test_bad_input_explained(dp: Dataplane, vport: vp.VhostPort, tmp_path: Path) -> None:
    with pytest.raises(PortError, match="in use by another vhost-user backend"):
        open_port(dp, "vhost:1", path=vport.path)
    with pytest.raises(PortError, match="does not exist"):
        open_port(dp, "vhost:1", path=str(tmp_path / "nodir" / "s"))
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(PortError, match="is not a socket"):
        open_port(dp, "vhost:1", path=str(plain))
    with pytest.raises(PortError, match=r"unknown option\(s\) queues; vhost takes path=..., client=True"):
        open_port(dp, "vhost:1", path=str(tmp_path / "s1"), queues=2)
    with pytest.raises(PortError, match="one queue pair; use vhost:1"):
        open_port(dp, "vhost:1nq1", path=str(tmp_path / "s1"))
    assert not (tmp_path / "s1").exists()


def test_no_frontend_is_link_down(dp: Dataplane, vport: vp.VhostPort) -> None:
    """Without a guest, tx takes the burst, frees it and counts link_down; rx is empty."""
    assert _send(dp, vport, [numbered(i) for i in range(20)]) == 20
    assert vport.stats[REASON["link_down"]] == 20
    assert vport.stats[TX_PACKETS] == 0
    assert vport.rx_burst(np.empty(8, np.int32)) == 0


# -- protocol --------------------------------------------------------------------------


def test_protocol_negotiation(dp: Dataplane, vport: vp.VhostPort) -> None:
    g = FakeGuest(vport.path, setup=False)
    try:
        feats = g.u64(vp.GET_FEATURES)
        for bit in (vp.F_VERSION_1, vp.F_NET_MRG_RXBUF, vp.F_PROTOCOL_FEATURES):
            assert feats >> bit & 1
        pf = g.u64(vp.GET_PROTOCOL_FEATURES)
        for bit in (vp.PF_MQ, vp.PF_REPLY_ACK, vp.PF_STATUS):
            assert pf >> bit & 1
        g.msg(vp.SET_PROTOCOL_FEATURES, struct.pack("<Q", pf))
        assert g.u64(vp.GET_QUEUE_NUM) == 1
        # REPLY_ACK: success for a handled request, failure for one we do not support.
        assert g.msg(vp.SET_STATUS, struct.pack("<Q", 0xF), need_reply=True) == struct.pack("<Q", 0)
        assert g.u64(vp.GET_STATUS) == 0xF
        assert g.msg(vp.SET_LOG_BASE, struct.pack("<QQ", 0, 0), need_reply=True) == struct.pack("<Q", 1)
        # A memory table whose region cannot be mapped is refused, the connection stays.
        bad = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", GPA_BASE, MEM_SIZE, 0, MEM_SIZE * 4)
        assert g.msg(vp.SET_MEM_TABLE, bad, (g.fd,), need_reply=True) == struct.pack("<Q", 1)
        assert vport.connected
    finally:
        g.destroy()
    wait_for(lambda: not vport.connected, timeout=10)


def test_malformed_message_drops_the_connection_only(dp: Dataplane, vport: vp.VhostPort) -> None:
    g = FakeGuest(vport.path, setup=False)
    try:
        g.msg(vp.SET_VRING_NUM, struct.pack("<II", 0, 100))  # not a power of two
        wait_for(lambda: not vport.connected, timeout=10, message="the backend to drop the connection")
    finally:
        g.destroy()
    with guest(vport) as g2:  # the next frontend is served normally
        g2.inject([numbered(1)])
        assert _recv_all(dp, vport, 1) == [numbered(1)]


def test_get_vring_base_stops_the_queue(dp: Dataplane, vport: vp.VhostPort) -> None:
    with guest(vport) as g:
        g.inject([numbered(i) for i in range(5)])
        assert len(_recv_all(dp, vport, 5)) == 5
        assert g.get_vring_base(1) == 5
        assert not vport.running(1)
        assert vport.running(0)
        g.inject([numbered(9)])
        assert vport.rx_burst(np.empty(8, np.int32)) == 0  # stopped: nothing taken


# -- data path -------------------------------------------------------------------------


def _harness(port: vp.VhostPort, g: FakeGuest) -> Harness:
    return Harness(port, inject=g.inject, collect=g.collect, oversize_len=DATA_ROOM + 1)


def test_conformance(dp: Dataplane, vport: vp.VhostPort) -> None:
    with guest(vport) as g:

        @contextmanager
        def factory(d: Dataplane) -> Iterator[Harness]:
            yield _harness(vport, g)

        steps = check_port(factory, dp)
    assert steps[-1] == "pool"


@pytest.mark.parametrize(("rx_buf", "split"), [(2048, True), (256, False), (100, True)])
def test_chains_and_mergeable_buffers(dp: Dataplane, vport: vp.VhostPort, rx_buf: int, split: bool) -> None:
    """Header in its own descriptor on transmit; frames spread over several small receive buffers."""
    frames = [numbered(i, size=SIZES[i % len(SIZES)]) for i in range(120)]
    with guest(vport, rx_buf=rx_buf, split_header=split) as g:
        g.inject(frames)
        assert _recv_all(dp, vport, len(frames)) == frames
        sent = 0
        out: list[bytes] = []
        for i in range(0, len(frames), 20):
            sent += _send(dp, vport, frames[i : i + 20])
            out += g.collect(0, 0)
        out += g.collect(len(frames) - len(out), 10)
    assert sent == len(frames)
    assert out == frames
    assert vport.stats[TX_BYTES] == sum(len(f) for f in frames)


def test_legacy_header_without_version_1(dp: Dataplane, vport: vp.VhostPort) -> None:
    """No VERSION_1, no MRG_RXBUF: the 10-byte header."""
    with guest(vport, features=1 << vp.F_PROTOCOL_FEATURES) as g:
        assert g.hdr_len == 10
        g.inject([numbered(1, size=200)])
        assert _recv_all(dp, vport, 1) == [numbered(1, size=200)]
        assert _send(dp, vport, [numbered(2, size=300)]) == 1
        assert g.collect(1, 10) == [numbered(2, size=300)]


def test_guest_ring_full_refuses_the_rest(dp: Dataplane, vport: vp.VhostPort) -> None:
    with guest(vport, num=8) as g:
        assert _send(dp, vport, [numbered(i) for i in range(20)]) == 8
        assert vport.stats[REASON["tx_full"]] == 12
        assert [frame_number(f) for f in g.collect(8, 10)] == list(range(8))
        assert _send(dp, vport, [numbered(i) for i in range(3)]) == 3  # buffers re-posted


def test_broken_descriptor_is_dropped_and_counted(dp: Dataplane, vport: vp.VhostPort) -> None:
    """A descriptor pointing outside guest memory: the frame is dropped (bad_frame), the ring moves on."""
    with guest(vport) as g:

        def corrupt(i: int) -> None:
            if i == 2:
                o = g.ring(1)[0] + 16 * i
                g.m64[o // 8] = 0x10  # no region there

        g.inject([numbered(i) for i in range(5)], raw_desc=corrupt)
        got = _recv_all(dp, vport, 4)
        assert [frame_number(f) for f in got] == [0, 1, 3, 4]
        assert vport.stats[REASON["bad_frame"]] == 1
        g.reclaim_tx()
        assert len(g.tx_free) == g.num  # every descriptor came back, the broken one too
        # Receive side: a receive buffer outside memory is returned empty and counted as an error.
        o = g.ring(0)[0] + 16 * 0
        g.m64[o // 8] = 0x10
        assert _send(dp, vport, [numbered(7)]) == 1
        assert vport.stats[ERRORS] == 1
        assert g.collect(1, 10) == [numbered(7)]
        assert g.rx_errors == 1


def test_reconnect_with_same_memory(dp: Dataplane, vport: vp.VhostPort) -> None:
    """QEMU-style reconnect: the frontend comes back with its rings where they were."""
    with guest(vport) as g:
        g.inject([numbered(i) for i in range(10)])
        assert len(_recv_all(dp, vport, 10)) == 10
        assert _send(dp, vport, [numbered(i) for i in range(4)]) == 4
        g.close()
        wait_for(lambda: not vport.connected, timeout=10)
        assert _send(dp, vport, [numbered(i) for i in range(6)]) == 6  # link_down meanwhile
        assert vport.stats[REASON["link_down"]] == 6
        g.connect(setup=False)
        g.setup(base=(4, 10))
        wait_for(lambda: vport.running(0) and vport.running(1), timeout=10)
        g.inject([numbered(100 + i) for i in range(10)])
        assert [frame_number(f) for f in _recv_all(dp, vport, 10)] == list(range(100, 110))
        assert _send(dp, vport, [numbered(200)]) == 1
        assert [frame_number(f) for f in g.collect(5, 10)] == [0, 1, 2, 3, 200]
    assert vport.connections == 2
    assert vport.stats[RX_PACKETS] == 20


def test_client_mode_reconnects(dp: Dataplane, sock: str) -> None:
    g = FakeGuest(sock, listen=True)
    port = open_port(dp, "vhost:2", path=sock, client=True)
    assert isinstance(port, vp.VhostPort)
    try:
        g.accept()
        wait_for(lambda: port.running(0) and port.running(1), timeout=10)
        g.inject([numbered(1)])
        assert _recv_all(dp, port, 1) == [numbered(1)]
        g.close()  # the frontend goes away; spp connects again (into the listen backlog)
        wait_for(lambda: port.connections == 2, timeout=10)
        assert not port.running(0)
        g.rx_used_seen = g.rx_avail = g.tx_avail = g.tx_used_seen = 0
        g.mem[:0x20000] = 0
        g.tx_free = list(range(g.num))
        g.accept()
        wait_for(lambda: port.running(0) and port.running(1), timeout=10)
        assert _send(dp, port, [numbered(2)]) == 1
        assert g.collect(1, 10) == [numbered(2)]
        assert port.describe()["mode"] == "client"
    finally:
        port.close()
        g.destroy()
    assert os.path.exists(sock) is False


def test_client_default_for_vhost_client_flag(dp: Dataplane, sock: str) -> None:
    """``spp.ports.vhost.set_client_default(True)`` (a secondary's --vhost-client) makes ports connect."""
    from spp.ports import vhost

    vhost.set_client_default(True)
    try:
        port = open_port(dp, "vhost:5", path=sock)
    finally:
        vhost.set_client_default(False)
    try:
        assert port.describe()["mode"] == "client"
        assert not os.path.exists(sock)  # a client creates no socket file
    finally:
        port.close()


def test_impossible_avail_index_stops_the_queue(dp: Dataplane, vport: vp.VhostPort) -> None:
    """A guest publishing avail.idx more than a ring ahead: the queue is ignored, nothing is read."""
    with guest(vport, num=8) as g:
        _, avail, _ = g.ring(0)
        g.m16[avail // 2 + 1] = 100  # 8 descriptors, 100 "available"
        assert _send(dp, vport, [numbered(i) for i in range(4)]) == 4
        assert vport.stats[REASON["link_down"]] == 4
        assert vport.stats[TX_PACKETS] == 0
        _, avail1, _ = g.ring(1)
        g.m16[avail1 // 2 + 1] = 50
        assert vport.rx_burst(np.empty(8, np.int32)) == 0
    # A new frontend sets the queues up again and they run.
    with guest(vport) as g2:
        assert _send(dp, vport, [numbered(1)]) == 1
        assert g2.collect(1, 10) == [numbered(1)]
