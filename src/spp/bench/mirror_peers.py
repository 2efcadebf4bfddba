"""``mirror-peers``: forward phy:0 → phy:1 with a port mirror of phy:0 to phy:2, beside Linux tc and OVS.

Layout (needs root)::

    [ns gen] gA ─veth─ fA  (host)  fB ─veth─ gB [ns sink]    forwarded
                                   fC ─veth─ gC [ns msink]   mirrored

The generator of ``phy`` (:mod:`spp.bench.gen`, paced, on the core the forwarder does
not use) offers ``--rate`` Mpps of ``--size``-byte frames into gA; the sinks are the
kernel receive counters of gB and gC.  Each side in turn, on the same veths and load:

* **spp**: a Worker pinned to ``--core`` forwards ``phy:0`` (fA) → ``phy:1`` (fB); a
  local port mirror (:class:`~spp.mirror.agent.MirrorAgent`, rx, shallow) copies
  what ``phy:0`` receives to ``phy:2`` (fC).  Python worker path (phy has no compiled
  driver).
* **tc**: an ingress qdisc on fA with one u32 match-all filter and two actions,
  ``mirred egress mirror dev fC`` then ``mirred egress redirect dev fB`` (in the
  kernel, in the softirq of whichever CPU sent the frame).
* **ovs**: ``ovs-vswitchd`` (userspace datapath, ``datapath_type=netdev``, pinned to
  ``--core``) with a private ``ovsdb-server``, a bridge with fA, fB, fC, one OpenFlow
  rule ``in_port=fA actions=output:fB`` and a mirror selecting every frame received on
  fA (``select_src_port``) with ``output_port`` fC.  Only if Open vSwitch is installed.

Per side: forwarded and mirrored Mpps (best window) and loss = 1 − delivered / sent
(worst window), forwarded and mirrored separately.  One result line per peer; the spp
figures are the same on both.  Everything created is removed at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from spp.bench.common import BenchError, Cleanup, Options, OutputReader, Result, runs_native, spawn
from spp.bench.phy import _Generator, _rx_packets
from spp.testing import unique_prefix, wait_for

TC_PEER = "linux tc (u32, mirred mirror + redirect)"
OVS_PEER = "open vswitch (netdev datapath, mirror)"


class _Net:
    """Three namespaces, three veth pairs (registered for removal as soon as they exist)."""

    def __init__(self, cleanup: Cleanup) -> None:
        from spp.testing import netns as nt

        tag = f"{os.getpid() % 10000}"
        self.ns_gen, self.ns_sink, self.ns_msink = f"spmg{tag}", f"spms{tag}", f"spmm{tag}"
        self.fa, self.ga = f"spmfa{tag}", f"spmga{tag}"
        self.fb, self.gb = f"spmfb{tag}", f"spmgb{tag}"
        self.fc, self.gc = f"spmfc{tag}", f"spmgc{tag}"
        for ns in (self.ns_gen, self.ns_sink, self.ns_msink):
            cm = nt.netns(ns)
            cm.__enter__()
            cleanup.push("namespace " + ns, functools.partial(cm.__exit__, None, None, None))
        for a, b, ns in ((self.fa, self.ga, self.ns_gen), (self.fb, self.gb, self.ns_sink),
                         (self.fc, self.gc, self.ns_msink)):
            cleanup.push("veth " + a, functools.partial(_delete, a))
            nt.create_veth(a, b, ns)


def _delete(ifname: str) -> None:
    from spp.testing import netns as nt

    with contextlib.suppress(Exception):
        nt.delete_link(ifname)


def _settled(read: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """Poll both sink counters until they stop moving (frames in flight arrived); return them."""
    last: list[tuple[int, int] | None] = [None]

    def still() -> bool:
        now = read()
        done = now == last[0]
        last[0] = now
        return done

    wait_for(still, timeout=10, interval=0.1, message="the sinks' counters to settle")
    assert last[0] is not None
    return last[0]


def _window(net: _Net, opts: Options, seconds: float, gen_core: int,
            cleanup: Cleanup) -> tuple[float, float, float, float]:
    """One generator run; return (forwarded Mpps, mirrored Mpps, forward loss, mirror loss)."""
    gen = _Generator(net, opts, seconds, gen_core, cleanup)  # type: ignore[arg-type]

    def read() -> tuple[int, int]:
        return _rx_packets(net.gb, net.ns_sink), _rx_packets(net.gc, net.ns_msink)

    b0, c0 = read()
    sent, elapsed = gen.run()
    b1, c1 = _settled(read)
    fwd, mir = b1 - b0, c1 - c0
    fwd_loss = max(0.0, 1 - fwd / sent) if sent else 0.0
    mir_loss = max(0.0, 1 - mir / sent) if sent else 0.0
    return fwd / elapsed / 1e6, mir / elapsed / 1e6, fwd_loss, mir_loss


def _measure(net: _Net, opts: Options, window: float, rounds: int, gen_core: int,
             cleanup: Cleanup) -> list[tuple[float, float, float, float]]:
    """Warm up (short runs until frames come through both ways), then ``rounds`` windows."""
    deadline = time.monotonic() + 120
    while True:
        fwd, mir, _, _ = _window(net, opts, 0.3, gen_core, cleanup)
        if fwd > 0 and mir > 0:
            break
        if time.monotonic() > deadline:
            raise BenchError("no frame was both forwarded and mirrored within 120 s of warm-up")
    return [_window(net, opts, window, gen_core, cleanup) for _ in range(rounds)]


def _spp_side(net: _Net, opts: Options, window: float, rounds: int, gen_core: int,
              cleanup: Cleanup) -> tuple[list[tuple[float, float, float, float]], dict[str, object]]:
    import spp.graph.worker as wm
    from spp.components.forward import Forward
    from spp.mirror.agent import MirrorAgent
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
        c = ports.get("phy:2", iface=net.fc)
        agent = MirrorAgent(dp, ports)
        inner.push("mirror agent", agent.close)
        agent.register("m0", a, c, "rx")
        w = wm.Worker(dp, opts.core)
        w.start()
        inner.push("worker", w.stop)
        w.publish(wm.WorkerPlan((wm.ComponentPlan(Forward(dp, "fwd", opts.core), (wm.Attachment(a),),
                                                  (wm.Attachment(b),)),), 1), timeout=300)
        out = _measure(net, opts, window, rounds, gen_core, inner)
        native = runs_native(w)
        w.publish(wm.WorkerPlan((), 2), timeout=60)
        w.stop()
        if w.error is not None:
            raise BenchError(f"spp worker failed: {w.error!r}")
        mstats = agent.stats("m0")
        agent.close()
        ports.close_all()  # closing reads the kernel's last rx-ring drops and drains the rings
        rx, tx = int(a.stats[RX_PACKETS]), int(b.stats[TX_PACKETS])
        drops = {str(p.id): p.stats_dict()["drops"] for p in (a, b, c) if int(p.stats[DROP_BASE:].sum())}
        before_rx = sum(int(a.stats[REASON[r]]) for r in ("ring_full", "stopped", "link_down"))
        exact = rx == tx + int(a.stats[DROP_BASE:].sum() + b.stats[DROP_BASE:].sum()) - before_rx
        wait_for(lambda: dp.free_count == dp.n_bufs, timeout=5, message="pool whole")
        return out, {"exact": exact, "native": native, "spp_drops": drops, "mirror_stats": mstats,
                     "mirror_tx": int(c.stats[TX_PACKETS])}
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def _tc(*args: str) -> None:
    tc = shutil.which("tc")
    if tc is None:
        raise BenchError("tc (iproute2) is not installed")
    r = subprocess.run([tc, *args], capture_output=True, text=True, check=False)
    if r.returncode:
        raise BenchError(f"tc {' '.join(args)} failed: {r.stderr.strip()}")


def _tc_side(net: _Net, opts: Options, window: float, rounds: int, gen_core: int,
             cleanup: Cleanup) -> tuple[list[tuple[float, float, float, float]], str]:
    inner = Cleanup()
    try:
        _tc("qdisc", "add", "dev", net.fa, "ingress")
        inner.push("tc ingress qdisc", lambda: _tc("qdisc", "del", "dev", net.fa, "ingress"))
        rule = ["filter", "add", "dev", net.fa, "parent", "ffff:", "protocol", "all", "u32", "match", "u32", "0",
                "0", "action", "mirred", "egress", "mirror", "dev", net.fc,
                "action", "mirred", "egress", "redirect", "dev", net.fb]
        _tc(*rule)
        return _measure(net, opts, window, rounds, gen_core, inner), "tc " + " ".join(rule)
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def ovs_missing() -> str | None:
    """Why Open vSwitch cannot run here, or None."""
    for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install Open vSwitch (Debian: apt-get install openvswitch-switch)"
    if not os.path.exists("/usr/share/openvswitch/vswitch.ovsschema"):
        return "/usr/share/openvswitch/vswitch.ovsschema not found (openvswitch-common incomplete)"
    return None


def _ovs_side(net: _Net, opts: Options, window: float, rounds: int, gen_core: int,
              cleanup: Cleanup) -> tuple[list[tuple[float, float, float, float]], str]:
    with ovs_bridge(net, opts.core, cleanup) as what:
        return _measure(net, opts, window, rounds, gen_core, cleanup), what


@contextlib.contextmanager
def ovs_bridge(net: Any, core: int, cleanup: Cleanup, mirror: bool = True) -> Iterator[str]:
    """An ``ovs-vswitchd`` (netdev datapath, pinned to ``core``) forwarding ``net.fa`` → ``net.fb``.

    With ``mirror``, every frame received on ``net.fa`` is mirrored to ``net.fc``.  Yields
    what was set up; everything is removed on exit (errors go to ``cleanup.errors``).
    """
    inner = Cleanup()
    try:
        d = tempfile.mkdtemp(prefix="spp-ovs-")
        inner.push("ovs directory", functools.partial(shutil.rmtree, d, ignore_errors=True))
        env = {**os.environ, "OVS_RUNDIR": d, "OVS_LOGDIR": d, "OVS_DBDIR": d}
        db = f"unix:{d}/db.sock"

        def run(*argv: str) -> str:
            r = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False, timeout=30)
            if r.returncode:
                raise BenchError(f"{' '.join(argv)} failed: {r.stderr.strip()}")
            return r.stdout

        run("ovsdb-tool", "create", f"{d}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
        from spp.testing import netns as nt

        br = f"spmbr{os.getpid() % 10000}"
        if nt.link_exists("ovs-netdev"):
            raise BenchError("interface ovs-netdev exists: another Open vSwitch userspace datapath runs on this "
                             "host (or a dead one left it; delete it with: ip link del ovs-netdev)")
        inner.push("ovs bridge tap", functools.partial(_delete, br))  # these two run after ovs-vswitchd ends
        inner.push("ovs datapath tap", functools.partial(_delete, "ovs-netdev"))
        ovs_env = ["env", f"OVS_RUNDIR={d}", f"OVS_LOGDIR={d}", f"OVS_DBDIR={d}"]
        # OutputReader: drains each daemon's output pipe and closes it when the daemon ends
        OutputReader(spawn([*ovs_env, "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                            f"--pidfile={d}/db.pid", f"--unixctl={d}/db.ctl"], inner, "ovsdb-server"))

        def db_up() -> bool:
            r = subprocess.run(["ovs-vsctl", f"--db={db}", "--no-wait", "--timeout=5", "init"], capture_output=True,
                               env=env, check=False, timeout=30)
            return r.returncode == 0

        wait_for(db_up, timeout=20, interval=0.2, message="ovsdb-server to answer")
        OutputReader(spawn([*ovs_env, "taskset", "-c", str(core), "ovs-vswitchd", db, f"--pidfile={d}/vs.pid",
                            f"--log-file={d}/vs.log", f"--unixctl={d}/vs.ctl"], inner, "ovs-vswitchd"))
        vsctl = ("ovs-vsctl", f"--db={db}", "--timeout=20")
        run(*vsctl, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
        inner.push("ovs bridge", lambda: run(*vsctl, "--if-exists", "del-br", br))
        for port in (net.fa, net.fb, *((net.fc,) if mirror else ())):
            run(*vsctl, "add-port", br, port)
        if mirror:
            run(*vsctl, "--", "--id=@a", "get", "port", net.fa, "--", "--id=@c", "get", "port", net.fc,
                "--", "--id=@m", "create", "mirror", "name=m0", "select_src_port=@a", "output_port=@c",
                "--", "set", "bridge", br, "mirrors=@m")
        wait_for(lambda: os.path.exists(f"{d}/{br}.mgmt"), timeout=20, message="the bridge's OpenFlow socket")
        run("ovs-ofctl", "del-flows", f"unix:{d}/{br}.mgmt")
        run("ovs-ofctl", "add-flow", f"unix:{d}/{br}.mgmt", f"in_port={net.fa},actions=output:{net.fb}")
        version = run("ovs-vswitchd", "--version").splitlines()[0]
        yield f"{version}: bridge {br} datapath_type=netdev, flow in_port=fA,actions=output:fB" + (
            ", mirror select_src_port=fA output_port=fC" if mirror else "")
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


Windows = list[tuple[float, float, float, float]]


def _figures(ws: Windows, prefix: str) -> dict[str, object]:
    return {f"{prefix}mpps": round(max(w[0] for w in ws), 4), f"{prefix}mirrored_mpps": round(max(w[1] for w in ws), 4),
            f"{prefix}loss": round(max(w[2] for w in ws), 5), f"{prefix}mirror_loss": round(max(w[3] for w in ws), 5)}


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    if os.geteuid() != 0:
        return [Result("mirror-peers", None, status="not-runnable",
                       extra={"reason": "needs root (network namespaces, veth pairs, AF_PACKET, tc): run as root"})]
    cores = sorted(os.sched_getaffinity(0))
    gen_core = next((c for c in cores if c != opts.core), opts.core)
    net = _Net(cleanup)
    return [r for rate in opts.rates for r in _run_rate(net, dataclasses.replace(opts, rate=rate), gen_core, cleanup)]


def _run_rate(net: _Net, opts: Options, gen_core: int, cleanup: Cleanup) -> list[Result]:
    """spp, tc and OVS in turn at offered load ``opts.rate``: one result per peer."""
    rounds = max(1, min(opts.rounds, 3))
    window = opts.seconds / rounds
    ours: Windows = []
    peers: dict[str, Windows] = {"tc": [], "ovs": []}
    errors: dict[str, str] = {}
    commands: dict[str, str] = {}
    books: dict[str, object] = {"exact": True}
    if not opts.peer:
        errors = {"tc": "--no-peer", "ovs": "--no-peer"}
    elif (why := ovs_missing()) is not None:
        errors["ovs"] = why
    sides: dict[str, Callable[..., tuple[Windows, str]]] = {"tc": _tc_side, "ovs": _ovs_side}
    for _ in range(rounds):  # alternate whole sides, one window each, so all see the same machine
        w, b = _spp_side(net, opts, window, 1, gen_core, cleanup)
        ours += w
        books = {**b, "exact": bool(books["exact"]) and bool(b["exact"]),
                 "native": bool(books.get("native", True)) and bool(b["native"])}
        for name, side in sides.items():
            if name in errors:
                continue
            try:
                pw, commands[name] = side(net, opts, window, 1, gen_core, cleanup)
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                errors[name] = str(e)
                continue
            peers[name] += pw
    base: dict[str, object] = {"offered_mpps": opts.rate, "size": opts.size, "rounds": rounds, **_figures(ours, "")}
    base.pop("mpps")
    base.update(books)
    results = []
    for name, label in (("tc", TC_PEER), ("ovs", OVS_PEER)):
        extra = {"versus": name, **base}
        pw = peers[name]
        if pw and name not in errors:
            extra.update({k: v for k, v in _figures(pw, "peer_").items() if k != "peer_mpps"})
            extra["peer_command"] = commands[name]
        else:
            extra["peer_error"] = errors.get(name, "no window ran")
        ok = bool(pw) and name not in errors
        results.append(Result("mirror-peers", max(w[0] for w in ours), label if ok else None,
                              max(w[0] for w in pw) if ok else None, extra=extra))
    return results
