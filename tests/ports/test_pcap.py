"""pcap:N: files tcpdump and scapy read and write, every byte order and magic, bad input."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

from spp.ports.base import PortError, open_port
from spp.ports.pcap import PcapPort
from spp.runtime.dataplane import DATA_ROOM, Dataplane
from spp.testing.packets import numbered, udp


def _header(endian: str = "<", magic: int = 0xA1B2C3D4, snaplen: int = 65535, linktype: int = 1) -> bytes:
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def _record(frame: bytes, endian: str = "<", incl: int | None = None) -> bytes:
    n = len(frame) if incl is None else incl
    return struct.pack(endian + "IIII", 1700000000, 123, n, len(frame)) + frame


def _drain(dp: Dataplane, port: PcapPort, limit: int = 100_000) -> list[bytes]:
    bufs = np.zeros(32, np.int32)
    out: list[bytes] = []
    for _ in range(limit):
        k = port.rx_burst(bufs)
        out.extend(dp.frame(int(b)) for b in bufs[:k])
        dp.free(bufs[:k].copy(), k)
        if k == 0:
            break
    return out


def _send(dp: Dataplane, port: PcapPort, frames: list[bytes]) -> None:
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    assert port.tx_burst(ids, len(frames)) == len(frames)


FRAMES = [numbered(i, size=60 + 13 * i) for i in range(50)] + [udp(vlan=7, size=1514)]


@pytest.mark.parametrize(("endian", "magic"), [("<", 0xA1B2C3D4), (">", 0xA1B2C3D4), ("<", 0xA1B23C4D),
                                               (">", 0xA1B23C4D)])
def test_reads_both_byte_orders_and_magics(dp: Dataplane, tmp_path: Path, endian: str, magic: int) -> None:
    path = tmp_path / "in.pcap"
    path.write_bytes(_header(endian, magic) + b"".join(_record(f, endian) for f in FRAMES))
    port = open_port(dp, "pcap:0", rx=str(path))
    assert isinstance(port, PcapPort)
    try:
        assert _drain(dp, port) == FRAMES
        assert port.rx_done and port.stats_dict()["rx_packets"] == len(FRAMES)
        assert port.stats_dict()["drops"] == {}
    finally:
        port.close()


def test_written_file_reads_back_in_tcpdump_and_scapy(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    port = open_port(dp, "pcap:2", tx_pcap=str(path))  # DPDK's spelling works too
    try:
        _send(dp, port, FRAMES[:30])
        _send(dp, port, FRAMES[30:])
        # Complete on disk after each burst: readable before close.
        assert [bytes(p) for p in rdpcap(str(path))] == FRAMES
    finally:
        port.close()
    res = subprocess.run(["tcpdump", "-n", "-e", "-r", str(path)], capture_output=True, text=True, timeout=30,
                         check=True)
    assert len(res.stdout.strip().splitlines()) == len(FRAMES)
    assert "vlan 7" in res.stdout
    st = port.stats_dict()
    assert st["tx_packets"] == len(FRAMES) and st["tx_bytes"] == sum(len(f) for f in FRAMES)


def test_reads_what_scapy_writes_including_nanosecond(dp: Dataplane, tmp_path: Path) -> None:
    for nano in (False, True):
        path = tmp_path / f"scapy{int(nano)}.pcap"
        wrpcap(str(path), [Ether(f) for f in FRAMES], nano=nano)
        port = open_port(dp, "pcap:3", rx=str(path))
        try:
            assert _drain(dp, port) == FRAMES
        finally:
            port.close()


def test_bad_records_are_counted_never_a_crash(dp: Dataplane, tmp_path: Path) -> None:
    good = [numbered(i) for i in range(3)]
    runt, giant = b"\x02" * 9, numbered(9, size=DATA_ROOM + 100)
    path = tmp_path / "bad.pcap"
    path.write_bytes(_header() + _record(good[0]) + _record(runt) + _record(giant) + _record(good[1])
                     + _record(good[2], incl=300_000) + _record(good[0]))
    port = open_port(dp, "pcap:0", rx=str(path))
    try:
        assert _drain(dp, port) == good[:2]
        assert port.stats_dict()["drops"] == {"runt": 1, "too_long": 1, "bad_frame": 1}
        assert _drain(dp, port) == []  # stays stopped
    finally:
        port.close()


def test_truncated_file_counts_one_bad_frame(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes((_header() + _record(numbered(1)) + _record(numbered(2)))[:-5])
    port = open_port(dp, "pcap:0", rx=str(path))
    try:
        assert _drain(dp, port) == [numbered(1)]
        assert port.stats_dict()["drops"] == {"bad_frame": 1}
    finally:
        port.close()


def test_loop_replays_the_file(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "loop.pcap"
    path.write_bytes(_header() + b"".join(_record(numbered(i)) for i in range(5)))
    port = open_port(dp, "pcap:0", rx=str(path), loop=True)
    try:
        bufs = np.zeros(32, np.int32)
        total = 0
        for _ in range(10):
            k = port.rx_burst(bufs)
            assert k == 32  # never runs dry
            dp.free(bufs[:k].copy(), k)
            total += k
        assert port.stats_dict()["rx_packets"] == total
    finally:
        port.close()


def test_default_is_a_capture_sink(dp: Dataplane) -> None:
    port = open_port(dp, "pcap:61")
    try:
        assert port.describe()["tx"] == "/tmp/spp-pcap-61.pcap" and port.describe()["rx"] is None
        _send(dp, port, [numbered(1)])
        assert [bytes(p) for p in rdpcap("/tmp/spp-pcap-61.pcap")] == [numbered(1)]
        assert _drain(dp, port) == []
    finally:
        port.close()
        Path("/tmp/spp-pcap-61.pcap").unlink(missing_ok=True)


def test_tx_without_a_file_counts_no_tx_port(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "in.pcap"
    path.write_bytes(_header())
    port = open_port(dp, "pcap:0", rx=str(path))
    try:
        _send(dp, port, [numbered(1), numbered(2)])
        assert port.stats_dict()["drops"] == {"no_tx_port": 2}
    finally:
        port.close()


def test_bad_files_are_explained(dp: Dataplane, tmp_path: Path) -> None:
    with pytest.raises(PortError, match="cannot read pcap file"):
        open_port(dp, "pcap:0", rx=str(tmp_path / "missing.pcap"))
    ng = tmp_path / "x.pcapng"
    ng.write_bytes(struct.pack("<I", 0x0A0D0D0A) + bytes(40))
    with pytest.raises(PortError, match=r"pcapng.*editcap"):
        open_port(dp, "pcap:0", rx=str(ng))
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello world, not a pcap file")
    with pytest.raises(PortError, match="not a pcap file"):
        open_port(dp, "pcap:0", rx=str(junk))
    raw = tmp_path / "raw.pcap"
    raw.write_bytes(_header(linktype=101))
    with pytest.raises(PortError, match=r"link type 101; only 1 \(Ethernet\)"):
        open_port(dp, "pcap:0", rx=str(raw))
    with pytest.raises(PortError, match="contradict"):
        open_port(dp, "pcap:0", rx=str(raw), loop=True, follow=True)
    with pytest.raises(PortError, match="not both"):
        open_port(dp, "pcap:0", rx="a", rx_pcap="b")


def test_an_empty_pool_loses_nothing(tmp_path: Path) -> None:
    from spp.testing import stack

    path = tmp_path / "in.pcap"
    path.write_bytes(_header() + b"".join(_record(numbered(i)) for i in range(10)))
    with stack(n_bufs=64) as dp:
        port = open_port(dp, "pcap:0", rx=str(path))
        assert isinstance(port, PcapPort)
        hold = np.zeros(64, np.int32)
        try:
            assert dp.alloc(hold) == 64
            assert port.rx_burst(np.zeros(32, np.int32)) == 0
            dp.free(hold)
            assert _drain(dp, port) == [numbered(i) for i in range(10)]
            assert port.stats_dict()["drops"] == {}
        finally:
            port.close()
