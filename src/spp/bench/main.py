"""``spp bench [SCENARIO ...] [--json] [--seconds S]``: run benchmark scenarios.

Prints a table, or with ``--json`` one JSON object per result line::

    {"scenario": "forward", "mpps": 41.2, "peer": "dpdk-testpmd io (net_null x2)",
     "peer_mpps": 40.1, "ratio": 1.03, "unit": "Mpps", "status": "ok", "burst": 32, ...}

``peer``/``peer_mpps``/``ratio`` are null where no reference ran.  A scenario that
cannot run here (missing driver, not root, ...) yields one line with
``"status": "not-runnable"`` and a ``"reason"``; the exit status is then 2.
Everything a scenario creates is removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from spp.bench.common import BenchError, Cleanup, Options, Result

Scenario = Callable[[Options, Cleanup], list[Result]]

DESCRIPTIONS: dict[str, str] = {
    "forward": "nullpmd → forward → nullpmd on one core vs dpdk-testpmd io on 2 net_null (bursts 32 and 64)",
    "ring": "null → ring:0 in one process, ring:0 → null in another (one core each)",
    "phy": "veth → spp phy:0 → phy:1 → veth under an offered load vs dpdk-testpmd on net_af_packet (root)",
    "mirror-copy": "mirror component, shallow ÷ deep copies at 64 and 1500 bytes (one core)",
    "vhost": "nullpmd → forward → vhost:0 → testpmd virtio-user, and back, vs testpmd's net_vhost backend",
    "mirror-peers": "phy:0 → phy:1 with a port mirror to phy:2 vs Linux tc mirred and OVS netdev (root)",
    "classifier": "nullpmd → classifier (256 MACs) → 4 × nullpmd on one core vs dpdk-testpmd io on 2 net_null",
    "vf-chain": "SPEC §3 classify-ICMP chain (classifier → 2 forwards over rings → merge), null ends, 2 cores",
    "reconfig": "frames lost during 1,000 classifier_table add/del (spp-vf Manager) at a steady load",
    "mirror-overhead": "nullpmd → forward → nullpmd with vs without a shallow port mirror to a nullpmd (same run)",
    "mirror-component": "spp-mirror's mirror component ring:0 → ring:1 + ring:2 (shallow) vs forward on the same rings",
    "vlan": "forward with add_vlantag / del_vlantag on its tx port vs the same forward without (same run)",
    "ndr": "highest zero-loss rate (RFC 2544 NDR, trafgen) through spp phy vs testpmd, tc, OVS on veths (root)",
    "memory": "worker RSS; start-up to first forwarded frame and spp-vf registration, cold vs warm compile cache",
}
DEFAULT = ("forward", "ring", "memory")


def _scenario(name: str) -> Scenario:
    if name == "forward":
        from spp.bench import forward

        return forward.run
    if name == "ring":
        from spp.bench import ring

        return ring.run
    if name == "phy":
        from spp.bench import phy

        return phy.run
    if name == "mirror-copy":
        from spp.bench import mirror_copy

        return mirror_copy.run
    if name == "vhost":
        from spp.bench import vhost

        return vhost.run
    if name == "mirror-peers":
        from spp.bench import mirror_peers

        return mirror_peers.run
    if name == "classifier":
        from spp.bench import classifier

        return classifier.run
    if name == "vf-chain":
        from spp.bench import vfchain

        return vfchain.run
    if name == "reconfig":
        from spp.bench import reconfig

        return reconfig.run
    if name == "mirror-overhead":
        from spp.bench import mirror_overhead

        return mirror_overhead.run
    if name == "memory":
        from spp.bench import memory

        return memory.run
    if name == "mirror-component":
        from spp.bench import mirror_component

        return mirror_component.run
    if name == "vlan":
        from spp.bench import vlan

        return vlan.run
    if name == "ndr":
        from spp.bench import ndr

        return ndr.run
    raise AssertionError(name)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="spp bench", description="Measure spp's data plane beside dpdk-testpmd.",
        epilog="scenarios:\n" + "\n".join(f"  {k:8} {v}" for k, v in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help=f"scenarios to run (default: {' '.join(DEFAULT)}; phy needs root)")
    ap.add_argument("--json", action="store_true", help="one JSON object per result line")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="measured time per side per result, split into --rounds windows (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating measurement windows per side (default 3)")
    ap.add_argument("--core", type=int, default=1, help="core the forwarding worker (and testpmd's lcore) use")
    ap.add_argument("--burst", type=int, action="append", dest="bursts", metavar="N",
                    help="forward: burst size(s) to run (repeatable; default 32 and 64)")
    ap.add_argument("--rate", type=float, action="append", dest="rates", metavar="MPPS",
                    help="phy: offered load in Mpps (repeatable: one result per rate; default 0.2)")
    ap.add_argument("--size", type=int, default=64, help="frame size in bytes (default 64)")
    ap.add_argument("--no-peer", action="store_true", help="do not run dpdk-testpmd beside spp")
    ap.add_argument("--quick", action="store_true",
                    help="ndr: short trials and 20%% resolution (proves it runs; not a measurement)")
    ap.add_argument("--side", action="append", dest="sides", metavar="SIDE",
                    help="ndr: a side to measure (repeatable; default all: spp-af_packet, spp-af_xdp, "
                         "testpmd-af_packet, testpmd-af_xdp, tc-redirect, spp-mirror, tc-mirror, ovs-mirror)")
    return ap


def _check(args: argparse.Namespace, ap: argparse.ArgumentParser) -> Options:
    for s in args.scenarios:
        if s not in DESCRIPTIONS:
            ap.error(f"unknown scenario {s!r}; choose from: {', '.join(DESCRIPTIONS)}")
    if not 0 < args.seconds <= 3600:
        ap.error(f"--seconds {args.seconds}: must be more than 0 and at most 3600")
    if not 1 <= args.rounds <= 100:
        ap.error(f"--rounds {args.rounds}: must be 1..100")
    bursts = tuple(args.bursts or (32, 64))
    for b in bursts:
        if not 1 <= b <= 512:
            ap.error(f"--burst {b}: must be 1..512")
    if not 60 <= args.size <= 1514:
        ap.error(f"--size {args.size}: must be 60..1514 bytes")
    rates = tuple(args.rates or (0.2,))
    for r in rates:
        if not 0 < r <= 10:
            ap.error(f"--rate {r}: must be more than 0 and at most 10 Mpps")
    return Options(seconds=args.seconds, rounds=args.rounds, core=args.core, bursts=bursts, rates=rates,
                   size=args.size, peer=not args.no_peer, quick=args.quick, sides=tuple(args.sides or ()))


def _print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="spp bench", caption="--json gives every figure; docs/performance.md explains them")
    t.add_column("scenario")
    t.add_column("spp", justify="right")
    t.add_column("peer")
    t.add_column("peer figure", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("notes", overflow="fold")
    for r in results:
        name = r.scenario + (f" b{r.extra['burst']}" if "burst" in r.extra else "")
        if r.scenario == "phy" and "offered_mpps" in r.extra:
            name += f" @{r.extra['offered_mpps']}"
        if r.scenario == "mirror-copy" and "size" in r.extra:
            name += f" {r.extra['size']}B"
        if r.scenario == "vhost" and "direction" in r.extra:
            name += f" {r.extra['direction']}"
        if r.scenario == "mirror-peers" and "versus" in r.extra:
            name += f" vs {r.extra['versus']} @{r.extra['offered_mpps']}"
        if r.scenario == "ndr" and "side" in r.extra:
            name += f" {r.extra['side']} {r.extra.get('driver')}"
        if r.scenario == "vlan" and "operation" in r.extra:
            name += f" {r.extra['operation']}"
        if r.scenario == "vf-chain" and "cores" in r.extra:
            name += f" {r.extra['cores']} core" + ("s" if r.extra["cores"] != 1 else "")
        figure = "-" if r.mpps is None else f"{r.mpps:.3g} {r.unit}"
        peer_fig = "-" if r.peer_mpps is None else f"{r.peer_mpps:.3g} {r.unit}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        notes = r.extra.get("reason") if r.status != "ok" else _notes(r)
        t.add_row(name, figure, (r.peer or "-").split(" (")[0], peer_fig, ratio, str(notes or ""))
    Console().print(t)


def _notes(r: Result) -> str:
    short = {"mpps_per_cpu": "per CPU s", "peer_mpps_per_cpu": "peer per CPU s", "ratio_per_cpu": "ratio per CPU s",
             "loss": "loss", "peer_loss": "peer loss", "ring_full": "ring_full", "rss_mib": "RSS MiB",
             "cold_start_s": "cold start s", "warm_start_s": "warm start s", "peer_rss_mib": "peer RSS MiB",
             "cold_register_s": "cold register s", "warm_register_s": "warm register s",
             "peer_start_s": "peer start s", "exact": "exact", "peer_error": "no peer",
             "mirrored_mpps": "mirrored", "mirror_loss": "mirror loss", "peer_mirrored_mpps": "peer mirrored",
             "peer_mirror_loss": "peer mirror loss", "native": "native", "peer_native": "peer native",
             "top_delivered_mpps": "at top", "generator_max_mpps": "gen max", "generator_bound": "gen-bound"}
    out = []
    for key, label in short.items():
        if key in r.extra:
            v = r.extra[key]
            out.append(f"{label} {v:.3g}" if isinstance(v, float) else f"{label} {v}")
    return "; ".join(out)


class _Interrupted(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spp bench``; returns the exit status (0 ok, 1 failed, 2 not runnable, 130 Ctrl-C)."""
    ap = _parser()
    args = ap.parse_args(argv)
    opts = _check(args, ap)
    names = args.scenarios or list(DEFAULT)

    me = os.getpid()

    def on_term(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != me:  # a forked helper (pyroute2 forks for netns): die as by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise _Interrupted

    old_term = signal.signal(signal.SIGTERM, on_term)
    results: list[Result] = []
    status = 0
    cleanup = Cleanup()
    try:
        for name in names:
            try:
                got = _scenario(name)(opts, cleanup)
            except BenchError as e:
                got = [Result(name, None, status="failed", extra={"reason": str(e)})]
                status = max(status, 1)
            except Exception as e:  # a bug or an environment problem: report it, go on with the rest
                got = [Result(name, None, status="failed", extra={"reason": f"{type(e).__name__}: {e}"})]
                status = max(status, 1)
            finally:
                cleanup.run()
            for r in got:
                if r.status == "not-runnable":
                    status = max(status, 2)
                elif r.status != "ok":
                    status = max(status, 1)
                if args.json:
                    print(json.dumps(r.to_json()), flush=True)
            results.extend(got)
    except (KeyboardInterrupt, _Interrupted):
        cleanup.run()
        print("spp bench: interrupted; everything it started was removed", file=sys.stderr)
        return 130
    finally:
        cleanup.run()
        signal.signal(signal.SIGTERM, old_term)
        for err in cleanup.errors:
            print(f"spp bench: {err}", file=sys.stderr)
    if not args.json:
        _print_table(results)
    return status
