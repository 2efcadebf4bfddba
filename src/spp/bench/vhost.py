"""``vhost``: spp as a vhost-user backend beside testpmd's own (``net_vhost``), same guest.

The guest is a ``dpdk-testpmd`` with one ``net_virtio_user`` port (its forwarding lcore
on the core spp does not use).  Two directions, one result each:

* ``to-guest``: spp ``nullpmd:0 → forward → vhost:0`` into the guest in ``rxonly``;
  the peer is a second testpmd, ``--forward-mode=io`` over ``net_null0`` and
  ``net_vhost0,iface=PATH``, into the same guest command line.  Figure: frames the
  guest's receive ring took per second (spp: ``vhost:0``'s tx counter; testpmd: its
  forward TX-packets).
* ``from-guest``: the guest in ``txonly`` (64-byte frames) → ``vhost:0 → forward →
  nullpmd:1``; the peer forwards ``net_vhost0 → net_null0`` (``no-rx=1``, so it does
  not also transmit towards the guest).  Figure: frames taken from the guest per second.

spp's forwarder is a Worker pinned to ``--core`` running the compiled loop (``native``
in the result says whether it did); testpmd's forwarding lcore is on the same core.
Each side gets a fresh guest started with the same command line (a virtio-user client
connects to one backend at a time); the sides alternate ``--rounds`` times.  Figures
are the best window; books are checked for spp.
"""

from __future__ import annotations

import contextlib
import os
import time

from spp.bench.common import BenchError, Cleanup, Options, Result, Testpmd, eal_args, median, thread_cpu_seconds
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS
from spp.testing import unique_prefix, wait_for

PEER = "dpdk-testpmd io (net_vhost + net_null)"
DIRECTIONS = ("to-guest", "from-guest")


def _other_core(core: int) -> int:
    cores = sorted(os.sched_getaffinity(0))
    return next((c for c in cores if c != core), core)


def _sock(tag: str) -> str:
    path = f"/tmp/spbv{tag}{os.getpid() % 100000}.sock"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return path


def _guest(path: str, direction: str, opts: Options, cleanup: Cleanup, *, server: bool = False) -> Testpmd:
    """A testpmd guest on ``path`` (rxonly for ``to-guest``, txonly for ``from-guest``), started."""
    mode = "rxonly" if direction == "to-guest" else "txonly"
    vdev = f"net_virtio_user0,path={path}" + (",server=1" if server else "")
    tp = Testpmd([*eal_args(unique_prefix("vgst"), _other_core(opts.core)), "--vdev", vdev],
                 [f"--forward-mode={mode}", "--nb-cores=1", f"--txpkts={opts.size}", "--total-num-mbufs=8192"],
                 cleanup, "testpmd guest")
    cleanup.push("guest quit", tp.quit)
    tp.send("start")
    return tp


def _spp_side(direction: str, opts: Options, window: float, rounds: int,
              cleanup: Cleanup) -> tuple[list[float], list[float], dict[str, object], str]:
    """spp forwarding to or from the guest for ``rounds`` windows; (Mpps, Mpps per CPU s, books, guest command).

    The books say whether the worker ran the compiled loop (``native``).
    """
    import spp.graph.worker as wm
    from spp.components.forward import Forward
    from spp.ports.base import PortTable

    inner = Cleanup()
    try:
        dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
        inner.push("data plane " + dp.prefix, dp.close)
        ports = PortTable(dp)
        inner.push("ports", ports.close_all)
        path = _sock("s")
        vport = ports.get("vhost:0", path=path)
        if direction == "to-guest":
            src, dst = ports.get("nullpmd:0", size=opts.size), vport
            counter = vport
        else:
            src, dst = vport, ports.get("nullpmd:1")
            counter = dst
        guest = _guest(path, direction, opts, inner)
        wait_for(lambda: bool(vport.running(0) and vport.running(1)), timeout=60,  # type: ignore[attr-defined]
                 message="the guest's virtqueues to run")
        w = wm.Worker(dp, opts.core)
        w.start()
        inner.push("worker", w.stop)
        plan = (wm.ComponentPlan(Forward(dp, "fwd", opts.core), (wm.Attachment(src),), (wm.Attachment(dst),)),)
        w.publish(wm.WorkerPlan(plan, 1), timeout=300)
        tx = counter.stats
        wait_for(lambda: int(tx[TX_PACKETS]) > 0, timeout=300, message="first frame through spp")
        time.sleep(min(window, 0.5))  # warm-up: caches, the guest's rings settle
        tid = w._thread.native_id
        assert tid is not None
        native = w._native is not None
        wall: list[float] = []
        per_cpu: list[float] = []
        for _ in range(rounds):
            c0, t0, u0 = int(tx[TX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
            time.sleep(window)  # the measurement window, not a wait for a result
            c1, t1, u1 = int(tx[TX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
            wall.append((c1 - c0) / (t1 - t0) / 1e6)
            per_cpu.append((c1 - c0) / max(u1 - u0, 0.01) / 1e6)
        guest.send("stop")
        w.publish(wm.WorkerPlan((), 2), timeout=60)
        w.stop()
        if w.error is not None:
            raise BenchError(f"spp worker failed: {w.error!r}")
        rx = int(src.stats[RX_PACKETS])
        sent = int(dst.stats[TX_PACKETS])
        drops = {str(p.id): p.stats_dict()["drops"] for p in (src, dst) if int(p.stats[DROP_BASE:].sum())}
        n_drops = int(src.stats[DROP_BASE:].sum() + dst.stats[DROP_BASE:].sum())
        ports.close_all()
        wait_for(lambda: dp.free_count == dp.n_bufs, timeout=5, message="pool whole")
        books: dict[str, object] = {"exact": rx == sent + n_drops and dp.double_frees == 0, "spp_drops": drops,
                                    "native": native}
        return wall, per_cpu, books, guest.command
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def _peer_side(direction: str, opts: Options, window: float, rounds: int,
               cleanup: Cleanup) -> tuple[list[float], list[float], str]:
    """testpmd's vhost backend forwarding to or from the same guest; (Mpps, Mpps per CPU s, command)."""
    inner = Cleanup()
    try:
        path = _sock("p")
        inner.push("peer socket", lambda: _sock("p"))
        null = f"net_null0,size={opts.size}" + (",no-rx=1" if direction == "from-guest" else "")
        backend = Testpmd([*eal_args(unique_prefix("vbck"), opts.core), "--vdev", null,
                           "--vdev", f"net_vhost0,iface={path},queues=1"],
                          ["--forward-mode=io", "--nb-cores=1", "--total-num-mbufs=16384"], inner,
                          "testpmd vhost backend")
        inner.push("backend quit", backend.quit)
        _guest(path, direction, opts, inner)
        deadline = time.monotonic() + 60
        while True:  # warm-up, and wait for the guest's rings: until frames move
            _, moved, _ = backend.forward_for(min(window, 0.5))
            if moved:
                break
            if time.monotonic() > deadline:
                raise BenchError("testpmd's vhost backend moved no frame within 60 s of the guest starting")
        wall: list[float] = []
        per_cpu: list[float] = []
        for _ in range(rounds):
            _, moved, elapsed = backend.forward_for(window)
            wall.append(moved / elapsed / 1e6)
            per_cpu.append(moved / max(backend.cpu, 0.01) / 1e6)
        return wall, per_cpu, backend.command
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    if not os.access("/usr/bin/dpdk-testpmd", os.X_OK):
        return [Result("vhost", None, status="not-runnable",
                       extra={"reason": "the guest is dpdk-testpmd (net_virtio_user): install dpdk "
                                        "(Debian: apt-get install dpdk)"})]
    rounds = max(1, opts.rounds)
    window = opts.seconds / rounds
    results = []
    for direction in DIRECTIONS:
        ours: list[float] = []
        ours_cpu: list[float] = []
        theirs: list[float] = []
        theirs_cpu: list[float] = []
        exact = True
        native = True
        spp_drops: dict[str, object] = {}
        peer_error = None
        peer_command = guest_command = None
        for _ in range(rounds):  # alternate whole sides so both see the same machine
            w, c, books, guest_command = _spp_side(direction, opts, window, 1, cleanup)
            ours += w
            ours_cpu += c
            exact = exact and bool(books["exact"])
            native = native and bool(books["native"])
            spp_drops = dict(books["spp_drops"])  # type: ignore[call-overload]
            if opts.peer and peer_error is None:
                try:
                    w, c, peer_command = _peer_side(direction, opts, window, 1, cleanup)
                except BenchError as e:  # spp's figures still count; say why there is no peer
                    peer_error = str(e)
                    continue
                theirs += w
                theirs_cpu += c
        extra: dict[str, object] = {
            "direction": direction, "size": opts.size, "rounds": rounds, "exact": exact, "native": native,
            "mpps_median": round(median(ours), 4), "mpps_per_cpu": round(max(ours_cpu), 4),
            "spp_windows": [round(x, 4) for x in ours], "spp_drops_last_round": spp_drops,
            "guest_command": guest_command,
        }
        if peer_error:
            extra["peer_error"] = peer_error
        if theirs:
            extra["peer_mpps_median"] = round(median(theirs), 4)
            extra["peer_mpps_per_cpu"] = round(max(theirs_cpu), 4)
            extra["ratio_per_cpu"] = round(max(ours_cpu) / max(*theirs_cpu, 1e-9), 3)
            extra["peer_windows"] = [round(x, 4) for x in theirs]
            extra["peer_command"] = peer_command
        results.append(Result("vhost", max(ours), PEER if theirs else None, max(theirs) if theirs else None,
                              extra=extra))
    return results
