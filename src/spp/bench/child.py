"""A worker process for the multi-process scenarios (``python -m spp.bench.child``).

It attaches the data plane ``--prefix``, runs one forward component on ``--core``
for its ``--role`` (``forward``: nullpmd:0 → nullpmd:1, ``producer``: nullpmd:0 →
ring:0, ``consumer``: ring:0 → nullpmd:1), prints ``ready TID native=0|1`` (the worker thread's id, whether it
runs the compiled loop), and on SIGINT/SIGTERM or a
``stop`` line on stdin sends what it holds, prints ``stopped <rss_kib>`` and exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

ROLES = {
    "forward": ("nullpmd:0", "nullpmd:1"),
    "producer": ("nullpmd:0", "ring:0"),
    "consumer": ("ring:0", "nullpmd:1"),
}


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS``; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spp.bench.child", description=__doc__)
    ap.add_argument("--prefix", required=True, help="data plane file prefix to attach")
    ap.add_argument("--role", required=True, choices=sorted(ROLES))
    ap.add_argument("--core", type=int, default=1)
    ap.add_argument("--burst", type=int, default=32)
    args = ap.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    import spp.graph.worker as worker_mod
    from spp.components.forward import Forward
    from spp.ports.base import PortTable
    from spp.runtime.dataplane import Dataplane

    worker_mod.BURST = args.burst  # this process runs only this worker
    dp = Dataplane.attach(args.prefix)
    ports = PortTable(dp)
    src, dst = (ports.get(p) for p in ROLES[args.role])
    w = worker_mod.Worker(dp, args.core)
    w.start()
    comp = Forward(dp, args.role, args.core)
    w.publish(worker_mod.WorkerPlan((worker_mod.ComponentPlan(comp, (worker_mod.Attachment(src),),
                                                              (worker_mod.Attachment(dst),)),), 1), timeout=300)
    from spp.bench.common import runs_native

    print(f"ready {w._thread.native_id} native={int(runs_native(w))}", flush=True)

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    while not stop.is_set() and w.alive:
        stop.wait(0.05)
    rss = rss_kib()
    w.publish(worker_mod.WorkerPlan((), 2), timeout=30)
    w.stop()
    ports.close_all()
    dp.close()
    if w.error is not None:
        print(f"error {w.error!r}", flush=True)
        return 1
    print(f"stopped {rss}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
