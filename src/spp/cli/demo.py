"""``spp demo``: a whole stack, the TaaS scenario, live counters, and a clean exit.

As root, the demo builds four network namespaces joined to the host by veth
pairs — an outside host, VM1, VM2 and a monitor — and starts spp-ctl,
spp-primary (``--phy`` = the four host-side ends: phy:0 outside, phy:1 VM1,
phy:2 VM2, phy:3 monitor) on free ports and a unique ``--file-prefix``.  It
applies the shipped ``taas.yaml`` through REST (the primary launches spp-vf and
spp-mirror), with the monitor's leg (ring:5 → phy:3) patched by spp-nfv 3 instead of
a vf component, has the primary launch spp-pcap 4 to capture VM1's ring:4 (through a
shallow port mirror to ring:15, so VM1 loses nothing) into a pcapng file,
sends UDP frames from the outside namespace to VM1's and VM2's MACs,
counts what arrives in each namespace, shows per-port counters live and prints a
summary: frames in, out and dropped per port, mirror copies, pool occupancy.

Without root there are no namespaces: the same processes run a null-port variant
(a null source feeding the mirror, null sinks), so the whole control path can
still be seen working.

Everything — namespaces, interfaces, processes, the shared-memory segment — is
removed on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from types import FrameType
from typing import Any

import yaml
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from spp.cli import render
from spp.cli.client import CliError, RestClient
from spp.cli.stack import LocalStack, StackError
from spp.cli.topology import Topology, down, parse, up
from spp.cli.translate import SECONDARY_KINDS
from spp.ops import add_version

OUT_MAC = "52:54:00:00:00:01"
VM1_MAC = "52:54:00:12:34:56"
VM2_MAC = "52:54:00:12:34:58"
ROLES = ("outside", "vm1", "vm2", "monitor")
NULL_TOPOLOGY: dict[str, Any] = {"processes": [
    {"kind": "vf", "client_id": 1, "cores": "0,1", "components": [
        {"name": "gen", "type": "forward", "core": 1, "rx": ["nullpmd:0"], "tx": ["ring:0"]},
        {"name": "fwd1", "type": "forward", "core": 1, "rx": ["ring:4"], "tx": ["nullpmd:1"]},
        {"name": "fwd3", "type": "forward", "core": 1, "rx": ["ring:5"], "tx": ["nullpmd:3"]}]},
    {"kind": "mirror", "client_id": 2, "cores": "0,1", "copy": "shallow", "components": [
        {"name": "mir", "type": "mirror", "core": 1, "rx": ["ring:0"], "tx": ["ring:4", "ring:5"]}]},
]}


#: The demo's spp-pcap: its client id, the port it captures (VM1's ring) and the ring of its tap.
PCAP_ID = 4
PCAP_PORT = "ring:4"
PCAP_TAP = "ring:15"
NFV_ID = 3


def with_nfv(topology: dict[str, Any]) -> dict[str, Any]:
    """``topology`` with the vf's ``fwd3`` (the monitor's leg) replaced by a patch of spp-nfv 3."""
    processes, nfv = [], []
    for proc in topology["processes"]:
        comps = proc.get("components", [])
        for c in comps:
            if c["name"] == "fwd3":
                src, dst = c["rx"][0], c["tx"][0]
                nfv.append({"kind": "nfv", "client_id": NFV_ID, "cores": "0,1",
                            "ports": [p for p in (src, dst) if not p.startswith("phy:")],
                            "patches": [{"src": src, "dst": dst}]})
        processes.append({**proc, "components": [c for c in comps if c["name"] != "fwd3"]} if comps else proc)
    return {**topology, "processes": processes + nfv}


def start_capture(client: RestClient, secondary: str, port: str, out_dir: str) -> None:
    """Have the primary launch spp-pcap ``PCAP_ID`` on ``port`` and start its capture (SPP's REST calls)."""
    client.put("/primary/launch", {"proc_name": "spp_pcap", "client_id": PCAP_ID, "eal": {"-l": "0,1,2"},
                                   "app": {"-s": secondary, "--client-id": PCAP_ID, "-c": port,
                                           "--out-dir": out_dir}})
    client.put(f"/pcaps/{PCAP_ID}/capture", {"action": "start"})


def stop_capture(client: RestClient) -> dict[str, Any]:
    """Stop the capture, read spp-pcap's status, let it exit; return the status."""
    client.put(f"/pcaps/{PCAP_ID}/capture", {"action": "stop"})
    status: dict[str, Any] = client.get(f"/pcaps/{PCAP_ID}")
    client.delete(f"/pcaps/{PCAP_ID}")
    return status


class Interrupted(Exception):
    """SIGTERM arrived: leave through the same cleanup as Ctrl-C."""


@dataclass
class Network:
    """The demo's namespaces and veth pairs: ``phys[i]`` is phy:i's host-side end."""

    namespaces: list[str]
    phys: list[str]
    peers: list[str]


@contextmanager
def network(tag: str) -> Iterator[Network]:
    """Create the four namespaces and veth pairs; remove them all on exit."""
    from spp.testing.netns import netns, veth_pair

    with ExitStack() as stack:
        names, phys, peers = [], [], []
        for i, role in enumerate(ROLES):
            ns = stack.enter_context(netns(f"{tag}{role[:3]}"))
            host_end, ns_end = f"{tag}p{i}h", f"{tag}p{i}n"
            for attempt in range(3):
                try:
                    stack.enter_context(veth_pair(host_end, ns_end, peer_ns=ns))
                    break
                except LookupError:  # the moved peer was not visible yet; the pair was removed
                    if attempt == 2:
                        raise
            names.append(ns)
            phys.append(host_end)
            peers.append(ns_end)
        yield Network(names, phys, peers)


@dataclass
class Traffic:
    """A sender in the outside namespace and counting receivers in the others."""

    net: Network
    rate: int
    sent: dict[str, int] = field(default_factory=lambda: {"vm1": 0, "vm2": 0})
    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLES[1:], 0))
    stop: threading.Event = field(default_factory=threading.Event)
    done_sending: threading.Event = field(default_factory=threading.Event)
    sending: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    send_errors: int = 0
    threads: list[threading.Thread] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        """Open the sockets and start the receiver threads (the sender waits for :attr:`sending`)."""
        from spp.testing.netns import ns_packet_socket

        for i, role in enumerate(ROLES):
            sock = ns_packet_socket(self.net.namespaces[i], self.net.peers[i], timeout=0.2)
            self.sockets.append(sock)
            target = self._send if role == "outside" else self._receive
            thread = threading.Thread(target=target, args=(sock, role), daemon=True, name=f"demo {role}")
            self.threads.append(thread)
            thread.start()

    def _send(self, sock: socket.socket, role: str) -> None:
        from spp.testing.packets import udp

        frames = {
            "vm1": udp(VM1_MAC, OUT_MAC, dip="10.0.0.11", size=128),
            "vm2": udp(VM2_MAC, OUT_MAC, dip="10.0.0.12", size=128),
        }
        interval = 2.0 / max(1, self.rate)
        next_at = time.monotonic()
        while not self.done_sending.is_set():
            if not self.sending.wait(0.1):
                next_at = time.monotonic()
                continue
            with self.lock:
                for vm, frame in frames.items():
                    try:
                        sock.send(frame)
                        self.sent[vm] += 1
                    except OSError:
                        self.send_errors += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.done_sending.wait(delay)

    def pause(self) -> None:
        """Stop sending (returns once no frame is being sent)."""
        self.sending.clear()
        with self.lock:
            pass

    def reset(self) -> None:
        """Zero the sent and received counts."""
        with self.lock:
            self.sent = dict.fromkeys(self.sent, 0)
            self.received = dict.fromkeys(self.received, 0)

    def _receive(self, sock: socket.socket, role: str) -> None:
        src = bytes(int(x, 16) for x in OUT_MAC.split(":"))
        while not self.stop.is_set():
            try:
                data = sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            if data[6:12] == src:
                self.received[role] += 1

    def close(self) -> None:
        """Stop the threads and close the sockets."""
        self.stop.set()
        self.done_sending.set()
        self.sending.set()
        for thread in self.threads:
            thread.join(2.0)
        for sock in self.sockets:
            sock.close()


def _ports_table(info: dict[str, Any], roles: dict[str, str]) -> Table:
    rows: list[tuple[str, str, Any]] = []
    for entry in info.get("phy_ports", []) or []:
        port = str(entry.get("port"))
        rows.append((port, roles.get(port, str(entry.get("iface", ""))), entry.get("stats")))
    for entry in info.get("ring_ports", []) or []:
        rows.append((str(entry.get("port")), f"{entry.get('count')}/{entry.get('size')} queued", entry.get("stats")))
    for entry in info.get("ports", []) or []:
        rows.append((str(entry.get("port")), roles.get(str(entry.get("port")), ""), entry.get("stats")))
    return render.counters_table("per-port counters (shared by every process)", rows)


def _view(client: RestClient, roles: dict[str, str], traffic: Traffic | None, left: float) -> RenderableType:
    try:
        info = client.get("/primary/status")
    except CliError as exc:
        return Text(f"status unavailable: {exc}")
    pool = info.get("pool", {})
    lines = [Text(f"{left:4.1f} s left   pool: {pool.get('in_use')} of {pool.get('n_bufs')} buffers in use")]
    if traffic is not None:
        lines.append(Text(
            f"sent to VM1 {traffic.sent['vm1']:,}, to VM2 {traffic.sent['vm2']:,};  received: VM1 "
            f"{traffic.received['vm1']:,}, VM2 {traffic.received['vm2']:,}, monitor {traffic.received['monitor']:,}"
        ))
    return Group(*lines, _ports_table(info, roles))


def _wait_compiled(console: Console, client: RestClient, topology: Topology, timeout: float = 600.0) -> None:
    """Wait until every secondary of ``topology`` says its data path is compiled (``state``)."""
    def compiling() -> list[str]:
        out = []
        for proc in topology.processes:
            path = f"/{SECONDARY_KINDS[proc.kind]}/{proc.client_id}"
            if client.get(path).get("state") == "compiling":
                out.append(f"{proc.kind} {proc.client_id}")
        return out

    waiting = compiling()
    if not waiting:
        return
    console.print(f"{', '.join(waiting)}: compiling the data plane (about a minute, once; "
                  "scripts/setup.sh does it ahead)...")
    deadline = time.monotonic() + timeout
    while compiling():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the data plane did not compile within {timeout:g} s")
        time.sleep(0.5)


def _warm_up(console: Console, client: RestClient, traffic: Traffic, timeout: float = 120.0) -> None:
    """Send until frames flow end to end, then pause, let them drain, and zero every counter.

    A fresh process may still be compiling its loops (numba) when ``up`` returns, and
    frames that reach an interface before its port is open are dropped by the kernel,
    unseen by spp; starting the measured run only now keeps the summary exact.
    """
    console.print("waiting for frames to flow end to end")
    traffic.sending.set()
    deadline = time.monotonic() + timeout

    def flowing() -> bool:
        info = client.get("/primary/status")
        phys = info.get("phy_ports", []) or []
        return len(phys) == len(ROLES) and all((p.get("stats") or {}).get("tx_packets", 0) > 0 for p in phys[1:])

    while not flowing():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no frame went through within {timeout:g} s")
        time.sleep(0.1)
    traffic.pause()
    _settle(client, traffic, all_sent=False)
    # phy ports read the kernel's own drop counter (frames the rx ring had no room for,
    # e.g. while a first run was compiling) every CHECK_INTERVAL: let what the warm-up
    # caused reach the counters before they are zeroed, or it is charged to the run.
    from spp.ports.phy import CHECK_INTERVAL

    time.sleep(2 * CHECK_INTERVAL + 0.2)
    client.delete("/primary/status")
    traffic.reset()
    traffic.sending.set()


def _settle(client: RestClient, traffic: Traffic, timeout: float = 5.0, *, all_sent: bool = True) -> None:
    """Wait (bounded) until the frames sent have all been taken in, moved on and received.

    Done when phy:0 accounts for every frame sent (received or dropped; skipped with
    ``all_sent=False``, for the warm-up, whose first frames may reach the interface
    before its port is open), no ring holds a frame, and each receiver has counted
    what its phy port transmitted.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get("/primary/status")
        phys = info.get("phy_ports", []) or []
        if len(phys) != len(ROLES):
            return
        stats = [p.get("stats") or {} for p in phys]
        taken = stats[0].get("rx_packets", 0) + sum(stats[0].get("drops", {}).values())
        queued = sum(int(r.get("count", 0)) for r in info.get("ring_ports", []) or [])
        caught_up = all(traffic.received[role] >= stats[i].get("tx_packets", 0) for i, role in enumerate(ROLES)
                        if i > 0)
        if (not all_sent or taken >= sum(traffic.sent.values())) and queued == 0 and caught_up:
            return
        time.sleep(0.05)


def _drain_rings(client: RestClient) -> int:
    """Delete (drain) every ring still in use; return how many."""
    info = client.get("/primary/status")
    rings = [str(r["port"]) for r in info.get("ring_ports", []) or []]
    for ring in rings:
        client.put("/primary/ports", {"action": "del", "port": ring})
    return len(rings)


def _summary(console: Console, info: dict[str, Any], roles: dict[str, str], traffic: Traffic | None,
             pool_after: dict[str, Any], capture: dict[str, Any] | None = None) -> None:
    console.rule("summary")
    console.print(_ports_table(info, roles))
    drops = copy_drops = 0
    for key in ("phy_ports", "ring_ports", "ports"):
        for entry in info.get(key, []) or []:
            lost = sum((entry.get("stats") or {}).get("drops", {}).values())
            drops += lost
            if entry.get("port") in ("ring:5", "phy:3", PCAP_TAP):  # the monitor's and spp-pcap's: copies
                copy_drops += lost
    table = Table(title="traffic", title_justify="left")
    table.add_column("what")
    table.add_column("frames", justify="right")
    if traffic is not None:
        table.add_row("sent to VM1's MAC", f"{traffic.sent['vm1']:,}")
        table.add_row("sent to VM2's MAC", f"{traffic.sent['vm2']:,}")
        table.add_row("received in VM1", f"{traffic.received['vm1']:,}")
        table.add_row("received in VM2", f"{traffic.received['vm2']:,}")
        table.add_row("mirror copies received by the monitor", f"{traffic.received['monitor']:,}")
    else:
        copies: dict[str, Any] = next((e for e in info.get("ring_ports", []) if e.get("port") == "ring:5"), {})
        table.add_row("mirror copies (ring:5)", f"{(copies.get('stats') or {}).get('tx_packets', 0):,}")
    if capture is not None:
        port = ((capture.get("core") or [{}])[0].get("rx_port") or [{}])[0].get("port", "?")
        label = f"captured by spp-pcap {PCAP_ID} ({port}{', warm-up included' if traffic is not None else ''})"
        table.add_row(label, f"{int(capture.get('captured', 0)):,}")
    table.add_row("dropped, all ports, all reasons", f"{drops:,}")
    table.add_row("pool buffers in use after teardown", f"{pool_after.get('in_use')} of {pool_after.get('n_bufs')}")
    console.print(table)
    if capture is not None:
        files = capture.get("files") or []
        console.print(f"spp-pcap {PCAP_ID}'s capture file{'s' if len(files) != 1 else ''}: "
                      f"{', '.join(map(str, files)) or 'none'} (removed with the demo; 'tcpdump -r' reads them)")
    if traffic is not None:
        sent = traffic.sent["vm1"] + traffic.sent["vm2"]
        delivered = traffic.received["vm1"] + traffic.received["vm2"]
        lost = drops - copy_drops
        mark = "✓" if sent == delivered + lost else "✗ (frames lost without a count)"
        console.print(f"frames in = frames out + counted drops (originals): {sent:,} = {delivered:,} + {lost:,} {mark}")
        console.print(f"copies to the monitor: {traffic.received['monitor']:,} delivered + {copy_drops:,} dropped")


def build_parser() -> argparse.ArgumentParser:
    """``spp demo`` options."""
    parser = argparse.ArgumentParser(prog="spp demo", description="Run the TaaS demo on a private stack.")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long traffic runs (default 10)")
    parser.add_argument("--no-live", action="store_true", help="no live display; print the summary only")
    parser.add_argument("--rate", type=int, default=2000, help="frames per second sent (root mode, default 2000)")
    parser.add_argument("--null", action="store_true", help="use the null-port variant even as root")
    add_version(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the demo; return 0 on success, 1 on failure, 130 when interrupted."""
    args = build_parser().parse_args(list(argv))
    if args.seconds <= 0:
        build_parser().error(f"--seconds must be positive, got {args.seconds}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    root = os.geteuid() == 0 and not args.null

    main_pid = os.getpid()

    def on_term(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            # a helper forked by pyroute2 inherits this handler: it must just die, not clean up
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Interrupted

    previous = signal.signal(signal.SIGTERM, on_term)
    tag = f"sd{os.getpid() % 10000}"
    try:
        with ExitStack() as stack:
            try:
                return _run(stack, console, args, root, tag)
            except (KeyboardInterrupt, Interrupted):
                console.print("[yellow]interrupted: cleaning up[/yellow]")
                return 130
            except (CliError, StackError, TimeoutError, OSError, LookupError, ValueError) as exc:
                console.print(Text.assemble(("demo failed: ", "bold red"), str(exc)))
                return 1
            finally:
                console.print("removing processes, shared memory" + (", namespaces and interfaces" if root else ""))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(stack: ExitStack, console: Console, args: argparse.Namespace, root: bool, tag: str) -> int:
    examples = resources.files("spp") / "examples"
    roles: dict[str, str]
    if root:
        console.print(f"creating namespaces {', '.join(f'{tag}{r[:3]}' for r in ROLES)} and veth pairs")
        net: Network | None = stack.enter_context(network(tag))
        assert net is not None
        roles = {f"phy:{i}": f"{role} ({net.phys[i]})" for i, role in enumerate(ROLES)}
        topology: Topology = parse(with_nfv(yaml.safe_load((examples / "taas.yaml").read_text())), "taas.yaml")
    else:
        why = "--null given" if os.geteuid() == 0 else "not root"
        console.print(f"[yellow]{why}: no namespaces or veth; running the mirror on null ports instead[/yellow]")
        net = None
        roles = {"nullpmd:0": "source", "nullpmd:1": "VM1 sink", "nullpmd:3": "monitor sink"}
        topology = parse(with_nfv(NULL_TOPOLOGY), "null topology")
    local = stack.enter_context(LocalStack())
    console.print(f"starting spp-ctl (REST {local.server}) and spp-primary (--file-prefix {local.prefix}); "
                  f"logs in {local.log_dir}")
    local.start_ctl()
    console.print(f"live topology page: {local.url}/ui  (open it in a browser while the demo runs)")
    local.start_primary(phy=net.phys if net else (),
                        extra=["--pool-size", "8192", "--rings", "16", "--ring-size", "512"])
    client = RestClient(local.server)
    stack.callback(client.close)
    console.print(f"while it runs: Prometheus metrics at {local.url}/metrics, the API at {local.url}/docs, "
                  f"live rates with 'spp top -b {local.server}'")
    traffic: Traffic | None = None
    if net is not None:
        traffic = Traffic(net, args.rate)
        stack.callback(traffic.close)
        traffic.start()
    console.print(f"applying taas.yaml through REST (the primary launches spp-vf 1, spp-mirror 2 and spp-nfv {NFV_ID})"
                  if root else "applying the null-port TaaS topology through REST")
    up(topology, client, secondary=local.secondary_addr, log=lambda line: console.print(f"  {line}"))
    _wait_compiled(console, client, topology)
    capture_dir = tempfile.mkdtemp(prefix="spp-demo-pcap-")
    stack.callback(shutil.rmtree, capture_dir, ignore_errors=True)
    console.print(f"launching spp-pcap {PCAP_ID} to capture {PCAP_PORT} (VM1's ring) into {capture_dir}")
    start_capture(client, local.secondary_addr, PCAP_PORT, capture_dir)
    if traffic is not None:
        _warm_up(console, client, traffic)
    deadline = time.monotonic() + args.seconds
    if args.no_live:
        while time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    else:
        with Live(_view(client, roles, traffic, args.seconds), console=console, refresh_per_second=4) as live:
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(min(0.5, left))
                live.update(_view(client, roles, traffic, max(0.0, deadline - time.monotonic())))
    if traffic is not None:
        traffic.done_sending.set()
        _settle(client, traffic)
    capture = stop_capture(client)
    info = client.get("/primary/status")
    down(client, topology, log=lambda line: console.print(f"  {line}"))
    with contextlib.suppress(TimeoutError):
        local.wait_process(None, 5)
    deadline = time.monotonic() + 10
    while any(p.get("type") in SECONDARY_KINDS and not p.get("error") for p in (local.processes() or [])):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    _drain_rings(client)
    pool_after = client.get("/primary/status")["pool"]
    _summary(console, info, roles, traffic, pool_after, capture)
    return 0
