"""phy:N on AF_XDP (``driver=af_xdp``): conformance on a veth, status, fallback, refusal, cleanup."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from spp.ports.base import PortError, open_port
from spp.runtime.dataplane import Dataplane
from spp.testing.conformance import Harness, check_port, iter_steps
from spp.testing.netns import Veth, ns_packet_socket, recv_frames


def xdp_attached(iface: str) -> bool:
    out = subprocess.run(["ip", "-d", "link", "show", "dev", iface], capture_output=True, text=True, check=False)
    return " xdp" in out.stdout or "prog/xdp" in out.stdout


@pytest.mark.root
def test_af_xdp_phy_conforms(dp: Dataplane, veth: Veth) -> None:
    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        dp.set_config({"phy": ["nonexistent0", veth.local], "phy_driver": "af_xdp"})
        port = open_port(dp, "phy:1")
        assert port.describe()["driver"] == "af_xdp"
        assert port.fileno() is not None
        sock = ns_packet_socket(veth.ns, veth.peer)
        try:
            yield Harness(port, lambda frames: [sock.send(f) for f in frames] and None,
                          lambda count, timeout: recv_frames(sock, count, timeout=timeout),
                          runt=False)  # the kernel refuses to send frames < 14 bytes
        finally:
            sock.close()
            port.close()

    assert check_port(make, dp) == list(iter_steps())
    assert not xdp_attached(veth.local), "the XDP program must be gone once the port closed"


@pytest.mark.root
def test_af_xdp_refuses_a_held_interface_and_auto_falls_back(dp: Dataplane, veth: Veth) -> None:
    first = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
    try:
        assert xdp_attached(veth.local)
        # another spp process's program: simulated by a pid file naming a live process that is not us
        from spp.ports import af_xdp

        with open(af_xdp._pidfile(first.ifindex, veth.local), "w") as f:  # type: ignore[attr-defined]
            f.write("1\n")
        with pytest.raises(PortError, match="already has an XDP program attached"):
            open_port(dp, "phy:1", iface=veth.local, driver="af_xdp")
        other = open_port(dp, "phy:1", iface=veth.local, driver="auto")
        try:
            assert other.describe()["driver"] == "af_packet"
            assert "already has an XDP program" in other.describe()["driver_note"]
        finally:
            other.close()
    finally:
        first.close()
    assert not xdp_attached(veth.local)
