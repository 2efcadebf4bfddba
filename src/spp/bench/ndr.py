"""``ndr``: the highest offered rate with zero loss (RFC 2544 "no drop rate") per forwarder.

Layout (needs root), the veths of ``mirror-peers``::

    [ns gen] gA ─veth─ fA  (host)  fB ─veth─ gB [ns sink]    forwarded
                                   fC ─veth─ gC [ns msink]   mirrored (mirror sides only)

The generator is :mod:`spp.bench.gen`: a TPACKET_V2 tx ring on gA, qdisc bypassed, whose
slots a compiled loop hands to the kernel in batches paced by the clock, one ``send``
per batch, pinned to the core the forwarder does not use (``--core``).  Unpaced it runs
as fast as netsniff-ng's ``trafgen`` (C, mmap ring) on the same veth; ``trafgen``'s own
maximum is measured beside it when installed (``trafgen_max_mpps``; trafgen's paced mode
sends with one ``sendto`` per frame and tops out far lower, so it is not the generator).
Sent = gA's kernel ``tx_packets``; delivered = gB's (and, for mirror sides, gC's) kernel
``rx_packets`` after the counters settle.  A trial has zero loss when everything sent was
delivered (and mirrored).  On a veth the sender's CPU also runs the receiving end's
softirq (for AF_PACKET forwarders: the copy into their rx ring; for tc: the whole
forwarding), so the top offered rate depends on the side.

Per side: first the *top* trial, the generator unpaced (its maximum with that forwarder
attached); if that loses nothing, the NDR is the top rate (``generator_bound``).
Otherwise a binary search between 0 and the top rate, trials of ``--seconds`` (at least 2
unless ``--quick``), until the interval is within 2 % of the top rate; the NDR is the
highest rate that lost nothing.  The generator's own maximum (nothing attached to fA)
is measured once per run.

Sides (``--side``; all by default):

* ``spp-af_packet``: spp ``phy:0`` (fA) → forward → ``phy:1`` (fB), a Worker on
  ``--core``; the row says whether the compiled loop ran (``native``).
* ``spp-af_xdp``: the same with the AF_XDP driver, where spp has it.
* ``testpmd-af_packet`` / ``testpmd-af_xdp``: ``dpdk-testpmd --forward-mode=io`` on two
  ``net_af_packet`` / ``net_af_xdp`` vdevs, forwarding lcore ``--core``.
* ``tc-redirect``: the kernel: ingress u32 match-all on fA, ``mirred egress redirect
  dev fB`` (in the softirq of the sending CPU).
* ``spp-mirror``: spp-af_packet plus a local port mirror of ``phy:0`` (rx) to ``phy:2`` (fC).
* ``tc-mirror``: ``mirred egress mirror dev fC`` then ``redirect dev fB``.
* ``ovs-mirror``: Open vSwitch, netdev datapath, flow fA→fB and a mirror of fA to fC.

Rows pair an spp side with a peer: ``{"scenario": "ndr", "side", "driver", "ndr_mpps",
"peer", "peer_ndr_mpps", "ratio", "generator_max_mpps", ...}`` plus the delivered Mpps at
the top offered load (``top_delivered_mpps``) and every trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

from spp.bench.common import (
    DIE_WITH_PARENT,
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
from spp.bench.mirror_peers import _Net, _tc, ovs_bridge, ovs_missing
from spp.testing import unique_prefix, wait_for

RESOLUTION = 0.02
FLOWS = 64  # UDP source ports the generator cycles through (so a flow hash can spread them)
MIN_TRIAL_S = 2.0
TRAFGEN = "trafgen"


@dataclasses.dataclass
class Trial:
    offered_pps: float | None  # None: unpaced (the generator's maximum)
    sent: int
    delivered: int
    mirrored: int | None
    seconds: float

    @property
    def zero_loss(self) -> bool:
        return self.delivered >= self.sent and (self.mirrored is None or self.mirrored >= self.sent)

    @property
    def sent_mpps(self) -> float:
        return self.sent / self.seconds / 1e6

    def row(self) -> dict[str, Any]:
        return {"offered_mpps": None if self.offered_pps is None else round(self.offered_pps / 1e6, 4),
                "sent_mpps": round(self.sent_mpps, 4), "sent": self.sent, "delivered": self.delivered,
                "mirrored": self.mirrored, "zero_loss": self.zero_loss}


class _Counters:
    """Kernel interface counters read through one open netlink socket per namespace."""

    def __init__(self, net: _Net, cleanup: Cleanup) -> None:
        from pyroute2 import NetNS

        self._ns: dict[str, Any] = {}
        for ns in (net.ns_gen, net.ns_sink, net.ns_msink):
            h = NetNS(ns)
            self._ns[ns] = h
            cleanup.push("netlink " + ns, h.close)

    def get(self, ns: str, ifname: str, key: str) -> int:
        r = self._ns[ns]
        idx = r.link_lookup(ifname=ifname)
        if not idx:
            raise BenchError(f"interface {ifname} vanished from namespace {ns}")
        return int(r.get_links(idx[0])[0].get_attr("IFLA_STATS64")[key])


class _Generator:
    """:mod:`spp.bench.gen` on gA (compiled ring fill, paced), pinned to ``core``; None = unpaced."""

    UNPACED = 100.0  # Mpps: more than any veth takes, so the generator runs flat out

    def __init__(self, net: _Net, size: int, core: int, cleanup: Cleanup) -> None:
        self.net, self.size, self.core, self.cleanup = net, size, core, cleanup

    def args(self, pps: float | None, seconds: float) -> list[str]:
        rate = self.UNPACED if pps is None else pps / 1e6
        return ["--ns", self.net.ns_gen, "--iface", self.net.ga, "--rate", f"{rate:.6f}", "--seconds", str(seconds),
                "--size", str(self.size), "--core", str(self.core), "--flows", str(FLOWS)]

    def command(self) -> str:
        return (f"python3 -m spp.bench.gen --iface gA --rate MPPS --size {self.size} --core {self.core} "
                f"--flows {FLOWS}")

    def run(self, pps: float | None, seconds: float) -> float:
        """Send; return the seconds it sent for."""
        proc = python_child("spp.bench.gen", self.args(pps, seconds), self.cleanup, "generator")
        out = OutputReader(proc)
        out.wait_for(r"ready", timeout=120)
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        m = out.wait_for(r"sent (\d+) ([\d.]+)", timeout=seconds * 3 + 30)
        proc.wait(10)
        return float(m.group(2))


def trafgen_max(net: _Net, size: int, seconds: float) -> float | None:
    """trafgen's own unpaced rate into gA (its single worker runs on CPU 0), as a cross-check; None
    if netsniff-ng is not installed."""
    if shutil.which(TRAFGEN) is None:
        return None
    body = "0x02,0xaa,0xbb,0xcc,0xdd,0x02, 0x02,0xaa,0xbb,0xcc,0xdd,0x01, 0x88,0xb5"
    argv = [*DIE_WITH_PARENT, "ip", "netns", "exec", net.ns_gen, TRAFGEN, "-o", net.ga, "-P", "1", "-C",
            f"{{ {body}, fill(0x00, {size - 14}) }}"]
    # its own process group: trafgen's forked worker must get the SIGINT too
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(0.3)  # started
        a0 = _ns_stat(net.ns_gen, net.ga, "tx_packets")
        t0 = time.monotonic()
        time.sleep(seconds)  # the measurement window itself
        a1 = _ns_stat(net.ns_gen, net.ga, "tx_packets")
        t1 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return (a1 - a0) / (t1 - t0) / 1e6


def _ns_stat(ns: str, ifname: str, key: str) -> int:
    from spp.bench.phy import _if_stats

    return _if_stats(ifname, ns)[key]


class _Bench:
    def __init__(self, opts: Options, cleanup: Cleanup) -> None:
        self.opts = opts
        self.net = _Net(cleanup)
        self.counters = _Counters(self.net, cleanup)
        self.gen_core = next(c for c in sorted(os.sched_getaffinity(0)) if c != opts.core)
        self.gen = _Generator(self.net, opts.size, self.gen_core, cleanup)
        self.seconds = opts.seconds if opts.quick else max(MIN_TRIAL_S, opts.seconds)
        self.resolution = 0.2 if opts.quick else RESOLUTION

    def _sinks(self, mirror: bool) -> tuple[int, int]:
        n = self.net
        b = self.counters.get(n.ns_sink, n.gb, "rx_packets")
        c = self.counters.get(n.ns_msink, n.gc, "rx_packets") if mirror else 0
        return b, c

    def trial(self, pps: float | None, mirror: bool, seconds: float | None = None) -> Trial:
        n = self.net
        seconds = self.seconds if seconds is None else seconds
        a0 = self.counters.get(n.ns_gen, n.ga, "tx_packets")
        b0, c0 = self._sinks(mirror)
        took = self.gen.run(pps, seconds)
        last: list[tuple[int, int] | None] = [None]

        def settled() -> bool:
            now = self._sinks(mirror)
            done = now == last[0]
            last[0] = now
            return done

        wait_for(settled, timeout=10, interval=0.05, message="the sinks' counters to settle")
        assert last[0] is not None
        b1, c1 = last[0]
        sent = self.counters.get(n.ns_gen, n.ga, "tx_packets") - a0
        return Trial(pps, sent, b1 - b0, (c1 - c0) if mirror else None, took)

    def warm_up(self, mirror: bool) -> None:
        """Short slow trials until frames come through (compiled code loaded, sockets open)."""
        deadline = time.monotonic() + 900
        while True:
            t = self.trial(20000.0, mirror, 0.2)
            if t.delivered > 0 and (not mirror or (t.mirrored or 0) > 0):
                return
            if time.monotonic() > deadline:
                raise BenchError("nothing came through the forwarder within 900 s of warm-up (a cold compile of "
                                 "the worker loop on a busy host takes minutes)")

    def search(self, mirror: bool) -> dict[str, Any]:
        """The top trial, then the binary search for the highest zero-loss rate."""
        self.warm_up(mirror)
        top = self.trial(None, mirror)
        trials = [top]
        out: dict[str, Any] = {"top_offered_mpps": round(top.sent_mpps, 4),
                               "top_delivered_mpps": round(top.delivered / top.seconds / 1e6, 4)}
        if mirror:
            out["top_mirrored_mpps"] = round((top.mirrored or 0) / top.seconds / 1e6, 4)
        hi = top.sent / top.seconds
        if top.zero_loss:
            ndr = hi
            out["generator_bound"] = True
        else:
            lo, ndr = 0.0, 0.0
            max_steps = 3 if self.opts.quick else 12
            mid = hi / 2
            for _ in range(max_steps):
                if hi - lo <= self.resolution * top.sent_mpps * 1e6:
                    break
                t = self.trial(mid, mirror)
                trials.append(t)
                if t.zero_loss:
                    lo = ndr = mid
                else:
                    hi = mid
                mid = (lo + hi) / 2
            out["generator_bound"] = False
        out["ndr_mpps"] = round(ndr / 1e6, 4)
        out["trials"] = [t.row() for t in trials]
        return out


# --- the sides ------------------------------------------------------------------------

Setup = Callable[["_Bench", Cleanup], contextlib.AbstractContextManager[dict[str, Any]]]


@contextlib.contextmanager
def _spp(b: _Bench, cleanup: Cleanup, driver: str = "af_packet", mirror: bool = False,
         workers: int = 1) -> Iterator[dict[str, Any]]:
    """spp forwarding fA → fB; with ``workers`` 2, a second Worker (on the generator's core: this
    host has two) forwards queue 1 (``phy:0nq1`` → ``phy:1nq1``): PACKET_FANOUT splits fA's frames
    between the two by flow hash (the generator sends :data:`FLOWS` UDP flows)."""
    import spp.graph.worker as wm
    from spp.components.forward import Forward
    from spp.ports.base import PortTable
    from spp.runtime.dataplane import Dataplane, Layout

    inner = Cleanup()
    try:
        dp = Dataplane.create(unique_prefix("bndr"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
        inner.push("data plane", dp.close)
        ports = PortTable(dp)
        inner.push("ports", ports.close_all)
        kw: dict[str, Any] = {} if driver == "af_packet" else {"driver": driver}
        a = ports.get("phy:0", iface=b.net.fa, **kw)
        o = ports.get("phy:1", iface=b.net.fb, **kw)
        info: dict[str, Any] = {"driver": a.describe().get("driver", driver)}
        if mirror:
            from spp.mirror.agent import MirrorAgent

            c = ports.get("phy:2", iface=b.net.fc, **kw)
            agent = MirrorAgent(dp, ports)
            inner.push("mirror agent", agent.close)
            agent.register("m0", a, c, "rx")
        pairs = [(b.opts.core, a, o)]
        if workers == 2:
            from spp.ports.base import open_port

            a1 = open_port(dp, "phy:0nq1", iface=b.net.fa, **kw)
            inner.push("phy:0nq1", a1.close)
            o1 = open_port(dp, "phy:1nq1", iface=b.net.fb, **kw)
            inner.push("phy:1nq1", o1.close)
            pairs.append((b.gen_core, a1, o1))
        ws = []
        for core, src, dst in pairs:
            w = wm.Worker(dp, core)
            w.start()
            inner.push("worker", w.stop)
            w.publish(wm.WorkerPlan((wm.ComponentPlan(Forward(dp, "fwd", core), (wm.Attachment(src),),
                                                      (wm.Attachment(dst),)),), 1), timeout=300)
            ws.append(w)
        info["native"] = all(runs_native(w) for w in ws)
        info["driver"] = a.describe().get("driver", driver)  # AF_XDP's socket opened with the plan
        info["workers"] = workers
        info["command"] = (f"in-process Worker on core {b.opts.core}: phy:0 (fA) → forward → phy:1 (fB)"
                           + ("; port mirror phy:0 rx → phy:2 (fC)" if mirror else "")
                           + (f"; a second Worker on core {b.gen_core}: phy:0nq1 → forward → phy:1nq1 "
                              "(PACKET_FANOUT hash)" if workers == 2 else ""))
        yield info
        info["native"] = bool(info["native"]) and all(runs_native(w) for w in ws)
        for w in ws:
            if w.error is not None:
                raise BenchError(f"spp worker failed: {w.error!r}")
        drops = {str(p.id): p.stats_dict()["drops"] for p in ports.all()}
        info["spp_drops"] = {k: v for k, v in drops.items() if isinstance(v, dict) and any(v.values())}
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


@contextlib.contextmanager
def _testpmd(b: _Bench, cleanup: Cleanup, pmd: str = "af_packet") -> Iterator[dict[str, Any]]:
    inner = Cleanup()
    try:
        n = b.net
        if pmd == "af_packet":
            ring = "blocksz=4096,framesz=2048,framecnt=2048,qdisc_bypass=1"
            vdevs = ["--vdev", f"net_af_packet0,iface={n.fa},{ring}", "--vdev", f"net_af_packet1,iface={n.fb},{ring}"]
        else:
            vdevs = ["--vdev", f"net_af_xdp0,iface={n.fa},start_queue=0,queue_count=1",
                     "--vdev", f"net_af_xdp1,iface={n.fb},start_queue=0,queue_count=1"]
        tp = Testpmd([*eal_args(unique_prefix("tndr"), b.opts.core), *vdevs],
                     ["--forward-mode=io", "--nb-cores=1"], inner)
        inner.push("testpmd quit", tp.quit)
        if "Port 0" not in tp.out.text and "port 0" not in tp.out.text.lower():
            raise BenchError(f"dpdk-testpmd found no port ({pmd}): {tp.out.text[-800:]}")
        tp.send("start")
        yield {"command": tp.command.replace(n.fa, "fA").replace(n.fb, "fB"), "driver": pmd}
        tp.send("stop")
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


@contextlib.contextmanager
def _tc_side(b: _Bench, cleanup: Cleanup, mirror: bool = False) -> Iterator[dict[str, Any]]:
    inner = Cleanup()
    try:
        n = b.net
        _tc("qdisc", "add", "dev", n.fa, "ingress")
        inner.push("tc ingress qdisc", lambda: _tc("qdisc", "del", "dev", n.fa, "ingress"))
        rule = ["filter", "add", "dev", n.fa, "parent", "ffff:", "protocol", "all", "u32", "match", "u32", "0", "0"]
        if mirror:
            rule += ["action", "mirred", "egress", "mirror", "dev", n.fc]
        rule += ["action", "mirred", "egress", "redirect", "dev", n.fb]
        _tc(*rule)
        text = "tc " + " ".join(rule)
        yield {"command": text.replace(n.fa, "fA").replace(n.fb, "fB").replace(n.fc, "fC"), "driver": "kernel"}
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


@contextlib.contextmanager
def _ovs(b: _Bench, cleanup: Cleanup) -> Iterator[dict[str, Any]]:
    why = ovs_missing()
    if why is not None:
        raise BenchError(why)
    with ovs_bridge(b.net, b.opts.core, cleanup) as what:
        yield {"command": what, "driver": "netdev"}


@dataclasses.dataclass(frozen=True)
class Side:
    label: str
    mirror: bool
    setup: Setup


SIDES: dict[str, Side] = {
    "spp-af_packet": Side("spp phy", False, _spp),
    "spp-af_xdp": Side("spp phy", False, functools.partial(_spp, driver="af_xdp")),
    "testpmd-af_packet": Side("dpdk-testpmd io (net_af_packet x2)", False, _testpmd),
    "testpmd-af_xdp": Side("dpdk-testpmd io (net_af_xdp x2)", False, functools.partial(_testpmd, pmd="af_xdp")),
    "tc-redirect": Side("linux tc (u32, mirred redirect)", False, _tc_side),
    "spp-af_packet-2w": Side("spp phy, 2 workers (fanout)", False, functools.partial(_spp, workers=2)),
    "spp-mirror": Side("spp phy + port mirror", True, functools.partial(_spp, mirror=True)),
    "tc-mirror": Side("linux tc (u32, mirred mirror + redirect)", True, functools.partial(_tc_side, mirror=True)),
    "ovs-mirror": Side("open vswitch (netdev datapath, mirror)", True, _ovs),
}
#: (spp side, peer side) per result row.
ROWS: tuple[tuple[str, str], ...] = (
    ("spp-af_packet", "testpmd-af_packet"),
    ("spp-af_xdp", "testpmd-af_xdp"),
    ("spp-af_packet", "tc-redirect"),
    ("spp-af_packet-2w", "testpmd-af_packet"),
    ("spp-mirror", "tc-mirror"),
    ("spp-mirror", "ovs-mirror"),
)


def _measure(b: _Bench, key: str, cleanup: Cleanup) -> dict[str, Any]:
    side = SIDES[key]
    try:
        with side.setup(b, cleanup) as info:
            fig = b.search(side.mirror)
        return {**info, **fig}
    except (BenchError, OSError, subprocess.SubprocessError, ValueError, TypeError) as e:
        return {"error": str(e) or type(e).__name__}


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    if os.geteuid() != 0:
        return [Result("ndr", None, status="not-runnable",
                       extra={"reason": "needs root (network namespaces, veth pairs, AF_PACKET, tc): run as root"})]
    cores = sorted(os.sched_getaffinity(0))
    if opts.core not in cores or len(cores) < 2:
        raise BenchError(f"--core {opts.core}: the forwarder and the generator need a core each; this process "
                         f"may use {cores}")
    wanted = opts.sides or tuple(SIDES)
    for s in wanted:
        if s not in SIDES:
            raise BenchError(f"unknown side {s!r}; choose from: {', '.join(SIDES)}")
    b = _Bench(opts, cleanup)
    gen_max = b.trial(None, False)
    tg_max = trafgen_max(b.net, opts.size, 1.0 if opts.quick else b.seconds)
    figs: dict[str, dict[str, Any]] = {}
    for key in SIDES:  # a fixed order, the same every run
        if key in wanted and (opts.peer or key.startswith("spp")):
            figs[key] = _measure(b, key, cleanup)
    results = []
    common = {"size": opts.size, "trial_s": b.seconds, "resolution": b.resolution,
              "generator_max_mpps": round(gen_max.sent_mpps, 4), "generator": b.gen.command(),
              "trafgen_max_mpps": None if tg_max is None else round(tg_max, 4),
              "generator_core": b.gen_core, "forwarder_core": opts.core}
    for ours, peer in ROWS:
        if ours not in figs and peer not in figs:
            continue
        mine = figs.get(ours, {"error": "not run (--side)"})
        theirs = figs.get(peer, {"error": "not run (--side / --no-peer)"})
        extra: dict[str, Any] = {"side": SIDES[ours].label, "driver": mine.get("driver", ours.split("-")[1]),
                                 "ndr_mpps": mine.get("ndr_mpps"), "peer_ndr_mpps": theirs.get("ndr_mpps"),
                                 **common, "native": mine.get("native")}
        for k, v in mine.items():
            if k not in ("ndr_mpps", "driver", "native"):
                extra[k] = v
        for k, v in theirs.items():
            if k != "ndr_mpps":
                extra["peer_" + k] = v
        status = "ok" if "error" not in mine else "failed"
        if "error" in mine:
            extra["reason"] = mine["error"]
        results.append(Result("ndr", mine.get("ndr_mpps"), SIDES[peer].label if "error" not in theirs else None,
                              theirs.get("ndr_mpps"), status=status, extra=extra))
    return results
