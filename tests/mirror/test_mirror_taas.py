"""Mirroring over real interfaces (root): a port mirror on phy ports (veth pairs), and SPEC §4's
TaaS scenario with spp-ctl, spp-vf and spp-mirror as processes plus a shared port mirror."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.mirror import MirrorAgent, handle_port_mirror_command
from spp.ports.base import Port, PortTable
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import RX_PACKETS, TX_PACKETS
from spp.testing import stack, wait_for
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, veth_in_netns
from spp.testing.packets import ether, frame_number, numbered

pytestmark = pytest.mark.root

HOST = "127.0.0.1"
MAC_A, MAC_B = "52:54:00:12:34:56", "52:54:00:12:34:58"


def icmp_echo(i: int) -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, i) + bytes(56)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), i, 0x4000, 64, 1, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    return ether(MAC_A, "52:54:00:00:00:01", 0x0800, ip + icmp)


def carrier(v: Veth) -> bool:
    """Both ends of ``v`` are up (frames sent before that are silently lost)."""
    with open(f"/sys/class/net/{v.local}/operstate") as f:
        return f.read().strip() == "up"


@pytest.fixture
def two_veths() -> Iterator[tuple[Veth, Veth]]:
    with veth_in_netns("mra") as a, veth_in_netns("mrb") as b:
        wait_for(lambda: carrier(a) and carrier(b), timeout=10, message="veth carriers")
        yield a, b


def test_port_mirror_phy_to_phy_over_veth(two_veths: tuple[Veth, Veth]) -> None:
    v0, v1 = two_veths
    with stack(n_bufs=8192) as dp:
        dp.set_config({"phy": [v0.local, v1.local]})
        pt = PortTable(dp)
        agent = MirrorAgent(dp, pt)
        w = Worker(dp, 0, pin=False)
        send = ns_packet_socket(v0.ns, v0.peer)
        mon = ns_packet_socket(v1.ns, v1.peer)
        try:
            src, sink = pt.get("phy:0"), pt.get("nullpmd:1")
            assert src.fileno() is not None  # phy starts receiving on first use: before we send
            w.start()
            w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(sink),)),), 1),
                      timeout=120)
            agent.register("icmp", "phy:0", "phy:1", "rx", flow="icmp * * * *")
            wait_for(lambda: w.path == ("native", None) and w._native is not None and w._native.mirrors,
                     timeout=10, message=lambda: f"the mirror to phy:1 in the compiled loop ({w.path})")
            pings = [icmp_echo(i) for i in range(100)]
            udps = [numbered(i, MAC_A) for i in range(50)]
            for i in range(100):
                send.send(pings[i])
                if i % 2:
                    send.send(udps[i // 2])
            try:
                got = recv_frames(mon, 100, timeout=30)
            except TimeoutError as e:
                raise AssertionError(f"{e}: mirror {agent.mirrors()}, phy:0 {src.stats_dict()}, "
                                     f"phy:1 {pt.get('phy:1').stats_dict()}, worker error {w.error!r}") from None
            assert got == pings  # only the flow's frames, in order, byte-exact
            wait_for(lambda: int(sink.stats[TX_PACKETS]) == 150, timeout=10)
            assert agent.stats("icmp") == {"packets": 100, "filtered": 50, "nombuf": 0, "full": 0, "errors": 0}
            assert int(src.stats[RX_PACKETS]) == 150
        finally:
            send.close()
            mon.close()
            w.stop()
            agent.close()
            pt.close_all()


# -- the TaaS scenario with processes --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _processes(api: httpx.Client) -> list[dict[str, object]]:
    try:
        r = api.get("/v1/processes")
    except httpx.TransportError:
        return []
    return list(r.json()) if r.status_code == 200 else []


def _reachable(api: httpx.Client) -> bool:
    try:
        return api.get("/v1/processes").status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def _spp_ctl() -> Iterator[tuple[httpx.Client, int]]:
    sec, rest = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "spp.ctl.main", "-b", HOST, "-p", str(_free_port()), "-s", str(sec),
                             "-a", str(rest), "--timeout", "10", "--log-level", "WARNING"])
    api = httpx.Client(base_url=f"http://{HOST}:{rest}", timeout=20.0)
    try:
        wait_for(lambda: (_processes(api) == [] and _reachable(api)) or proc.poll() is not None, timeout=30,
                 message="spp-ctl's REST port")
        assert proc.poll() is None, "spp-ctl exited"
        yield api, sec
    finally:
        api.close()
        _stop(proc)


def _launch(kind: str, *args: str) -> subprocess.Popen[bytes]:
    main = "main_vf" if kind == "vf" else "main_mirror"
    code = f"import sys; from spp.control.secondary import {main}; sys.exit({main}(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args])


def _ok(api: httpx.Client, method: str, path: str, body: object) -> None:
    r = api.request(method, path, json=body)
    assert r.status_code == 204, (method, path, body, r.status_code, r.text)


class _Vm:
    """The far end of a ring (a VM's virtio port): collects frame numbers."""

    def __init__(self, dp: Dataplane, port: Port) -> None:
        self.dp, self.port = dp, port
        self.got: list[int] = []
        self._bufs = np.zeros(64, np.int32)

    def poll(self) -> int:
        k = self.port.rx_burst(self._bufs, 64)
        self.got.extend(frame_number(self.dp.frame(int(b))) for b in self._bufs[:k])
        if k:
            self.dp.free(self._bufs, k)
        return len(self.got)


def test_taas_scenario_with_processes() -> None:
    with veth_in_netns("mrt") as v0, stack(n_bufs=8192) as dp, _spp_ctl() as (api, sec):
        wait_for(lambda: carrier(v0), timeout=10, message="veth carrier")
        dp.set_config({"phy": [v0.local]})
        common = ["--file-prefix", dp.prefix, "--", "-s", f"{HOST}:{sec}", "--no-pin"]
        vf = _launch("vf", "-l", "2,3", *common, "--client-id", "1")
        mirror = _launch("mirror", "-l", "4,5", *common, "--client-id", "2")
        send = ns_packet_socket(v0.ns, v0.peer)
        try:
            wait_for(lambda: {"type": "vf", "client-id": 1} in _processes(api)
                     and {"type": "mirror", "client-id": 2} in _processes(api), timeout=60,
                     message="spp-vf and spp-mirror to connect")
            # spp-vf classifies phy:0 to VM1 (ring:0) and VM2 (ring:1)
            _ok(api, "POST", "/v1/vfs/1/components", {"name": "cls", "core": 3, "type": "classifier"})
            for port, d in [("phy:0", "rx"), ("ring:0", "tx"), ("ring:1", "tx")]:
                _ok(api, "PUT", "/v1/vfs/1/components/cls/ports", {"action": "attach", "port": port, "dir": d,
                                                                    "vlan": {}})
            for mac, ring in [(MAC_A, "ring:0"), (MAC_B, "ring:1")]:
                _ok(api, "PUT", "/v1/vfs/1/classifier_table",
                    {"action": "add", "type": "mac", "mac_address": mac, "port": ring})
            # spp-mirror's `mir` copies VM1's traffic: ring:4 towards VM1, ring:5 to the monitoring VM
            _ok(api, "POST", "/v1/mirrors/2/components", {"name": "mir", "core": 5, "type": "mirror"})
            for port, d in [("ring:0", "rx"), ("ring:4", "tx"), ("ring:5", "tx")]:
                _ok(api, "PUT", "/v1/mirrors/2/components/mir/ports", {"action": "attach", "port": port, "dir": d})
            # and a port mirror of VM2's traffic as it arrives on phy:0, served from the shared registry
            reply = handle_port_mirror_command(dp, f"port_mirror add vm2 phy:0 rx ring:6 dst_mac {MAC_B}".split())
            assert reply == {"results": [{"result": "success"}]}
            pt = PortTable(dp)
            vm1, vm2, monitor, tap = (_Vm(dp, pt.get(f"ring:{i}")) for i in (4, 1, 5, 6))
            n = 300
            frames = [numbered(i, (MAC_A, MAC_B, "52:54:00:00:00:99")[i % 3]) for i in range(n)]
            # spp-vf attaches the registry's mirror within a poll interval: send probes for VM2
            # until the port mirror copies one
            probe = 10_000
            wait_for(lambda: (send.send(numbered(probe, MAC_B)), vm2.poll(), tap.poll())[2] > 0, timeout=30,
                     interval=0.05, message="the port mirror to attach in spp-vf")
            for f in frames:
                send.send(f)

            def real(vm: _Vm) -> list[int]:
                vm.poll()
                return [x for x in vm.got if x != probe]

            want_a = [i for i in range(n) if i % 3 == 0]
            want_b = [i for i in range(n) if i % 3 == 1]
            wait_for(lambda: [len(real(v)) for v in (vm1, monitor, vm2, tap)] == [100] * 4, timeout=60,
                     message=lambda: f"vm1, monitor, vm2, tap: {[len(v.got) for v in (vm1, monitor, vm2, tap)]}")
            assert real(vm1) == want_a and real(monitor) == want_a
            assert real(vm2) == want_b and real(tap) == want_b
            [pm] = handle_port_mirror_command(dp, ["list"])["info"]["port_mirrors"]
            assert pm["stats"]["packets"] >= 100 and pm["stats"]["full"] == 0
            status = api.get("/v1/mirrors/2").json()
            [mir] = [c for c in status["components"] if c.get("name") == "mir"]
            assert [p["port"] for p in mir["tx_port"]] == ["ring:4", "ring:5"]
            assert mir["tx_port"][0]["stats"]["tx_packets"] == mir["tx_port"][1]["stats"]["tx_packets"]
            assert handle_port_mirror_command(dp, ["port_mirror", "del", "vm2"])["results"][0]["result"] == "success"
            _ok(api, "DELETE", "/v1/vfs/1", None)
            _ok(api, "DELETE", "/v1/mirrors/2", None)
            assert vf.wait(30) == 0 and mirror.wait(30) == 0
        finally:
            send.close()
            _stop(vf)
            _stop(mirror)
            for r in range(8):
                drain_ring(dp, r)
