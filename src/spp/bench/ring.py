"""``ring``: a ring between two processes.

The bench process creates a data plane (it is the primary) and starts two worker
processes (:mod:`spp.bench.child`) that attach it by prefix: a producer
(nullpmd:0 → ring:0) on one core and a consumer (ring:0 → nullpmd:1) on the other.
The figure is frames delivered to nullpmd:1 per second; ``mpps_per_cpu`` divides
them by the CPU time the consumer's worker thread got instead.  The producer is as fast as
the consumer or faster, so the ring fills and the producer's refused frames are
counted ``ring_full`` on ring:0 (reported as ``ring_full``, a fraction of offered).
No peer: testpmd has no two-process ring benchmark of its own.
"""

from __future__ import annotations

import os
import sys
import time

from spp.bench.common import (
    BenchError,
    Cleanup,
    Options,
    OutputReader,
    Result,
    median,
    python_child,
    thread_cpu_seconds,
)
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import DROP_BASE, REASON, RX_PACKETS, TX_PACKETS
from spp.testing import unique_prefix, wait_for


def _cores(opts: Options) -> tuple[int, int]:
    cores = sorted(os.sched_getaffinity(0))
    other = next((c for c in cores if c != opts.core), opts.core)
    return other, opts.core  # producer, consumer


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
    cleanup.push("data plane " + dp.prefix, dp.close)
    prod_core, cons_core = _cores(opts)
    src = dp.stats[dp.port_slot("nullpmd", 0)]
    ring = dp.stats[dp.port_slot("ring", 0)]
    dst = dp.stats[dp.port_slot("nullpmd", 1)]
    burst = str(opts.bursts[0])
    children = {}
    tids = {}
    natives = []
    for role, core in (("consumer", cons_core), ("producer", prod_core)):
        proc = python_child("spp.bench.child", ["--prefix", dp.prefix, "--role", role, "--core", str(core),
                                                "--burst", burst], cleanup, f"{role} process")
        out = OutputReader(proc)
        m = out.wait_for(r"(?:^|\n)ready (\d+) native=(\d)", timeout=300)
        tids[role] = int(m.group(1))
        natives.append(m.group(2) == "1")
        children[role] = (proc, out)
    cons_pid = children["consumer"][0].pid

    def cons_cpu() -> float:
        return thread_cpu_seconds(cons_pid, tids["consumer"])

    def cons_switches() -> tuple[int, int]:
        """(voluntary, involuntary) context switches of the consumer's worker thread."""
        vals = {}
        with open(f"/proc/{cons_pid}/task/{tids['consumer']}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    key, _, v = line.partition(":")
                    vals[key] = int(v)
        return vals.get("voluntary_ctxt_switches", 0), vals.get("nonvoluntary_ctxt_switches", 0)

    wait_for(lambda: int(dst[TX_PACKETS]) > 0, timeout=120, message="first frame through the ring")
    windows: list[float] = []
    per_cpu: list[float] = []
    offered: list[float] = []
    window = opts.seconds / max(opts.rounds, 1)
    sw0 = cons_switches()
    for _ in range(max(opts.rounds, 1)):
        a0, d0, t0, u0 = int(src[RX_PACKETS]), int(dst[TX_PACKETS]), time.perf_counter(), cons_cpu()
        time.sleep(window)  # the measurement window, not a wait for a result
        a1, d1, t1, u1 = int(src[RX_PACKETS]), int(dst[TX_PACKETS]), time.perf_counter(), cons_cpu()
        windows.append((d1 - d0) / (t1 - t0) / 1e6)
        per_cpu.append((d1 - d0) / max(u1 - u0, 0.01) / 1e6)
        offered.append((a1 - a0) / (t1 - t0) / 1e6)
    sw1 = cons_switches()
    rss = {}
    for role in ("producer", "consumer"):  # producer first, so the consumer can empty the ring
        proc, out = children[role]
        assert proc.stdin is not None
        proc.stdin.write(b"stop\n")
        proc.stdin.flush()
        m = out.wait_for(r"stopped (\d+)", timeout=60)
        rss[role] = int(m.group(1))
        proc.wait(30)
        if role == "producer":
            from spp.runtime import ringcore

            wait_for(lambda: ringcore.ring_count(dp.ring_ctrl[0]) == 0, timeout=30, message="ring drained")
    rx, tx = int(src[RX_PACKETS]), int(dst[TX_PACKETS])
    drops = int(src[DROP_BASE:].sum() + ring[DROP_BASE:].sum() + dst[DROP_BASE:].sum())
    full = int(ring[REASON["ring_full"]])
    try:
        wait_for(lambda: dp.free_count == dp.n_bufs, timeout=5, message="pool whole")
    except TimeoutError:
        raise BenchError(f"ring scenario leaked buffers: {dp.in_use} still in use") from None
    extra: dict[str, object] = {
        "burst": int(burst), "rounds": len(windows), "mpps_median": round(median(windows), 3),
        "mpps_per_cpu": round(max(per_cpu), 3),
        "consumer_sleeps": sw1[0] - sw0[0], "consumer_preempted": sw1[1] - sw0[1],
        "offered_mpps": round(max(offered), 3),
        "ring_full": round(full / rx, 4) if rx else 0.0,
        "exact": rx == tx + drops and int(ring[RX_PACKETS]) == int(ring[TX_PACKETS]) and dp.double_frees == 0,
        "native": all(natives), "rss_kib": rss, "cores": {"producer": prod_core, "consumer": cons_core},
        "command": f"{sys.executable} -m spp.bench.child --prefix P --role producer|consumer --core C",
    }
    return [Result("ring", max(windows), extra=extra)]
