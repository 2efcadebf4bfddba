"""pcap:N's compiled kernels called on the port's row, as the compiled worker loop calls them.

``pcap_rx_at``/``pcap_tx_at`` take the row :meth:`PcapPort.native_view` returns (arrays by
address) and do the file I/O themselves; the files are checked against scapy's
``wrpcap``/``rdpcap`` byte for byte.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numba import njit
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

from spp.ports.base import open_port
from spp.ports.native import KIND_PCAP
from spp.ports.pcap import PC_COLS, REC_HDR, TX_CHUNK, PcapPort, iov_advance, pcap_rx_at, pcap_tx_at
from spp.runtime.atomics import atomic_add
from spp.runtime.dataplane import Dataplane, pool_free
from spp.testing.packets import numbered, udp

#: The worker loop's row width (``native_loop.VH_COLS``): a pcap row must fit.
VH_COLS = 5
FRAMES = [numbered(i, size=60 + 13 * i) for i in range(50)] + [udp(vlan=7, size=1514)]


@njit(nogil=True, _nrt=False)
def _pump(vh: Any, rx_r: int, tx_r: int, pctrl: Any, pslots: Any, refcnt: Any, header: Any, meta: Any,
          data: Any, stats: Any, rx_slot: int, tx_slot: int, buf: Any, scratch: Any, n: int, res: Any) -> None:
    """One pass of a compiled loop without numba's runtime: a burst from one pcap row to another.

    ``res`` = (received, accepted); what the tx row refused is freed, as the loop does.
    """
    k = pcap_rx_at(vh[rx_r], pctrl, pslots, refcnt, header, meta, data, stats, rx_slot, buf, n)
    a = 0
    if k:
        a = pcap_tx_at(vh[tx_r], pctrl, pslots, refcnt, header, meta, data, stats, tx_slot, buf, k, scratch)
        if a < 0:
            pool_free(pctrl, pslots, refcnt, header, buf, 0, k)
        elif a < k:
            pool_free(pctrl, pslots, refcnt, header, buf, a, k - a)
    res[0] = k
    res[1] = a


@njit(nogil=True, _nrt=False)
def _tx_bursts(row: Any, pctrl: Any, pslots: Any, refcnt: Any, header: Any, meta: Any, data: Any, stats: Any,
               slot: int, ids: Any, scratch: Any, res: Any) -> None:
    """A worker's transmit passes: ``pcap_tx_at`` on each row of ``ids``, without returning to Python."""
    for b in range(ids.shape[0]):
        res[b] = pcap_tx_at(row, pctrl, pslots, refcnt, header, meta, data, stats, slot, ids[b], ids.shape[1],
                            scratch)


@njit(nogil=True, _nrt=False)
def _rx_into(row: Any, pctrl: Any, pslots: Any, refcnt: Any, header: Any, meta: Any, data: Any, stats: Any,
             slot: int, got: Any, total: Any, want: int) -> int:
    """A worker's receive passes: ``pcap_rx_at`` in bursts of 32 into ``got`` until ``total[0]``
    (shared by all callers) reaches ``want``; the count this caller received."""
    k = 0
    while total[0] < want and k + 32 <= got.shape[0]:
        r = pcap_rx_at(row, pctrl, pslots, refcnt, header, meta, data, stats, slot, got[k:], 32)
        k += r
        atomic_add(total, 0, r)
    return k


def _rx(dp: Dataplane, port: PcapPort, bufs: np.ndarray, n: int) -> int:
    return int(pcap_rx_at(port.native_view(), dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                          dp.stats, port.slot, bufs, n))


def _tx(dp: Dataplane, port: PcapPort, ids: np.ndarray, n: int) -> int:
    return int(pcap_tx_at(port.native_view(), dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                          dp.stats, port.slot, ids, n, np.empty(max(n, 1), np.int32)))


def _bufs(dp: Dataplane, frames: list[bytes]) -> np.ndarray:
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    return ids


def _drain_at(dp: Dataplane, port: PcapPort, burst: int = 32) -> list[bytes]:
    bufs = np.zeros(burst, np.int32)
    out: list[bytes] = []
    while (k := _rx(dp, port, bufs, burst)) > 0:
        out.extend(dp.frame(int(b)) for b in bufs[:k])
        dp.free(bufs[:k].copy(), k)
    return out


def _pcap(dp: Dataplane, name: str, **opts: Any) -> PcapPort:
    port = open_port(dp, name, **opts)
    assert isinstance(port, PcapPort)
    return port


def _like_scapy(path: Path, frames: list[bytes]) -> bytes:
    """What scapy's ``wrpcap`` writes for ``frames`` with the timestamps ``path`` holds."""
    raw = path.read_bytes()
    pkts, pos = [], 24
    for f in frames:
        sec, usec = struct.unpack_from("<II", raw, pos)
        assert abs(sec - time.time()) < 600 and usec < 1_000_000  # the time of writing
        p = Ether(f)
        assert bytes(p) == f
        p.time = Decimal(sec) + Decimal(usec) / Decimal(1_000_000)
        pkts.append(p)
        pos += REC_HDR + len(f)
    ref = path.with_suffix(".scapy")
    wrpcap(str(ref), pkts, linktype=1)
    return ref.read_bytes()


def test_row_fits_the_loop_and_kind(dp: Dataplane, tmp_path: Path) -> None:
    port = _pcap(dp, "pcap:0", tx=str(tmp_path / "o.pcap"))
    try:
        row = port.native_view()
        assert row.dtype == np.int64 and row.shape == (PC_COLS,) and PC_COLS <= VH_COLS
        assert KIND_PCAP == 6 and all(row)
    finally:
        port.close()


@pytest.mark.parametrize("nano", [False, True])
def test_rx_at_reads_what_scapy_writes(dp: Dataplane, tmp_path: Path, nano: bool) -> None:
    path = tmp_path / "in.pcap"
    wrpcap(str(path), [Ether(f) for f in FRAMES], nano=nano)
    port = _pcap(dp, "pcap:1", rx=str(path))
    try:
        assert _drain_at(dp, port, burst=7) == FRAMES
        assert port.rx_done
        st = port.stats_dict()
        assert st["rx_packets"] == len(FRAMES) and st["rx_bytes"] == sum(map(len, FRAMES)) and st["drops"] == {}
    finally:
        port.close()


def test_tx_at_writes_what_scapy_writes_byte_for_byte(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    port = _pcap(dp, "pcap:2", tx=str(path))
    try:
        for part in (FRAMES[:20], FRAMES[20:21], FRAMES[21:]):
            ids = _bufs(dp, part)
            assert _tx(dp, port, ids, len(ids)) == len(ids)
            # complete on disk after every burst
            assert [bytes(p) for p in rdpcap(str(path))] == FRAMES[: FRAMES.index(part[-1]) + 1]
        assert path.read_bytes() == _like_scapy(path, FRAMES)
        st = port.stats_dict()
        assert st["tx_packets"] == len(FRAMES) and st["tx_bytes"] == sum(map(len, FRAMES)) and st["drops"] == {}
    finally:
        port.close()


def test_tx_at_burst_larger_than_one_writev(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    frames = [numbered(i, size=64 + i % 50) for i in range(2 * TX_CHUNK + 77)]
    port = _pcap(dp, "pcap:3", tx=str(path))
    try:
        ids = _bufs(dp, frames)
        assert _tx(dp, port, ids, len(ids)) == len(frames)
        assert path.read_bytes() == _like_scapy(path, frames)
    finally:
        port.close()


def test_compiled_loop_pumps_file_to_file(dp: Dataplane, tmp_path: Path) -> None:
    """A loop-shaped caller compiled without numba's runtime, rows in a ``VH_COLS`` table."""
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(src), [Ether(f) for f in FRAMES])
    rx, tx = _pcap(dp, "pcap:4", rx=str(src)), _pcap(dp, "pcap:5", tx=str(dst))
    try:
        vh = np.zeros((3, VH_COLS), np.int64)
        vh[1, :PC_COLS], vh[2, :PC_COLS] = rx.native_view(), tx.native_view()
        buf, scratch, res = np.zeros(32, np.int32), np.zeros(32, np.int32), np.zeros(2, np.int64)
        moved = 0
        for _ in range(100):
            _pump(vh, 1, 2, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats, rx.slot,
                  tx.slot, buf, scratch, 32, res)
            assert res[0] == res[1]
            moved += int(res[0])
            if res[0] == 0:
                break
        assert moved == len(FRAMES) and rx.rx_done
        assert [bytes(p) for p in rdpcap(str(dst))] == FRAMES
        assert dst.read_bytes() == _like_scapy(dst, FRAMES)
        assert rx.stats_dict()["rx_packets"] == tx.stats_dict()["tx_packets"] == len(FRAMES)
    finally:
        rx.close()
        tx.close()


def test_loop_and_pool_empty_through_rx_at(tmp_path: Path) -> None:
    from spp.testing import stack

    path = tmp_path / "loop.pcap"
    frames = [numbered(i) for i in range(5)]
    wrpcap(str(path), [Ether(f) for f in frames])
    with stack(n_bufs=64) as dp:
        port = _pcap(dp, "pcap:0", rx=str(path), loop=True)
        try:
            hold = np.zeros(64, np.int32)
            assert dp.alloc(hold) == 64
            bufs = np.zeros(32, np.int32)
            assert _rx(dp, port, bufs, 32) == 0  # no buffer: nothing read, nothing lost
            dp.free(hold)
            got: list[bytes] = []
            for _ in range(3):
                k = _rx(dp, port, bufs, 32)
                assert k == 32
                got.extend(dp.frame(int(b)) for b in bufs[:k])
                dp.free(bufs[:k].copy(), k)
            assert got == (frames * 20)[:96]
            assert port.stats_dict()["drops"] == {} and not port.rx_done
        finally:
            port.close()


def test_follow_reads_a_header_written_later(dp: Dataplane, tmp_path: Path) -> None:
    path, ref = tmp_path / "grow.pcap", tmp_path / "ref.pcap"
    path.write_bytes(b"")
    port = _pcap(dp, "pcap:6", rx=str(path), follow=True)
    try:
        bufs = np.zeros(32, np.int32)
        assert _rx(dp, port, bufs, 32) == 0
        wrpcap(str(ref), [Ether(f) for f in FRAMES])
        raw = ref.read_bytes()
        with path.open("ab") as f:
            f.write(raw[:10])  # half a header
            f.flush()
            assert _rx(dp, port, bufs, 32) == 0
            f.write(raw[10:200])  # the header and part of the records
            f.flush()
            got = _drain_at(dp, port)
            f.write(raw[200:])
            f.flush()
            got += _drain_at(dp, port)
        assert got == FRAMES and not port.rx_done and port.stats_dict()["drops"] == {}
    finally:
        port.close()


def test_follow_counts_a_bad_late_header(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "ng.pcap"
    path.write_bytes(b"")
    port = _pcap(dp, "pcap:7", rx=str(path), follow=True)
    try:
        path.write_bytes(struct.pack("<I", 0x0A0D0D0A) + bytes(40))  # pcapng
        bufs = np.zeros(8, np.int32)
        assert _rx(dp, port, bufs, 8) == 0 and _rx(dp, port, bufs, 8) == 0
        st = port.stats_dict()
        assert st["drops"] == {"bad_frame": 1} and st["errors"] == 1 and port.rx_done
    finally:
        port.close()


def test_no_tx_file_and_closed_port(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "in.pcap"
    wrpcap(str(path), [Ether(f) for f in FRAMES[:3]])
    port = _pcap(dp, "pcap:8", rx=str(path))
    row = port.native_view()
    ids = _bufs(dp, FRAMES[:4])
    assert _tx(dp, port, ids, 4) == 4  # taken, freed, counted
    assert port.stats_dict()["drops"] == {"no_tx_port": 4}
    port.close()
    bufs = np.zeros(8, np.int32)
    assert int(pcap_rx_at(row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats,
                          port.slot, bufs, 8)) == 0
    ids = _bufs(dp, FRAMES[:2])
    assert int(pcap_tx_at(row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats,
                          port.slot, ids, 2, np.empty(2, np.int32))) == -1  # not up: nothing taken
    dp.free(ids)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a disk that fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True, check=False).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.root
def test_disk_full_refuses_the_burst_and_keeps_the_file_whole(dp: Dataplane, small_fs: Path) -> None:
    path = small_fs / "cap.pcap"
    port = _pcap(dp, "pcap:9", tx=str(path))
    burst = [numbered(i, size=1000) for i in range(10)]
    try:
        done = 0
        for _ in range(20):
            ids = _bufs(dp, burst)
            k = _tx(dp, port, ids, len(ids))
            if k == 0:
                dp.free(ids)  # refused: still the caller's
                break
            assert k == len(burst)
            done += 1
        else:
            pytest.fail("the 64 KiB file system never filled up")
        assert done >= 1
        assert port.stats_dict()["errors"] == 1
        assert [bytes(p) for p in rdpcap(str(path))] == burst * done  # cut back to the last complete burst
        assert path.stat().st_size == 24 + done * len(burst) * (REC_HDR + 1000)
        # Python's tx_burst takes the same path: refused, the caller counts tx_full.
        ids = _bufs(dp, burst)
        assert port.tx_burst(ids, len(ids)) == 0
        dp.free(ids)
        assert port.stats_dict()["errors"] == 2
    finally:
        port.close()


def test_worker_forwards_and_mirrors_file_to_file(dp: Dataplane, tmp_path: Path) -> None:
    """pcap rx → forward → pcap tx with a port mirror to a third pcap port, under a real worker;
    compiled as soon as the port declares its kind (``PcapPort.native_kind = KIND_PCAP``)."""
    from spp.components.forward import Forward
    from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
    from spp.mirror.engine import PortMirror

    frames = [numbered(i, size=60 + (i * 37) % 1455) for i in range(3000)]
    src, dst, mir = tmp_path / "in.pcap", tmp_path / "out.pcap", tmp_path / "mir.pcap"
    wrpcap(str(src), [Ether(f) for f in frames])
    rx, tx, mp = _pcap(dp, "pcap:0", rx=str(src)), _pcap(dp, "pcap:1", tx=str(dst)), _pcap(dp, "pcap:2", tx=str(mir))
    pm = PortMirror(dp, "m1", rx, mp, "rx")
    pm.attach()
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f1", 0), (Attachment(rx),), (Attachment(tx),)),), 1),
                  timeout=600)
        assert w.path == ("native", None) and PcapPort.native_kind == KIND_PCAP
        deadline = time.monotonic() + 300  # a cold compile of the loop takes a minute or two
        while tx.stats_dict()["tx_packets"] < len(frames) and time.monotonic() < deadline and w.error is None:
            time.sleep(0.01)
        w.publish(WorkerPlan((), 2), timeout=60)
    finally:
        w.stop()
        pm.detach()
        for p in (rx, tx, mp):
            p.close()
    assert w.error is None
    assert [bytes(p) for p in rdpcap(str(dst))] == frames
    assert [bytes(p) for p in rdpcap(str(mir))] == frames
    assert rx.stats_dict()["rx_packets"] == tx.stats_dict()["tx_packets"] == mp.stats_dict()["tx_packets"]
    assert rx.rx_done


def test_iov_advance_after_a_partial_write() -> None:
    iov = np.array([1000, 16, 5000, 60, 2000, 16, 7000, 0, 9000, 100], np.int64)
    assert iov_advance(iov, 0, 5, 10) == 0 and list(iov[:2]) == [1010, 6]  # inside the first pair
    assert iov_advance(iov, 0, 5, 6) == 1 and list(iov[2:4]) == [5000, 60]  # exactly its end
    assert iov_advance(iov, 1, 5, 70) == 2 and list(iov[4:6]) == [2010, 6]  # across a pair
    assert iov_advance(iov, 2, 5, 6) == 4  # an empty pair is stepped over
    assert iov_advance(iov, 4, 5, 100) == 5  # all written


def test_workers_transmitting_to_one_file_take_turns(dp: Dataplane, tmp_path: Path) -> None:
    """Several threads in pcap_tx_at at once (the kernel runs without the GIL), as the port
    mirrors of several workers writing one capture file: every burst lands whole."""
    import threading

    path = tmp_path / "shared.pcap"
    port = _pcap(dp, "pcap:10", tx=str(path))
    row = port.native_view()
    threads, bursts, size = 4, 30, 32  # 3840 of the 4096 buffers
    frames = {t: [[numbered(t * 100_000 + b * size + i, size=1000 + t) for i in range(size)] for b in range(bursts)]
              for t in range(threads)}
    ready = {t: np.array([_bufs(dp, burst) for burst in frames[t]]) for t in range(threads)}
    results = {t: np.zeros(bursts, np.int64) for t in range(threads)}

    def run(t: int) -> None:
        _tx_bursts(row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats, port.slot,
                   ready[t], np.empty(size, np.int32), results[t])

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    try:
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        assert all((r == size).all() for r in results.values())
        got = [bytes(p) for p in rdpcap(str(path))]
        assert len(got) == threads * bursts * size
        written = [got[i : i + size] for i in range(0, len(got), size)]
        assert sorted(written) == sorted(b for t in range(threads) for b in frames[t])
    finally:
        port.close()


def test_workers_receiving_from_one_file_take_turns(dp: Dataplane, tmp_path: Path) -> None:
    """Two threads in pcap_rx_at at once: each record is received exactly once."""
    import threading

    frames = [numbered(i, size=60 + i % 700) for i in range(3000)]
    path = tmp_path / "in.pcap"
    wrpcap(str(path), [Ether(f) for f in frames])
    port = _pcap(dp, "pcap:11", rx=str(path))
    row = port.native_view()
    total = np.zeros(1, np.int64)
    got = {t: np.zeros(len(frames) + 32, np.int32) for t in range(2)}
    counts = dict.fromkeys(range(2), 0)

    def run(t: int) -> None:
        counts[t] = int(_rx_into(row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats,
                                 port.slot, got[t], total, len(frames)))

    ts = [threading.Thread(target=run, args=(t,)) for t in range(2)]
    try:
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        ids = np.concatenate([got[t][: counts[t]] for t in range(2)])
        assert sorted(dp.frame(int(b)) for b in ids) == sorted(frames)
        dp.free(ids, len(ids))
        assert port.rx_done and port.stats_dict()["rx_packets"] == len(frames)
    finally:
        port.close()
