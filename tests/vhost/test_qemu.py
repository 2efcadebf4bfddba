"""A real VM on ``vhost:0``: QEMU (TCG) boots Debian's kernel with a busybox initramfs.

    netns: 10.99.0.1 ─veth─ phy:0 ─ fwd_nic ─→ vhost:0 ⇄ QEMU virtio-net ─ guest eth0 10.99.0.2
                              ←─ fwd_vm ──

spp is configured with SPP's own commands through the spp-vf Manager.  The guest's
``/init`` configures eth0 and pings the namespace (ARP, then ICMP in 98- and 1514-byte
frames; a warm-up ping is retried until one answer comes back, so a slow first compile
costs no test).  The namespace then pings the guest with both sizes; once the guest
has answered them all it takes eth0 down, prints its own interface counters on the
serial console and powers off.  The test asserts every ping got every reply, and that
every frame is accounted for: the guest's tx = spp's vhost rx = phy tx = what the
namespace received, the namespace's tx = phy rx = vhost tx = the guest's rx, with no
drops anywhere; the pool is whole at the end (``stack`` checks it).

The NIC has no MSI-X (``vectors=0``, see :mod:`qemu_guest`): QEMU 7.2 (Debian 12)
under TCG segfaults in ``msix_set_vector_notifiers`` when a guest starts a vhost-user
NIC with MSI-X, whichever backend serves it (DPDK's ``net_vhost`` too).

Needs root, ``qemu-system-x86_64``, a ``/boot/vmlinuz-*`` with virtio-net and a static
busybox (``scripts/install-qemu.sh``); skipped saying which is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu_guest import build_initramfs, need_qemu, qemu_guest

from spp.control.manager import Manager
from spp.ports.base import Port, open_port
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import RX_PACKETS, TX_PACKETS, total_drops
from spp.testing import stack, wait_for
from spp.testing.netns import Veth, veth_in_netns

pytestmark = [pytest.mark.root, pytest.mark.timeout(240)]

GUEST_MAC = "52:54:00:12:34:56"
GUEST_IP = "10.99.0.2"
NS_IP = "10.99.0.1"
PINGS = 3  # each way, per size
BIG = 1472  # ICMP payload of a 1514-byte frame

GUEST_SCRIPT = f"""
ip link set lo up
ip link set eth0 up
ip addr add {GUEST_IP}/24 dev eth0
echo SPP-GUEST-UP
# Warm-up: the first frames may wait for numba to compile spp's path (up to ~60 s).
i=0
until ping -c 1 -W 2 {NS_IP} >/dev/null || [ $i -ge 30 ]; do i=$((i + 1)); done
ping -c {PINGS} -W 20 {NS_IP}
ping -c {PINGS} -W 20 -s {BIG} {NS_IP}
# The namespace pings us next: answer until {2 * PINGS} echo requests came in (at most 60 s).
echos() {{ awk '/^Icmp: I/ {{ for (f = 1; f <= NF; f++) if ($f == "InEchos") c = f }}
               /^Icmp: [0-9]/ {{ print $c }}' /proc/net/snmp; }}
i=0
while [ "$(echos)" -lt {2 * PINGS} ] && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.1; done
ip link set eth0 down
s=/sys/class/net/eth0/statistics
echo "SPP-GUEST-STATS rx=$(cat $s/rx_packets) tx=$(cat $s/tx_packets) rx_dropped=$(cat $s/rx_dropped)" \\
     "tx_dropped=$(cat $s/tx_dropped) echos=$(echos)"
poweroff -f
"""


def _ok(m: Manager, *lines: str) -> None:
    for line in lines:
        reply = m.execute(line)
        assert reply == {"results": [{"result": "success"}]}, (line, reply)


def _running(port: Port) -> bool:
    return bool(port.running(0) and port.running(1))  # type: ignore[attr-defined]


def _row(dp: Dataplane, ptype: str, index: int) -> tuple[int, int, int]:
    """(rx packets, tx packets, drops) of a port's counter row."""
    r = dp.stats[dp.port_slot(ptype, index)]
    return int(r[RX_PACKETS]), int(r[TX_PACKETS]), total_drops(r)


def _ns_counts(nic: Veth) -> tuple[int, int]:
    """(rx packets, tx packets) of the namespace's end of the veth pair."""
    from pyroute2 import NetNS

    with NetNS(nic.ns) as nsr:
        link = nsr.get_links(nsr.link_lookup(ifname=nic.peer)[0])[0]
        stats = link.get_attr("IFLA_STATS64")
        return int(stats["rx_packets"]), int(stats["tx_packets"])


@pytest.fixture
def nic() -> Iterator[Veth]:
    """A veth pair; the peer in a fresh namespace with ``NS_IP``/24 and a permanent ARP entry for the guest.

    The permanent entry keeps the namespace from ever probing the guest on its own, so
    every frame it sends is one the test caused.
    """
    from pyroute2 import NetNS

    with veth_in_netns("vq") as v:
        with NetNS(v.ns) as nsr:
            idx = nsr.link_lookup(ifname=v.peer)[0]
            nsr.addr("add", index=idx, address=NS_IP, prefixlen=24)
            nsr.neigh("add", dst=GUEST_IP, lladdr=GUEST_MAC, ifindex=idx, state=0x80)  # NUD_PERMANENT
        yield v


def _ns_ping(nic: Veth, busybox: str, *size: str) -> str:
    """Ping the guest from the namespace (busybox ping); return its output, fail unless all replies came."""
    ip = shutil.which("ip")
    if ip is None:
        pytest.skip("iproute2's ip is needed to run ping inside the namespace")
    done = subprocess.run([ip, "netns", "exec", nic.ns, busybox, "ping", "-c", str(PINGS), "-W", "20", *size, GUEST_IP],
                          capture_output=True, text=True, timeout=60, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and f"{PINGS} packets received" in out, out
    return out


def test_qemu_guest_pings_through_spp(nic: Veth, tmp_path: Path) -> None:
    qemu, kernel, busybox = need_qemu()
    initrd = build_initramfs(tmp_path / "initrd.gz", kernel, busybox, GUEST_SCRIPT)
    sock = str(tmp_path / f"vm{os.getpid() % 10000}.sock")
    with stack(n_bufs=4096) as dp:
        dp.set_config({"phy": [nic.local]})
        m = Manager(dp, cores=[0, 1, 2], pin=False)
        vport = open_port(dp, "vhost:0", path=sock)
        try:
            m.provide_port(vport)
            _ok(m, "component start fwd_vm 1 forward", "component start fwd_nic 2 forward",
                "port add vhost:0 rx fwd_vm", "port add phy:0 tx fwd_vm",
                "port add phy:0 rx fwd_nic", "port add vhost:0 tx fwd_nic")
            with qemu_guest(qemu, kernel, initrd, sock, GUEST_MAC, tmp_path) as vm:
                vm.wait_console(r"SPP-GUEST-UP", timeout=60)
                wait_for(lambda: _running(vport), timeout=30, message=lambda: f"both queues running\n{vm.describe()}")
                # Guest → namespace: ARP request/reply, then echo requests answered, 98- and 1514-byte frames.
                vm.wait_console(rf"(?s)({PINGS} packets transmitted, {PINGS} packets received.*){{2}}", timeout=90)
                # Namespace → guest, both sizes.
                _ns_ping(nic, busybox)
                _ns_ping(nic, busybox, "-s", str(BIG))
                stats = vm.wait_console(r"SPP-GUEST-STATS rx=(\d+) tx=(\d+) rx_dropped=(\d+) tx_dropped=(\d+)",
                                        timeout=30)
                guest_rx, guest_tx, guest_rx_drop, guest_tx_drop = (int(g) for g in stats.groups())
                wait_for(lambda: vm.proc.poll() is not None, timeout=30,
                         message=lambda: f"the guest to power off\n{vm.describe()}")
                console = vm.console()

            # Everything the guest sent went through vhost:0 → phy:0 → the namespace, and back.
            ns_rx, ns_tx = _ns_counts(nic)

            def settled() -> bool:
                return _row(dp, "vhost", 0)[0] == guest_tx and _row(dp, "phy", 0)[0] == ns_tx \
                    and _row(dp, "phy", 0)[1] == guest_tx and _row(dp, "vhost", 0)[1] == ns_tx

            wait_for(settled, timeout=10, message=lambda: (
                f"counters: guest rx/tx {guest_rx}/{guest_tx}, vhost {_row(dp, 'vhost', 0)}, "
                f"phy {_row(dp, 'phy', 0)}, namespace rx/tx {_ns_counts(nic)}; {m.status()}"))
            vhost, phy = _row(dp, "vhost", 0), _row(dp, "phy", 0)
        finally:
            m.exit()
            vport.close()

    # ARP request + PINGS echo requests out; ARP reply + PINGS echo replies back, each way.
    assert len(re.findall(r" 0% packet loss", console)) == 2, console
    assert f"echos={2 * PINGS}" in console, console
    assert guest_tx >= 4 * PINGS + 1 and ns_tx >= 4 * PINGS + 1, (guest_tx, ns_tx)
    assert (guest_rx_drop, guest_tx_drop) == (0, 0), console
    assert vhost == (guest_tx, guest_rx, 0), (vhost, guest_tx, guest_rx)
    assert phy == (ns_tx, guest_tx, 0), (phy, ns_tx, guest_tx)
    assert _ns_counts(nic) == (ns_rx, ns_tx) and ns_rx == guest_tx and guest_rx == ns_tx, \
        (ns_rx, ns_tx, guest_rx, guest_tx)
