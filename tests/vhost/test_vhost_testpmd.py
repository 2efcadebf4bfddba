"""vhost:N against a real frontend: DPDK's testpmd with net_virtio_user plays the guest.

Each test counts both sides: what spp sent/received (port counters, drops by reason)
against testpmd's own port statistics, and checks frames byte for byte where the
content is ours.  Skipped when dpdk-testpmd is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from vhost_helpers import GuestPmd, guest_pmd, need_testpmd, receive, send_frames

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import Port, PortTable, open_port
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import REASON, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS
from spp.testing import wait_for
from spp.testing.packets import frame_number, numbered

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

SIZES = (60, 64, 100, 128, 511, 1000, 1514)


@pytest.fixture
def sock(tmp_path: Path) -> str:
    need_testpmd()
    return str(tmp_path / f"vs{os.getpid() % 10000}")


@pytest.fixture
def vport(dp: Dataplane, sock: str) -> Iterator[Port]:
    port = open_port(dp, "vhost:0", path=sock)
    try:
        yield port
    finally:
        port.close()
    assert not os.path.exists(sock), "the socket must be removed when the port closes"


def _running(port: Port) -> bool:
    return bool(port.running(0) and port.running(1))  # type: ignore[attr-defined]


def _exchange(dp: Dataplane, port: Port, frames: list[bytes], got: list[bytes], window: int = 64) -> int:
    """Offer ``frames`` (retrying what the guest ring refuses) while receiving them back; return refusals.

    At most ``window`` frames are in flight, so the echoing guest's transmit ring (256
    descriptors) never overflows: a full guest ring would be a loss on the guest side.
    """
    ids = send_frames(dp, port, frames)
    pos = 0
    refused = 0

    def step() -> bool:
        nonlocal pos, refused
        while receive(dp, port, got):
            pass
        if pos < len(ids) and pos - len(got) < window:
            chunk = ids[pos : pos + min(32, window - (pos - len(got)))].copy()
            k = port.tx_burst(chunk, len(chunk))
            refused += len(chunk) - k
            # What was refused is still ours: offer it again next time.
            pos += k
        return pos == len(ids) and len(got) >= len(frames)

    wait_for(step, timeout=60, interval=0.0002, message=lambda: f"{len(got)} of {len(frames)} frames back")
    return refused


def test_io_echo_byte_exact(dp: Dataplane, vport: Port, sock: str) -> None:
    """spp → guest rx queue → testpmd io forward → guest tx queue → spp: every frame, byte for byte."""
    with guest_pmd(sock, "io") as t:
        wait_for(lambda: _running(vport), timeout=60, message="both queues running")
        t.cmd("start")
        frames = [numbered(i, size=SIZES[i % len(SIZES)]) for i in range(700)]
        got: list[bytes] = []
        _exchange(dp, vport, frames, got)
        assert [frame_number(f) for f in got] == list(range(len(frames)))
        assert got == frames
        st = t.port_stats()
        t.cmd("stop")
    total = sum(len(f) for f in frames)
    row = vport.stats
    assert (row[TX_PACKETS], row[TX_BYTES]) == (len(frames), total)
    assert (row[RX_PACKETS], row[RX_BYTES]) == (len(frames), total)
    assert st["RX-packets"] == st["TX-packets"] == len(frames)
    assert st["RX-bytes"] == st["TX-bytes"] == total
    assert vport.stats_dict()["drops"] == {}


def test_guest_txonly_counts_match(dp: Dataplane, vport: Port, sock: str) -> None:
    """testpmd transmits as fast as it can; spp receives exactly what testpmd says it sent."""
    with guest_pmd(sock, "txonly", extra=("--txpkts=64",)) as t:
        wait_for(lambda: _running(vport), timeout=60, message="both queues running")
        got: list[bytes] = []
        t.cmd("start")
        wait_for(lambda: receive(dp, vport, got) >= 0 and len(got) >= 5000, timeout=30, interval=0.0005,
                 message=lambda: f"5000 frames from txonly ({len(got)} so far)")
        t.cmd("stop")
        # Drain what is still in the ring, then compare with testpmd's count.
        wait_for(lambda: receive(dp, vport, got) == 0 and receive(dp, vport, got) == 0, timeout=10)
        st = t.port_stats()
    assert st["TX-packets"] == len(got) == vport.stats[RX_PACKETS]
    assert st["TX-bytes"] == sum(len(f) for f in got) == vport.stats[RX_BYTES]
    assert {len(f) for f in got} == {64}
    assert all(f[12:14] == b"\x08\x00" for f in got[:100]), "txonly sends IPv4"
    assert vport.stats_dict()["drops"] == {}


def test_guest_rxonly_counts_match(dp: Dataplane, vport: Port, sock: str) -> None:
    """spp transmits into a guest that only receives: testpmd counts every frame spp says it sent."""
    with guest_pmd(sock, "rxonly") as t:
        wait_for(lambda: _running(vport), timeout=60, message="both queues running")
        t.cmd("start")
        n = 3000
        frames = [numbered(i, size=SIZES[i % len(SIZES)]) for i in range(n)]
        refused = 0
        ids = send_frames(dp, vport, frames)
        pos = 0

        def step() -> bool:
            nonlocal pos, refused
            chunk = ids[pos : pos + 32].copy()
            k = vport.tx_burst(chunk, len(chunk))
            refused += len(chunk) - k
            pos += k
            return pos == n

        wait_for(step, timeout=60, interval=0.0002)
        wait_for(lambda: t.port_stats()["RX-packets"] == n, timeout=20,
                 message=lambda: f"testpmd to count {n} frames: {t.port_stats()}")
        st = t.port_stats()
        t.cmd("stop")
    assert vport.stats[TX_PACKETS] == n
    assert st["RX-bytes"] == vport.stats[TX_BYTES] == sum(len(f) for f in frames)
    assert vport.stats_dict()["drops"] == {}


def test_guest_crash_and_reconnect_under_traffic(dp: Dataplane, vport: Port, sock: str) -> None:
    """Traffic flows, the guest is killed (SIGKILL), frames are counted link_down, a new guest
    connects to the same port and traffic resumes; sent = transmitted + counted drops."""
    sent = 0
    refused = 0
    n_frames = 0

    def pump(count: int) -> None:
        """Offer ``count`` bursts of 32; count refusals like a worker does (tx_full), free them."""
        nonlocal sent, refused, n_frames
        for _ in range(count):
            ids = send_frames(dp, vport, [numbered(n_frames + i) for i in range(32)])
            n_frames += 32
            k = vport.tx_burst(ids, 32)
            sent += 32
            if k < 32:
                vport.count_drop(vport.full_reason, 32 - k)
                refused += 32 - k
                dp.free(ids[k:].copy(), 32 - k)

    t1 = GuestPmd(sock, "rxonly")
    try:
        t1.wait_prompt(0, timeout=90)
        wait_for(lambda: _running(vport), timeout=60)
        t1.cmd("start")
        pump(50)
        wait_for(lambda: t1.port_stats()["RX-packets"] > 0, timeout=20)
    finally:
        t1.kill()
    wait_for(lambda: not vport.connected, timeout=20, message="the port to notice the guest is gone")  # type: ignore[attr-defined]
    assert not vport.running(0)  # type: ignore[attr-defined]
    down_before = int(vport.stats[REASON["link_down"]])
    pump(20)  # nobody there: accepted, freed, counted link_down
    assert vport.stats[REASON["link_down"]] - down_before == 20 * 32

    with guest_pmd(sock, "rxonly") as t2:
        wait_for(lambda: _running(vport), timeout=60, message="queues running again")
        base_tx = int(vport.stats[TX_PACKETS])
        t2.cmd("start")
        pump(50)
        delivered = int(vport.stats[TX_PACKETS]) - base_tx
        assert delivered > 0, "traffic must resume after the guest reconnected"
        wait_for(lambda: t2.port_stats()["RX-packets"] == delivered, timeout=20,
                 message=lambda: f"testpmd to count {delivered}: {t2.port_stats()}")
        t2.cmd("stop")
    assert vport.connections == 2  # type: ignore[attr-defined]
    row = vport.stats
    drops = vport.stats_dict()["drops"]
    assert isinstance(drops, dict)
    assert sent == row[TX_PACKETS] + sum(drops.values())
    assert drops.get("tx_full", 0) == refused
    assert drops["link_down"] >= 20 * 32


def test_client_mode(dp: Dataplane, sock: str) -> None:
    """``client=True`` (SPP's --vhost-client): testpmd listens (server=1), spp connects."""
    t = GuestPmd(sock, "io", server=True)
    port = None
    try:
        wait_for(lambda: os.path.exists(sock) or t.proc.poll() is not None, timeout=60)
        port = open_port(dp, "vhost:1", path=sock, client=True)
        t.wait_prompt(0, timeout=90)
        wait_for(lambda: _running(port), timeout=60, message="queues running in client mode")
        t.cmd("start")
        frames = [numbered(i, size=SIZES[i % len(SIZES)]) for i in range(200)]
        got: list[bytes] = []
        _exchange(dp, port, frames, got)
        assert got == frames
    finally:
        if port is not None:
            port.close()
        t.quit()
    assert np.array_equal(port.stats[[TX_PACKETS, RX_PACKETS]], [200, 200])


def test_worker_traffic_survives_guest_crash(dp: Dataplane, vport: Port, sock: str) -> None:
    """A worker forwards nullpmd:0 → vhost:0 and vhost:0 → nullpmd:1 while testpmd echoes (io).
    The guest is SIGKILLed under traffic and a new one connects: every frame is accounted for
    (nullpmd:0 rx = vhost:0 tx + its drops; vhost:0 rx = nullpmd:1 tx) and the pool is whole."""
    pt = PortTable(dp)
    src, dst = pt.get("nullpmd:0"), pt.get("nullpmd:1")
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "out", 0), (Attachment(src),), (Attachment(vport),)),
                              ComponentPlan(Forward(dp, "in", 0), (Attachment(vport),), (Attachment(dst),))), 1),
                  timeout=120)
        t1 = GuestPmd(sock, "io")
        try:
            t1.wait_prompt(0, timeout=90)
            t1.cmd("start")
            wait_for(lambda: vport.stats[RX_PACKETS] > 1000, timeout=60, message="echoed traffic")
            assert w._native is not None  # the compiled loop drives vhost:0 (guest memory by address)
        finally:
            t1.kill()  # under traffic: the port unmaps the memory only after a grace period
        down = REASON["link_down"]
        wait_for(lambda: vport.stats[down] > 1000, timeout=30, message="link_down drops while the guest is away")
        with guest_pmd(sock, "io") as t2:
            t2.cmd("start")
            rx0 = int(vport.stats[RX_PACKETS])
            wait_for(lambda: vport.stats[RX_PACKETS] > rx0 + 1000, timeout=60, message="traffic to resume")
            w.publish(WorkerPlan((), 2), timeout=30)
            t2.cmd("stop")
    finally:
        w.stop()
    assert w.error is None
    assert vport.connections == 2  # type: ignore[attr-defined]
    sent = int(src.stats[RX_PACKETS])
    drops = vport.stats_dict()["drops"]
    assert isinstance(drops, dict)
    assert sent == vport.stats[TX_PACKETS] + sum(drops.values())
    assert set(drops) <= {"link_down", "tx_full"}
    assert int(vport.stats[RX_PACKETS]) == int(dst.stats[TX_PACKETS])
    pt.close_all()
