"""A soak: steady load through classifier + mirror (shallow) with a reconfiguration every second.

``python -m spp.testing.soak --duration 600`` runs, in one process on a private data
plane::

    source (this thread, paced) --nullpmd:0--> ring:0 --cls (classifier)--> ring:1 --mir (mirror)--> ring:3, ring:4
                                                                      \\--> ring:2
    ring:2, ring:3, ring:4 --out (merge)--> nullpmd:1

``cls`` and ``out`` run in an spp-vf manager, ``mir`` in an spp-mirror manager (each
with its own worker threads).  Every ``--period`` seconds one reconfiguration is
applied through the managers' command interface, cycling through: delete the MAC
entry (frames take the default route), add it back, detach ``ring:2`` from the
merge, attach it again.  At the end the managers exit, the rings are drained, and
the run fails unless

* the frame ledger balances (offered + mirror copies = delivered + counted drops +
  drained), see :mod:`spp.testing.conservation`;
* the pool is whole;
* resident memory after the run is within ``--rss-slack`` MiB of resident memory
  after the warm-up (the first ``--warmup`` seconds, when code is compiled).

Prints one JSON object with the figures; exit status 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from spp.control.manager import Manager
from spp.ports.base import PortId
from spp.ports.null import NullPort
from spp.ports.ring import RingPort, drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing.conservation import Ledger, hop_ledgers, port_ledger
from spp.testing.kit import stack
from spp.testing.packets import numbered

MAC_A = "52:54:00:12:34:56"
RINGS = ("ring:0", "ring:1", "ring:2", "ring:3", "ring:4")
RECONFIG: tuple[tuple[str, str], ...] = (
    ("vf", f"classifier_table del mac {MAC_A} ring:1"),
    ("vf", f"classifier_table add mac {MAC_A} ring:1"),
    ("vf", "port del ring:2 rx out"),
    ("vf", "port add ring:2 rx out"),
)


@dataclass
class SoakResult:
    """Figures of one soak run."""

    duration_s: float = 0.0
    offered: int = 0
    delivered: int = 0
    mirror_copies: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    drops_by_place: dict[str, dict[str, int]] = field(default_factory=dict)
    drained: int = 0
    reconfigurations: int = 0
    failed_commands: int = 0
    rss_after_warmup_kib: int = 0
    rss_end_kib: int = 0
    rss_max_kib: int = 0
    pool_in_use_max: int = 0
    pool_in_use_end: int = -1
    n_bufs: int = 0
    balance: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _ok(m: Manager, line: str) -> bool:
    reply = m.execute(line)
    return bool(reply == {"results": [{"result": "success"}]})


def build(dp: Dataplane) -> tuple[Manager, Manager]:
    """The vf and mirror managers of the soak topology (see the module docstring)."""
    vf = Manager(dp, process="vf", client_id=1, cores=[0, 1, 2], pin=False)
    mirror = Manager(dp, process="mirror", client_id=2, cores=[0, 1], pin=False)
    for line in ("component start cls 1 classifier", "port add ring:0 rx cls", "port add ring:1 tx cls",
                 "port add ring:2 tx cls", f"classifier_table add mac {MAC_A} ring:1",
                 "classifier_table add mac default ring:2", "component start out 2 merge",
                 "port add ring:2 rx out", "port add ring:3 rx out", "port add ring:4 rx out",
                 "port add nullpmd:1 tx out"):
        if not _ok(vf, line):
            raise RuntimeError(f"soak setup: {line!r} failed: {vf.execute('status')}")
    for line in ("component start mir 1 mirror", "port add ring:1 rx mir", "port add ring:3 tx mir",
                 "port add ring:4 tx mir"):
        if not _ok(mirror, line):
            raise RuntimeError(f"soak setup: {line!r} failed")
    return vf, mirror


def ledger(dp: Dataplane, vf: Manager, mirror: Manager, name: str = "soak") -> Ledger:
    """The whole path's ledger: the mirror makes one copy of every frame it reads from ring:1."""
    from spp.runtime.stats import RX_PACKETS

    copies = int(dp.stats[dp.port_slot("ring", 1)][RX_PACKETS])
    comps = [*vf.components().values(), *mirror.components().values()]
    return port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=list(RINGS),
                       components=comps, copies={"mir duplicates": copies}, name=name)


def run(duration: float, *, period: float = 1.0, rate: float = 50_000.0, warmup: float = 10.0,
        rss_slack_mib: float = 8.0, n_bufs: int = 8192, log: bool = False) -> SoakResult:
    """Run a soak of ``duration`` seconds offering ``rate`` frames/s; see the module docstring."""
    res = SoakResult(n_bufs=n_bufs)
    frame = numbered(0, dst=MAC_A, size=128)
    with stack(n_bufs=n_bufs, n_rings=8, ring_size=1024, settle=10.0) as dp:
        source = NullPort(dp, PortId("nullpmd", 0), template=frame)
        ring0 = RingPort(dp, PortId("ring", 0))
        vf, mirror = build(dp)
        managers = {"vf": vf, "mirror": mirror}
        bufs = np.empty(32, np.int32)
        start = time.monotonic()
        next_reconf = start + period
        sent_target = 0.0
        step = 0
        rss_warm = 0
        last_log = start
        try:
            while True:
                now = time.monotonic()
                elapsed = now - start
                if elapsed >= duration:
                    break
                if not rss_warm and elapsed >= warmup:
                    rss_warm = rss_kib()
                # paced source: keep offered frames at rate * elapsed
                sent_target = rate * elapsed
                while res.offered < sent_target:
                    k = source.rx_burst(bufs, 32)
                    if k == 0:
                        break  # pool empty: nothing was lost, the source just waits
                    acc = ring0.tx_burst(bufs, k)
                    if acc < k:
                        ring0.count_drop("ring_full", k - acc)
                        dp.free(bufs[acc:k], k - acc)
                    res.offered += k
                if now >= next_reconf:
                    kind, line = RECONFIG[step % len(RECONFIG)]
                    if not _ok(managers[kind], line):
                        res.failed_commands += 1
                    step += 1
                    res.reconfigurations += 1
                    next_reconf += period
                res.pool_in_use_max = max(res.pool_in_use_max, dp.in_use)
                if log and now - last_log >= 30:
                    last_log = now
                    print(f"[soak] t={elapsed:.0f}s offered={res.offered} in_use={dp.in_use} rss={rss_kib()} KiB",
                          file=sys.stderr, flush=True)
                res.rss_max_kib = max(res.rss_max_kib, rss_kib()) if step % 16 == 0 else res.rss_max_kib
                time.sleep(0.0005)
        finally:
            res.duration_s = time.monotonic() - start
            # put the last reconfiguration back so every ring has its reader, then let it drain
            if step % len(RECONFIG) == 3:
                _ok(vf, "port add ring:2 rx out")
            rss_warm = rss_warm or rss_kib()
            for m in (vf, mirror):
                m.execute("exit")
            source.close()
            ring0.close()
        final = ledger(dp, vf, mirror)
        res.delivered = sum(final.delivered.values())
        res.mirror_copies = sum(final.created.values())
        res.drops = final.drops_by_reason()
        res.drops_by_place = final.dropped
        res.balance = final.balance
        if final.balance:
            res.problems.append(final.report())
        for hop in hop_ledgers(dp, list(RINGS)):
            if hop.balance:
                res.problems.append(hop.report())
        res.drained = sum(drain_ring(dp, PortId.parse(r).index) for r in RINGS)
        res.rss_after_warmup_kib = rss_warm
        res.rss_end_kib = rss_kib()
        res.pool_in_use_end = dp.in_use
        if res.pool_in_use_end:
            res.problems.append(f"pool not whole: {res.pool_in_use_end} of {n_bufs} buffers in use")
        if res.failed_commands:
            res.problems.append(f"{res.failed_commands} reconfiguration commands failed")
        if res.rss_end_kib - rss_warm > rss_slack_mib * 1024:
            res.problems.append(f"resident memory grew from {rss_warm} KiB to {res.rss_end_kib} KiB "
                                f"(more than {rss_slack_mib} MiB)")
    return res


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spp.testing.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between reconfigurations (default 1)")
    parser.add_argument("--rate", type=float, default=50_000.0, help="offered frames per second (default 50000)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the RSS baseline (default 10)")
    parser.add_argument("--rss-slack", type=float, default=8.0, help="allowed RSS growth in MiB (default 8)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.period <= 0 or args.rate <= 0:
        parser.error("--duration, --period and --rate must be positive numbers")
    res = run(args.duration, period=args.period, rate=args.rate, warmup=args.warmup, rss_slack_mib=args.rss_slack,
              log=True)
    print(json.dumps({**asdict(res), "ok": res.ok}, indent=2))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
