"""``spp top``: live rates of any stack, from spp-ctl's ``GET /metrics``.

Every ``--interval`` seconds it scrapes ``/metrics`` (the figures of the REST status
routes, see :mod:`spp.ctl.metrics`) and shows, per port, rx/tx in packets and bits
per second and drops per second by reason, and per component its drops; ``q`` (or
Ctrl-C) quits.  Without a terminal (or with ``--count N``) it prints N frames and
exits, so it also serves scripts and tests.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from spp import ops
from spp.cli.client import CliError, RestClient, normalize_server

Key = tuple[str, ...]


@dataclass
class Sample:
    """One scrape: monotonic time and ``{family: {labels: value}}``."""

    at: float
    values: dict[str, dict[Key, float]] = field(default_factory=dict)
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, family: str) -> dict[Key, float]:
        return self.values.get(family, {})


def parse(text: str, at: float) -> Sample:
    """A :class:`Sample` of an exposition (label values in sorted label-name order)."""
    sample = Sample(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            names = tuple(sorted(s.labels))
            sample.labels[s.name] = names
            sample.values.setdefault(s.name, {})[tuple(s.labels[n] for n in names)] = s.value
    return sample


def _rate(now: Sample, before: Sample | None, family: str, key: Key) -> float | None:
    if before is None or now.at <= before.at:
        return None
    old = before.get(family).get(key)
    new = now.get(family).get(key)
    if old is None or new is None or new < old:
        return None
    return (new - old) / (now.at - before.at)


def _si(value: float | None, unit: str = "") -> str:
    """``1234567`` → ``1.23M`` (the column header names the unit)."""
    if value is None:
        return "-"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f}{prefix}{unit}"
    return f"{value:.0f}{unit}"


def _ports(now: Sample) -> Iterator[tuple[str, str]]:
    """``(port, process)`` of every port row, each port once (the first process that reports it)."""
    seen: set[str] = set()
    for port, process in sorted(now.get("spp_port_receive_packets_total")):
        if port not in seen:
            seen.add(port)
            yield port, process


def view(now: Sample, before: Sample | None, server: str) -> RenderableType:
    """The screen for two consecutive samples (``before`` None: counters only, no rates yet)."""
    up = now.get("spp_process_up")
    procs = "  ".join(f"{p}{'' if v else ' (DOWN)'}" for (p,), v in sorted(up.items())) or "no process connected"
    pool = now.get("spp_pool_buffers_in_use")
    total = now.get("spp_pool_buffers")
    head = [Text(f"spp-ctl {server}   {time.strftime('%H:%M:%S')}   q quits", style="bold"), Text(procs)]
    if pool:
        head.append(Text(f"pool: {int(next(iter(pool.values()))):,} of {int(next(iter(total.values()), 0)):,} "
                         "buffers in use"))
    ports = Table(title="ports", title_justify="left")
    for col in ("port", "process", "rx pps", "rx bps", "tx pps", "tx bps", "drops/s", "drops (total)"):
        ports.add_column(col, justify="left" if col in ("port", "process", "drops (total)") else "right")
    drops = now.get("spp_port_drops_total")
    for port, process in _ports(now):
        key = (port, process)
        rx_pps = _rate(now, before, "spp_port_receive_packets_total", key)
        rx_bps = _rate(now, before, "spp_port_receive_bytes_total", key)
        tx_pps = _rate(now, before, "spp_port_transmit_packets_total", key)
        tx_bps = _rate(now, before, "spp_port_transmit_bytes_total", key)
        reasons = {k[2]: v for k, v in drops.items() if k[0] == port and k[1] == process}
        drop_rate = sum(r or 0.0 for r in (_rate(now, before, "spp_port_drops_total", (port, process, reason))
                                            for reason in reasons)) if before is not None else None
        ports.add_row(port, process, _si(rx_pps), _si(None if rx_bps is None else rx_bps * 8),
                      _si(tx_pps), _si(None if tx_bps is None else tx_bps * 8),
                      _si(drop_rate), ", ".join(f"{r} {int(v):,}" for r, v in sorted(reasons.items())))
    parts: list[RenderableType] = [*head, ports]
    comp_drops = now.get("spp_component_drops_total")  # labels: component, process, reason, type
    if comp_drops:
        comps = Table(title="component drops", title_justify="left")
        for col in ("process", "component", "type", "drops/s", "drops (total)"):
            comps.add_column(col, justify="right" if col == "drops/s" else "left")
        grouped: dict[tuple[str, str, str], dict[str, float]] = {}
        for (comp, process, reason, ctype), value in comp_drops.items():
            grouped.setdefault((process, comp, ctype), {})[reason] = value
        for (process, comp, ctype), reasons in sorted(grouped.items()):
            keys = [(comp, process, reason, ctype) for reason in reasons]
            rate = sum(_rate(now, before, "spp_component_drops_total", k) or 0.0 for k in keys
                       ) if before is not None else None
            comps.add_row(process, comp, ctype, _si(rate),
                          ", ".join(f"{r} {int(v):,}" for r, v in sorted(reasons.items())))
        parts.append(comps)
    mirrors = now.get("spp_port_mirror_packets_total")  # destination, direction, mirror, source
    if mirrors:
        table = Table(title="port mirrors", title_justify="left")
        for col in ("mirror", "source", "destination", "copies/s", "copies", "lost"):
            table.add_column(col, justify="right" if col in ("copies/s", "copies", "lost") else "left")
        for mkey, value in sorted(mirrors.items(), key=lambda kv: kv[0][2]):
            dest, direction, name, source = mkey
            lost = sum(now.get(f"spp_port_mirror_{k}_total").get(mkey, 0) for k in ("nombuf", "full", "errors"))
            table.add_row(name, f"{source} ({direction})", dest,
                          _si(_rate(now, before, "spp_port_mirror_packets_total", mkey)),
                          f"{int(value):,}", f"{int(lost):,}")
        parts.append(table)
    return Group(*parts)


@contextlib.contextmanager
def _keys(enabled: bool) -> Iterator[None]:
    """Terminal in cbreak mode (keys arrive unbuffered, unechoed) while ``enabled``."""
    if not enabled:
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(timeout: float, interactive: bool) -> bool:
    """Wait up to ``timeout`` s for a key; True if it was ``q``."""
    if not interactive:
        time.sleep(timeout)
        return False
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], left)
        if ready and sys.stdin.read(1).lower() == "q":
            return True
    return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spp top", description="Live rates and drops of a stack (q quits).")
    parser.add_argument("-b", "--bind-addr", default=ops.env(ops.ENV_CTL) or "127.0.0.1:7777",
                        help=f"spp-ctl REST address (default: ${ops.ENV_CTL} or 127.0.0.1:7777)")
    parser.add_argument("--token", default=ops.env(ops.ENV_TOKEN), help=f"spp-ctl's token (default: ${ops.ENV_TOKEN})")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between updates (default 1)")
    parser.add_argument("--count", type=int, default=None,
                        help="stop after N updates (default: until q; 2 without a terminal)")
    ops.add_version(parser)
    return parser


def main(argv: Sequence[str], console: Console | None = None) -> int:
    """Entry point of ``spp top``; returns the exit status."""
    args = build_parser().parse_args(list(argv))
    if not args.interval > 0:
        print("spp top: --interval must be positive, e.g. --interval 0.5", file=sys.stderr)
        return 2
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
    interactive = console.is_terminal and sys.stdin.isatty()
    count = args.count if args.count is not None else (None if interactive else 2)
    try:
        client = RestClient(normalize_server(args.bind_addr), args.token, timeout=30.0)
    except CliError as exc:
        print(f"spp top: {exc}", file=sys.stderr)
        return 2
    before: Sample | None = None
    shown = 0
    try:
        with _keys(interactive), Live(console=console, auto_refresh=False) if interactive else \
                contextlib.nullcontext() as live:
            while count is None or shown < count:
                now = parse(client.metrics_text(), time.monotonic())
                screen = view(now, before, client.server)
                if live is not None:
                    live.update(screen, refresh=True)
                else:
                    console.print(screen)
                before = now
                shown += 1
                if (count is None or shown < count) and _quit_pressed(args.interval, interactive):
                    break
    except CliError as exc:
        print(f"spp top: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0
