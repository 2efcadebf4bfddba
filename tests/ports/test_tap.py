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


def test_device_deleted_under_a_running_port(dp: Dataplane) -> None:
    from spp.testing.netns import delete_link

    name = unique_ifname("spptap")
    port = open_port(dp, "tap:3", name=name)
    assert isinstance(port, TapPort)
    try:
        assert port.describe()["link"] in ("up", "down")
        assert delete_link(name)
        assert port.describe()["link"] == "gone" and not port.describe()["visible"]
        bufs = np.zeros(8, np.int32)
        assert port.rx_burst(bufs) == 0
        assert _tx(dp, port, [numbered(1), numbered(2)]) == 2
        assert port.stats_dict()["drops"] == {"link_down": 2}
    finally:
        port.close()


def test_multi_queue_tap_attaches_twice(dp: Dataplane) -> None:
    name = unique_ifname("spptap")
    q0 = open_port(dp, "tap:4", name=name, multi_queue=True)
    q1 = open_port(dp, "tap:4nq1", name=name, multi_queue=True)
    assert isinstance(q0, TapPort) and isinstance(q1, TapPort)
    try:
        assert q0.created and not q1.created
        sock = ns_packet_socket(None, name)
        try:
            frames = [numbered(i, sip=f"10.2.{i}.1", sport=2000 + i) for i in range(32)]
            for f in frames:
                sock.send(f)
            bufs = np.zeros(32, np.int32)
            got: list[bytes] = []

            def poll() -> bool:
                for q in (q0, q1):
                    k = q.rx_burst(bufs)
                    got.extend(dp.frame(int(b)) for b in bufs[:k])
                    dp.free(bufs[:k].copy(), k)
                return len(got) >= len(frames)

            wait_for(poll, timeout=10)
            assert sorted(got) == sorted(frames)
        finally:
            sock.close()
    finally:
        q1.close()
        q0.close()


def test_rx_without_buffers_counts_nombuf() -> None:
    from spp.testing import stack

    with stack(n_bufs=64) as dp:
        name = unique_ifname("spptap")
        port = open_port(dp, "tap:5", name=name)
        sock = ns_packet_socket(None, name)
        hold = np.zeros(64, np.int32)
        try:
            assert dp.alloc(hold) == 64
            for i in range(6):
                sock.send(numbered(i))
            bufs = np.zeros(32, np.int32)
            wait_for(lambda: port.rx_burst(bufs) == 0 and port.stats_dict()["drops"].get("nombuf") == 6,
                     timeout=10)
        finally:
            dp.free(hold)
            sock.close()
            port.close()


# -- names: two stacks on one host, persistent devices, a name taken meanwhile -------------


def _persistent_tap(name: str) -> None:
    """Create a persistent TAP ``name`` the way ``ip tuntap add NAME mode tap`` does (not ours)."""
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="tuntap", mode="tap")


def test_two_stacks_default_names_collide_and_the_second_is_told_how_to_fix_it(dp: Dataplane) -> None:
    from spp.testing import stack

    idx = 20 + os.getpid() % 20
    default = f"spptap{idx}"
    other = unique_ifname("spptap")
    first = open_port(dp, f"tap:{idx}")
    try:
        assert isinstance(first, TapPort) and first.name == default and first.created
        with stack() as dp2:
            for mq in (False, True):  # multi-queue would otherwise silently become a second queue
                with pytest.raises(PortError) as exc:
                    open_port(dp2, f"tap:{idx}", multi_queue=mq)
                msg = str(exc.value)
                assert f"cannot attach TAP '{default}': the name is taken by an interface" in msg
                assert "name=IFNAME" in msg and f'{{"tap": {{"{idx}": "IFNAME"}}}}' in msg
            assert first.describe()["link"] in ("up", "down")  # the first stack's device is untouched
            second = open_port(dp2, f"tap:{idx}", name=other)
            try:
                assert isinstance(second, TapPort) and second.name == other and second.created
            finally:
                second.close()
            dp2.set_config({"tap": {str(idx): other}})  # the stack-wide way, for wire commands
            third = open_port(dp2, f"tap:{idx}")
            try:
                assert isinstance(third, TapPort) and third.name == other
                assert _tx(dp2, third, [numbered(1)]) == 1
            finally:
                third.close()
            assert not os.path.exists(f"/sys/class/net/{other}")
    finally:
        first.close()
    assert not os.path.exists(f"/sys/class/net/{default}")


def test_persistent_device_needs_attach(dp: Dataplane) -> None:
    from spp.testing.netns import delete_link

    name = unique_ifname("spptap")
    _persistent_tap(name)
    try:
        with pytest.raises(PortError, match=f"cannot attach TAP '{name}': the name is taken .* attach=True"):
            open_port(dp, "tap:6", name=name)
        port = open_port(dp, "tap:6", name=name, attach=True)
        assert isinstance(port, TapPort)
        try:
            assert not port.created and port.describe()["iface"] == name
            assert _tx(dp, port, [numbered(i) for i in range(3)]) == 3
        finally:
            port.close()
        assert os.path.exists(f"/sys/class/net/{name}")  # someone else's device outlives the port
    finally:
        assert delete_link(name)


def test_one_name_for_two_ports_of_one_process_is_refused(dp: Dataplane) -> None:
    name = unique_ifname("spptap")
    port = open_port(dp, "tap:7", name=name, multi_queue=True)
    try:
        with pytest.raises(PortError, match="tap:7 of this process already uses that name; give tap:8 another"):
            open_port(dp, "tap:8", name=name, multi_queue=True)
        with pytest.raises(PortError, match="already holds it; several queues of one TAP need multi_queue=True"):
            open_port(dp, "tap:7nq1", name=name)
    finally:
        port.close()
    again = open_port(dp, "tap:8", name=name)  # free again once the first port closed
    again.close()


def test_a_name_taken_while_creating_is_refused_and_leaves_no_device(dp: Dataplane,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import spp.ports.tap as tap
    from spp.testing.netns import delete_link

    name = unique_ifname("spptap")
    _persistent_tap(name)
    try:
        def tmp_names() -> set[str]:
            return {n for n in os.listdir("/sys/class/net") if n.startswith("spptmp")}

        before = tmp_names()
        monkeypatch.setattr(tap, "_ifindex", lambda _name: None)  # as if the name appeared after we looked
        with pytest.raises(PortError, match=f"cannot create TAP '{name}': the name was taken by another "
                                            "interface meanwhile"):
            open_port(dp, "tap:9", name=name, multi_queue=True)
        wait_for(lambda: tmp_names() <= before, timeout=10, message="the temporary device to vanish")
        assert os.path.exists(f"/sys/class/net/{name}")  # the owner's device is left alone
    finally:
        assert delete_link(name)


def test_bad_tap_config_is_explained(dp: Dataplane) -> None:
    dp.set_config({"tap": ["x"]})
    with pytest.raises(PortError, match="'tap' config must map port numbers to interface names"):
        open_port(dp, "tap:0")
    dp.set_config({"tap": {"0": 5}})
    with pytest.raises(PortError, match="'tap' config entry 0 must be an interface name"):
        open_port(dp, "tap:0")
    with pytest.raises(PortError, match="invalid TAP name 'tap%d'"):
        open_port(dp, "tap:0", name="tap%d")


def test_primary_names_taps_for_wire_commands(dp: Dataplane) -> None:
    """``spp-primary --tap N=IFNAME`` (or ``--vdev net_tapN,iface=...``) → config → ``port add tap:N``."""
    from spp.control.manager import Manager
    from spp.control.primary import parse_options, parse_taps

    name = unique_ifname("spptap")
    assert parse_options(["--tap", f"3={name},4=tapB"]).tap == {"3": name, "4": "tapB"}
    assert parse_options(["-l", "0", "--vdev", f"net_tap3,iface={name}", "--vdev", "net_ring0", "--",
                          "-s", "127.0.0.1:5555"]).tap == {"3": name}
    for bad, message in (("x", "expected N=IFNAME"), ("64=a", "tap:64 out of range"), ("0=a,1=a", "named twice"),
                         ("0=a/b", "expected N=IFNAME")):
        with pytest.raises(SystemExit):
            parse_options(["--tap", bad])
        with pytest.raises(ValueError, match=message):
            parse_taps([bad])
    dp.set_config({"phy": [], "tap": {"3": name}})  # what spp-primary writes
    m = Manager(dp, cores=[0, 1], pin=False)
    try:
        assert m.execute("component start f1 1 forward") == {"results": [{"result": "success"}]}
        assert m.execute("port add tap:3 rx f1") == {"results": [{"result": "success"}]}
        port = m.port("tap:3")
        assert isinstance(port, TapPort) and port.name == name and os.path.exists(f"/sys/class/net/{name}")
    finally:
        m.exit()
    assert not os.path.exists(f"/sys/class/net/{name}")
