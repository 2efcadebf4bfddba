"""spp-pcap: pcapng files read back with scapy and tcpdump -r, every frame present and equal; snaplen,
rotation, the tap through a shallow port mirror, bad input, a full disk."""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nfv_helpers import put, take

from spp.control.nfv import Nfv
from spp.control.pcap import Pcap, main
from spp.mirror import MirrorAgent
from spp.ports.base import PortId, open_port
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.netns import Veth, ns_packet_socket, veth_in_netns
from spp.testing.packets import numbered


def epbs(path: Path) -> list[tuple[int, int, bytes]]:
    """(captured length, original length, data) of every enhanced packet block, checking the block framing."""
    raw = path.read_bytes()
    out = []
    pos = 0
    types = []
    while pos < len(raw):
        btype, total = struct.unpack_from("<II", raw, pos)
        assert struct.unpack_from("<I", raw, pos + total - 4)[0] == total
        types.append(btype)
        if btype == 6:
            _, _, _, cap, orig = struct.unpack_from("<IIIII", raw, pos + 8)
            out.append((cap, orig, raw[pos + 28 : pos + 28 + cap]))
        pos += total
    assert types[:2] == [0x0A0D0D0A, 1] and types[-1] == 5  # section, interface, ..., statistics
    return out


def tcpdump_count(path: Path) -> int:
    res = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True)
    return len(res.stdout.splitlines())


def link_up(pcap: Pcap) -> None:
    """New veths show their carrier late; frames sent before it are lost by the kernel."""
    port = pcap.ports.find("phy:0")
    assert port is not None
    wait_for(lambda: port.check_link(force=True) == "up", timeout=5)  # type: ignore[attr-defined]


@pytest.fixture
def veth() -> Iterator[Veth]:
    with veth_in_netns("pca") as v:
        yield v


@pytest.mark.root
def test_phy_capture_scapy_tcpdump_snaplen_rotation(dp: Dataplane, veth: Veth, tmp_path: Path) -> None:
    from scapy.utils import rdpcap

    dp.set_config({"phy": [veth.local]})
    frames = [numbered(i, size=60 + 13 * i) for i in range(60)]
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        whole = tmp_path / "whole"
        whole.mkdir()
        pcap = Pcap(dp, 1, [0, 1, 2], PortId("phy", 0), whole)
        assert pcap.execute("start") == {"results": [{"result": "success"}]}
        link_up(pcap)
        err = pcap.execute("start")["results"][0]["error_details"]["message"]
        assert err == "capture of phy:0 is already running: stop it first"
        for f in frames:
            sock.send(f)
        wait_for(lambda: pcap.captured >= 60, timeout=30)
        info = pcap.execute("status")["info"]
        assert info["status"] == "running" and info["core"][0] == {"core": 1, "role": "receive",
                                                                   "rx_port": [{"port": "phy:0"}]}
        assert info["core"][1]["role"] == "write" and info["core"][1]["filename"].endswith(".phy0.1.pcapng")
        pcap.execute("stop")
        assert pcap.execute("status")["info"]["status"] == "idle"
        (path,) = whole.iterdir()
        assert [bytes(p) for p in rdpcap(str(path))] == frames
        assert tcpdump_count(path) == 60
        assert [(c, o) for c, o, _ in epbs(path)] == [(len(f), len(f)) for f in frames]

        # snaplen 64 and rotation at 1500 bytes, at most 3 files kept
        small = tmp_path / "small"
        small.mkdir()
        pcap = Pcap(dp, 1, [0, 1], PortId("phy", 0), small, snaplen=64, fsize=1500, count=3)
        pcap.execute("start")
        link_up(pcap)
        for f in frames:
            sock.send(f)
        wait_for(lambda: pcap.captured >= 60, timeout=30)
        pcap.execute("stop")
        files = sorted(small.iterdir(), key=lambda p: int(p.name.split(".")[-2]))
        assert len(files) == 3 and all(p.stat().st_size <= 1500 for p in files)
        kept = [rec for p in files for rec in epbs(p)]
        assert [(c, o, d) for c, o, d in kept] == [(min(64, len(f)), len(f), f[:64]) for f in frames[-len(kept):]]
        for p in files:
            assert [bytes(x) for x in rdpcap(str(p))] == [d for _, _, d in epbs(p)]
            assert tcpdump_count(p) == len(epbs(p))
    finally:
        sock.close()


@contextmanager
def patched_ring0_to_ring1(dp: Dataplane, capture: str, out: Path) -> Iterator[tuple[MirrorAgent, Pcap]]:
    """spp-nfv 1 patches ring:0 to ring:1 (with its mirror agent); spp-pcap 2 captures ``capture``, started."""
    dp.set_config({"phy": []})
    nfv = Nfv(dp, 1, [0, 1], pin=False)
    agent = MirrorAgent(dp, nfv.panel.ports)
    agent.start()
    pcap = Pcap(dp, 2, [0, 1], PortId.parse(capture), out)
    try:
        for line in ("add ring:0", "add ring:1", "patch ring:0 ring:1", "forward"):
            assert nfv.execute(line)["results"] == [{"result": "success"}]
        assert pcap.execute("start") == {"results": [{"result": "success"}]}
        yield agent, pcap
    finally:
        pcap.exit()
        agent.close()
        nfv.exit()
        for r in (0, 1, 15):
            drain_ring(dp, r)


def test_tap_through_a_shallow_mirror_takes_nothing_away(dp: Dataplane, tmp_path: Path) -> None:
    """nfv receives on ring:0; spp-pcap taps it (mirror to ring:15) and the patch still gets every frame."""
    with patched_ring0_to_ring1(dp, "ring:0", tmp_path) as (agent, pcap):
        wait_for(lambda: agent.attached() == ["pcap2"], timeout=10)
        frames = [numbered(i, size=64 + i) for i in range(200)]
        put(dp, open_port(dp, "ring:0"), frames)
        assert take(dp, open_port(dp, "ring:1"), 200) == frames
        wait_for(lambda: pcap.captured >= 200, timeout=30)
        assert pcap.status()["self_rx"] is False  # nfv receives on ring:0: the tap, not spp-pcap, reads it
        pcap.execute("stop")
        wait_for(lambda: agent.attached() == [], timeout=10)
        (path,) = tmp_path.iterdir()
        assert [d for _, _, d in epbs(path)] == frames


def test_a_ring_nobody_receives_on_is_received_by_spp_pcap_itself(dp: Dataplane, tmp_path: Path) -> None:
    """nfv only sends to ring:1 (patch ring:0 ring:1): nobody receives on it, so nobody attaches the tap;
    spp-pcap sees the frames wait unread and receives them itself, every one, in order."""
    with patched_ring0_to_ring1(dp, "ring:1", tmp_path) as (agent, pcap):
        frames = [numbered(i, size=64 + i) for i in range(200)]
        put(dp, open_port(dp, "ring:0"), frames)
        wait_for(lambda: pcap.captured >= 200, timeout=30)
        assert pcap.status()["self_rx"] is True
        pcap.execute("stop")
        (path,) = tmp_path.iterdir()
        assert [d for _, _, d in epbs(path)] == frames
        assert pcap.dropped == 0 and agent.attached() == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out-dir", "/nonexistent/dir"], "--out-dir /nonexistent/dir: no such directory"),
        (["--fsize", "0"], "invalid --fsize '0': must be in range 1-"),
        (["-c", "ring:x"], "invalid -c port 'ring:x'"),
    ],
)
def test_bad_options_one_clear_error(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--client-id", "1", "-c", "phy:0", "--out-dir", tempfile.gettempdir(), *extra]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_start_refuses_a_vanished_directory(dp: Dataplane, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    pcap = Pcap(dp, 1, [0, 1], PortId("phy", 0), gone)
    gone.rmdir()
    reply = pcap.execute("start")
    assert "no such directory" in reply["results"][0]["error_details"]["message"]
    assert pcap.execute("status")["info"]["status"] == "idle"


@pytest.mark.root
def test_disk_full_stops_with_a_clear_status(dp: Dataplane, veth: Veth, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    sock = ns_packet_socket(veth.ns, veth.peer)
    dp.set_config({"phy": [veth.local]})
    pcap = Pcap(dp, 1, [0, 1], PortId("phy", 0), mnt)
    try:
        pcap.execute("start")
        link_up(pcap)
        frames = [numbered(i, size=1400) for i in range(200)]
        for f in frames:
            sock.send(f)
        wait_for(lambda: pcap.execute("status")["info"]["status"] == "idle", timeout=30,
                 message=lambda: str(pcap.execute("status")["info"]))
        info = pcap.execute("status")["info"]
        assert "capture stopped: cannot write" in info["error"] and "No space left on device" in info["error"]
        pcap.execute("stop")
    finally:
        pcap.exit()
        sock.close()
        subprocess.run(["umount", str(mnt)], check=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


def test_pcap_port_records_the_original_length_of_a_snaplen_copy(dp: Dataplane, tmp_path: Path) -> None:
    """pcap:N tx files wrote the captured length as the original length, so a truncated copy looked whole."""
    import numpy as np

    from spp.runtime.dataplane import M_ORIGLEN

    out = tmp_path / "t.pcap"
    port = open_port(dp, "pcap:5", tx=str(out))
    try:
        ids = np.empty(2, np.int32)
        assert dp.alloc(ids) == 2
        dp.write_frame(int(ids[0]), numbered(0, size=64))
        dp.write_frame(int(ids[1]), numbered(1, size=64))
        dp.meta[ids[1], M_ORIGLEN] = 1400  # a mirror copy cut at 64 bytes of a 1400-byte frame
        assert port.tx_burst(ids, 2) == 2
    finally:
        port.close()
    raw = out.read_bytes()
    first = struct.unpack_from("<IIII", raw, 24)
    second = struct.unpack_from("<IIII", raw, 24 + 16 + 64)
    assert (first[2], first[3]) == (64, 64) and (second[2], second[3]) == (64, 1400)
