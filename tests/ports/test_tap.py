"""tap:N: frames both ways, the descriptor surviving a move into a namespace, cleanup."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyroute2 import IPRoute

from spp.ports.base import PortError, open_port
from spp.ports.tap import TapPort
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.netns import link_up, netns, ns_packet_socket, recv_frames, unique_ifname
from spp.testing.packets import numbered

pytestmark = pytest.mark.root


def _rx_all(dp: Dataplane, port: TapPort, count: int) -> list[bytes]:
    bufs = np.zeros(32, np.int32)
    got: list[bytes] = []

    def poll() -> bool:
        k = port.rx_burst(bufs)
        got.extend(dp.frame(int(b)) for b in bufs[:k])
        dp.free(bufs[:k].copy(), k)
        return len(got) >= count

    wait_for(poll, timeout=20, message=lambda: f"{count} frames (got {len(got)})")
    return got


def _tx(dp: Dataplane, port: TapPort, frames: list[bytes]) -> int:
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    k = port.tx_burst(ids, len(frames))
    if k < len(frames):
        dp.free(ids[k:].copy())
    return k


def test_default_name_and_removal_on_close(dp: Dataplane) -> None:
    idx = 40 + os.getpid() % 20
    port = open_port(dp, f"tap:{idx}")
    assert isinstance(port, TapPort)
    try:
        assert port.name == f"spptap{idx}" and port.created
        assert os.path.exists(f"/sys/class/net/spptap{idx}")
        assert port.describe()["link"] in ("up", "down")  # no carrier until someone reads: "down" is fine
        assert port.fileno() == port.fd
    finally:
        port.close()
    assert not os.path.exists(f"/sys/class/net/spptap{idx}")
    assert port.describe()["link"] == "gone"


def test_fd_keeps_working_after_move_into_netns(dp: Dataplane) -> None:
    name = unique_ifname("spptap")
    port = open_port(dp, "tap:1", name=name)
    assert isinstance(port, TapPort)
    try:
        with netns(unique_ifname("spptns")) as ns:
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], net_ns_fd=ns)
            link_up(name, ns)
            sock = ns_packet_socket(ns, name)
            try:
                frames = [numbered(i, size=60 + 7 * i) for i in range(40)]
                for f in frames:
                    sock.send(f)
                assert _rx_all(dp, port, len(frames)) == frames
                assert _tx(dp, port, frames) == len(frames)
                assert recv_frames(sock, len(frames)) == frames
            finally:
                sock.close()
            st = port.stats_dict()
            assert st["rx_packets"] == st["tx_packets"] == 40
            assert st["drops"] == {}
    finally:
        port.close()


def test_tx_on_a_down_device_counts_link_down(dp: Dataplane) -> None:
    name = unique_ifname("spptap")
    port = open_port(dp, "tap:2", name=name, up=False)
    assert isinstance(port, TapPort)
    try:
        assert _tx(dp, port, [numbered(i) for i in range(4)] + [b"\x01" * 8]) == 5
        st = port.stats_dict()
        assert st["tx_packets"] == 0
        assert st["drops"] == {"link_down": 5}  # the first write fails with EIO: the whole burst is lost
    finally:
        port.close()


def test_bad_names_are_explained(dp: Dataplane) -> None:
    with pytest.raises(PortError, match="invalid TAP name"):
        open_port(dp, "tap:0", name="a/b")
    with pytest.raises(PortError, match="cannot attach TAP 'lo'"):
        open_port(dp, "tap:0", name="lo")
