"""``phy``: veth → spp (phy:0 → forward → phy:1) → veth under an offered load, vs testpmd.

Layout (needs root)::

    [ns gen]  gA ──veth── fA   (host)   fB ──veth── gB  [ns sink]
              generator        forwarder            counted by the kernel

The generator (:mod:`spp.bench.gen`, a paced TPACKET_V2 tx ring, pinned to the core
the forwarder does not use) sends ``--rate`` Mpps of ``--size``-byte frames into gA
for each window; the forwarder moves them from fA to fB; the sink is gB's own receive
counter (netlink ``IFLA_STATS64``), so no process competes for the CPU there.  spp's
forwarder is a Worker (Python loop: phy is not a compiled driver) with ``phy:0``
(``iface=fA``) and ``phy:1`` (``iface=fB``); the peer is ``dpdk-testpmd
--forward-mode=io`` with ``net_af_packet`` vdevs on the same two interfaces, same load.
They take turns; only one of them has sockets open on the interfaces at a time.

Figures per side: forwarded Mpps (best window) and loss = 1 − delivered / sent (worst
window).  Every interface and namespace is removed at the end, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time
from typing import Any

from spp.bench.common import (
    BenchError,
    Cleanup,
    Options,
    OutputReader,
    Result,
    Testpmd,
    eal_args,
    python_child,
    runs_native,
)
from spp.testing import unique_prefix, wait_for

PEER = "dpdk-testpmd io (net_af_packet x2)"


def _not_runnable(reason: str) -> list[Result]:
    return [Result("phy", None, status="not-runnable", extra={"reason": reason})]


def _if_stats(ifname: str, ns: str | None) -> dict[str, int]:
    """The kernel's counters (``IFLA_STATS64``) of ``ifname`` in namespace ``ns``."""
    from pyroute2 import IPRoute, NetNS

    with IPRoute() if ns is None else NetNS(ns) as r:
        idx = r.link_lookup(ifname=ifname)
        if not idx:
            raise BenchError(f"interface {ifname} vanished from namespace {ns or 'host'}")
        stats = r.get_links(idx[0])[0].get_attr("IFLA_STATS64")
        return {k: int(v) for k, v in stats.items()}


def _rx_packets(ifname: str, ns: str | None) -> int:
    return _if_stats(ifname, ns)["rx_packets"]


def _kernel_drops(net: _Net) -> dict[str, int]:
    """rx_dropped + tx_dropped of the veth ends on the path (where the kernel lost frames).

    Not gB: the sink's stack drops every frame it receives (no protocol for EtherType
    0x88b5) and counts that as rx_dropped; those frames were delivered.
    """
    out = {}
    for name, ifname, ns in (("gA", net.ga, net.ns_gen), ("fA", net.fa, None), ("fB", net.fb, None)):
        st = _if_stats(ifname, ns)
        out[name] = st["rx_dropped"] + st["tx_dropped"]
    return out


class _Net:
    """Two namespaces and two veth pairs, registered for removal as soon as they exist."""

    def __init__(self, cleanup: Cleanup) -> None:
        from spp.testing import netns as nt

        tag = f"{os.getpid() % 10000}"
        self.ns_gen, self.ns_sink = f"spbg{tag}", f"spbs{tag}"
        self.fa, self.ga, self.fb, self.gb = f"spbfa{tag}", f"spbga{tag}", f"spbfb{tag}", f"spbgb{tag}"
        for ns in (self.ns_gen, self.ns_sink):
            cm = nt.netns(ns)
            cm.__enter__()
            cleanup.push("namespace " + ns, functools.partial(cm.__exit__, None, None, None))
        for a, b, ns in ((self.fa, self.ga, self.ns_gen), (self.fb, self.gb, self.ns_sink)):
            cleanup.push("veth " + a, functools.partial(_delete, a))
            nt.create_veth(a, b, ns)


def _delete(ifname: str) -> None:
    from spp.testing import netns as nt

    with contextlib.suppress(Exception):
        nt.delete_link(ifname)


class _Generator:
    def __init__(self, net: _Net, opts: Options, seconds: float, core: int, cleanup: Cleanup) -> None:
        self.proc = python_child("spp.bench.gen", ["--ns", net.ns_gen, "--iface", net.ga, "--rate", str(opts.rate),
                                                   "--seconds", str(seconds), "--size", str(opts.size),
                                                   "--core", str(core)], cleanup, "generator")
        self.out = OutputReader(self.proc)
        self.out.wait_for(r"ready", timeout=60)

    def run(self) -> tuple[int, float]:
        """Send the load; return (frames handed to the kernel, seconds)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        m = self.out.wait_for(r"sent (\d+) ([\d.]+)", timeout=600)
        self.proc.wait(10)
        return int(m.group(1)), float(m.group(2))


def _window(net: _Net, opts: Options, seconds: float, core: int, cleanup: Cleanup,
            kdrops: dict[str, int] | None = None) -> tuple[float, float, float]:
    """One generator run; return (forwarded Mpps, loss fraction, Mpps actually sent).

    Frames the kernel dropped on the veth ends meanwhile are added to ``kdrops``.
    """
    gen = _Generator(net, opts, seconds, core, cleanup)
    k0 = _kernel_drops(net)
    before = _rx_packets(net.gb, net.ns_sink)
    sent, elapsed = gen.run()
    last = [-1]

    def settled() -> bool:  # delivered count stopped moving (in-flight frames arrived)
        now = _rx_packets(net.gb, net.ns_sink)
        done = now == last[0]
        last[0] = now
        return done

    wait_for(settled, timeout=10, interval=0.1, message="the sink's counter to settle")
    delivered = last[0] - before
    if kdrops is not None:
        for name, v in _kernel_drops(net).items():
            kdrops[name] = kdrops.get(name, 0) + v - k0[name]
    loss = max(0.0, 1 - delivered / sent) if sent else 0.0
    return delivered / elapsed / 1e6, loss, sent / elapsed / 1e6


def _warm_up(net: _Net, opts: Options, gen_core: int, cleanup: Cleanup) -> None:
    """Short generator runs until frames come through (code loaded, rings mapped, caches warm)."""
    deadline = time.monotonic() + 120
    while True:
        mpps, _, _ = _window(net, opts, 0.3, gen_core, cleanup)
        if mpps > 0:
            return
        if time.monotonic() > deadline:
            raise BenchError("nothing came through the forwarder within 120 s of warm-up")


def _spp_windows(net: _Net, opts: Options, window: float, gen_core: int, rounds: int, cleanup: Cleanup,
                 kdrops: dict[str, int]) -> tuple[list[float], list[float], list[float], dict[str, Any]]:
    import spp.graph.worker as wm
    from spp.components.forward import Forward
    from spp.ports.base import PortTable
    from spp.runtime.dataplane import Dataplane, Layout
    from spp.runtime.stats import DROP_BASE, REASON, RX_PACKETS, TX_PACKETS

    inner = Cleanup()
    try:
        dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
        inner.push("data plane", dp.close)
        ports = PortTable(dp)
        inner.push("ports", ports.close_all)
        a = ports.get("phy:0", iface=net.fa)
        b = ports.get("phy:1", iface=net.fb)
        w = wm.Worker(dp, opts.core)
        w.start()
        inner.push("worker", w.stop)
        w.publish(wm.WorkerPlan((wm.ComponentPlan(Forward(dp, "fwd", opts.core), (wm.Attachment(a),),
                                                  (wm.Attachment(b),)),), 1), timeout=300)
        _warm_up(net, opts, gen_core, inner)
        native = runs_native(w)
        mpps, loss, sent = [], [], []
        for _ in range(rounds):
            m, lo, se = _window(net, opts, window, gen_core, inner, kdrops)
            mpps.append(m)
            loss.append(lo)
            sent.append(se)
        w.publish(wm.WorkerPlan((), 2), timeout=60)
        w.stop()
        if w.error is not None:
            raise BenchError(f"spp worker failed: {w.error!r}")
        ports.close_all()  # closing reads the kernel's last rx-ring drops and drains the rings
        rx, tx = int(a.stats[RX_PACKETS]), int(b.stats[TX_PACKETS])
        drops = {str(p.id): p.stats_dict()["drops"] for p in (a, b) if int(p.stats[DROP_BASE:].sum())}
        # phy:0's ring_full/stopped/link_down count frames lost before they were received
        before_rx = sum(int(a.stats[REASON[r]]) for r in ("ring_full", "stopped", "link_down"))
        exact = rx == tx + int(a.stats[DROP_BASE:].sum() + b.stats[DROP_BASE:].sum()) - before_rx
        wait_for(lambda: dp.free_count == dp.n_bufs, timeout=5, message="pool whole")
        return mpps, loss, sent, {"exact": exact, "spp_drops": drops, "native": native}
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def _peer_windows(net: _Net, opts: Options, window: float, gen_core: int, rounds: int,
                  cleanup: Cleanup, kdrops: dict[str, int]) -> tuple[list[float], list[float], list[float], str]:
    inner = Cleanup()
    try:
        ring = "blocksz=4096,framesz=2048,framecnt=2048,qdisc_bypass=1"  # 4 MiB per ring, as spp's phy rx
        vdevs = ["--vdev", f"net_af_packet0,iface={net.fa},{ring}", "--vdev", f"net_af_packet1,iface={net.fb},{ring}"]
        tp = Testpmd([*eal_args(unique_prefix("tpmd"), opts.core), *vdevs],
                     ["--forward-mode=io", "--nb-cores=1"], inner)
        inner.push("testpmd quit", tp.quit)
        tp.send("start")
        _warm_up(net, opts, gen_core, inner)
        mpps, loss, sent = [], [], []
        for _ in range(rounds):
            m, lo, se = _window(net, opts, window, gen_core, inner, kdrops)
            mpps.append(m)
            loss.append(lo)
            sent.append(se)
        tp.send("stop")
        return mpps, loss, sent, tp.command
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    if os.geteuid() != 0:
        return _not_runnable("needs root (network namespaces, veth pairs, AF_PACKET): run as root")
    try:
        from spp.ports import phy  # noqa: F401
    except ImportError as e:
        return _not_runnable(f"the phy driver (spp.ports.phy) is not available yet: {e}")
    cores = sorted(os.sched_getaffinity(0))
    gen_core = next((c for c in cores if c != opts.core), opts.core)
    net = _Net(cleanup)
    return [_run_rate(net, dataclasses.replace(opts, rate=rate), gen_core, cleanup) for rate in opts.rates]


def _run_rate(net: _Net, opts: Options, gen_core: int, cleanup: Cleanup) -> Result:
    """Both sides at offered load ``opts.rate``."""
    rounds = max(1, min(opts.rounds, 3))
    window = opts.seconds / rounds
    ours: list[float] = []
    our_loss: list[float] = []
    theirs: list[float] = []
    their_loss: list[float] = []
    sent: list[float] = []
    exact = True
    native = True
    spp_drops: dict[str, dict[str, int]] = {}
    command = None
    peer = opts.peer
    peer_error = None
    kd_spp: dict[str, int] = {}
    kd_peer: dict[str, int] = {}
    for _ in range(rounds):  # alternate whole sides, one window each, so both see the same machine
        m, lo, se, books = _spp_windows(net, opts, window, gen_core, 1, cleanup, kd_spp)
        exact = exact and bool(books["exact"])
        native = native and bool(books["native"])
        for port, reasons in books["spp_drops"].items():
            for reason, n in reasons.items():
                spp_drops.setdefault(port, {})[reason] = spp_drops.get(port, {}).get(reason, 0) + n
        ours += m
        our_loss += lo
        sent += se
        if peer:
            try:
                m, lo, se, command = _peer_windows(net, opts, window, gen_core, 1, cleanup, kd_peer)
            except BenchError as e:  # spp's figures still count; say why there is no peer
                peer, peer_error = False, str(e)
                continue
            theirs += m
            their_loss += lo
            sent += se
    extra: dict[str, object] = {
        "offered_mpps": opts.rate, "sent_mpps_min": round(min(sent), 4), "size": opts.size, "rounds": rounds,
        "loss": round(max(our_loss), 5), "spp_windows": [round(x, 4) for x in ours],
        "generator": f"{sys.executable} -m spp.bench.gen --ns NS --iface IF --rate {opts.rate} --size {opts.size}",
    }
    extra["exact"] = exact
    extra["native"] = native
    extra["spp_drops"] = spp_drops
    extra["kernel_drops"] = kd_spp
    if peer_error:
        extra["peer_error"] = peer_error
    if theirs:
        extra["peer_loss"] = round(max(their_loss), 5)
        extra["peer_kernel_drops"] = kd_peer
        extra["peer_windows"] = [round(x, 4) for x in theirs]
        extra["peer_command"] = command
    return Result("phy", max(ours), PEER if theirs else None, max(theirs) if theirs else None, extra=extra)
