"""Conservation of frames: offered = delivered + counted drops (+ frames still queued).

A :class:`Ledger` collects, for one path through a data plane, where frames came
in (``offered``), where they left (``delivered``), where they died (``dropped``,
per place and per named reason), where they are still waiting (``in_flight``, e.g.
a ring nobody reads any more) and where new frames were made from old ones
(``created``, e.g. a mirror's duplicates).  :meth:`Ledger.check` raises
:class:`ConservationError` with a readable table when

    sum(offered) + sum(created) != sum(delivered) + sum(dropped) + sum(in_flight)

:func:`port_ledger` fills a ledger from a :class:`~spp.runtime.dataplane.Dataplane`'s
shared port counters and components' drop rows; :func:`hop_ledgers` checks every
ring on the path on its own (``enqueued = dequeued + waiting``), so a loss is
pinned to the hop where it happened; :func:`status_drops` reads the per-component
drops out of an spp-vf / spp-mirror ``status`` reply.

Usage in a scenario test::

    ledger = port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"],
                         through=["ring:0"], components=manager.components().values())
    ledger.check()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spp.components.base import Component
from spp.ports.base import PortId
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import DROP_BASE, DROP_REASONS, RX_PACKETS, TX_PACKETS


class ConservationError(AssertionError):
    """Frames were lost (or made up) without being counted; the message is the ledger."""


@dataclass
class Ledger:
    """Frame accounting for one path (see the module docstring)."""

    name: str = "path"
    offered: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)

    def offer(self, where: str, n: int) -> None:
        """``n`` frames entered the path at ``where``."""
        self.offered[where] = self.offered.get(where, 0) + int(n)

    def deliver(self, where: str, n: int) -> None:
        """``n`` frames left the path at ``where``."""
        self.delivered[where] = self.delivered.get(where, 0) + int(n)

    def drop(self, where: str, reason: str, n: int) -> None:
        """``n`` frames were counted as dropped at ``where`` under ``reason``."""
        if n:
            row = self.dropped.setdefault(where, {})
            row[reason] = row.get(reason, 0) + int(n)

    def hold(self, where: str, n: int) -> None:
        """``n`` frames are still waiting at ``where`` (a ring, a buffer)."""
        if n:
            self.in_flight[where] = self.in_flight.get(where, 0) + int(n)

    def create(self, where: str, n: int) -> None:
        """``n`` new frames were made at ``where`` (a mirror's duplicates)."""
        if n:
            self.created[where] = self.created.get(where, 0) + int(n)

    @property
    def total_dropped(self) -> int:
        return sum(sum(r.values()) for r in self.dropped.values())

    @property
    def balance(self) -> int:
        """Frames unaccounted for (positive: lost silently; negative: counted twice or made up)."""
        return (sum(self.offered.values()) + sum(self.created.values()) - sum(self.delivered.values())
                - self.total_dropped - sum(self.in_flight.values()))

    def drops_by_reason(self) -> dict[str, int]:
        """Total drops per reason over every place."""
        out: dict[str, int] = {}
        for row in self.dropped.values():
            for reason, n in row.items():
                out[reason] = out.get(reason, 0) + n
        return out

    def report(self) -> str:
        """The ledger as a table, one line per entry, with the balance last."""
        lines = [f"ledger {self.name}:"]
        for title, entries in (("offered", self.offered), ("created", self.created),
                               ("delivered", self.delivered), ("in flight", self.in_flight)):
            for where, n in entries.items():
                lines.append(f"  {title:<10} {where:<24} {n:>12}")
        for where, row in self.dropped.items():
            for reason, n in row.items():
                lines.append(f"  {'dropped':<10} {where + ' ' + reason:<24} {n:>12}")
        lines.append(f"  {'offered + created - delivered - dropped - in flight':<47} = {self.balance}"
                     f" ({'lost without a count' if self.balance > 0 else 'counted twice or made up'}"
                     f" if not 0)")
        return "\n".join(lines)

    def check(self) -> Ledger:
        """Raise :class:`ConservationError` (with :meth:`report`) unless the balance is 0."""
        if self.balance != 0:
            raise ConservationError(self.report())
        return self


def _slot(dp: Dataplane, port: str) -> int:
    pid = PortId.parse(port)
    return dp.port_slot(pid.ptype, pid.index)


def port_drops(dp: Dataplane, port: str) -> dict[str, int]:
    """Non-zero drop counters of ``port`` (e.g. ``"ring:0"``) by reason."""
    row = dp.stats[_slot(dp, port)]
    return {name: int(row[DROP_BASE + i]) for i, name in enumerate(DROP_REASONS) if row[DROP_BASE + i]}


def ring_waiting(dp: Dataplane, port: str) -> int:
    """Frames waiting in ring port ``port`` (``"ring:N"``)."""
    pid = PortId.parse(port)
    if pid.ptype != "ring":
        raise ValueError(f"{port}: only ring ports hold frames between hops; give ring:N")
    return int(ringcore.ring_count(dp.ring_ctrl[pid.index]))


def port_ledger(dp: Dataplane, *, sources: Sequence[str], sinks: Sequence[str], through: Sequence[str] = (),
                components: Iterable[Component] = (), copies: Mapping[str, int] | None = None,
                name: str = "path") -> Ledger:
    """A ledger of a path from shared counters.

    ``sources``: ports whose ``rx_packets`` are the frames offered; ``sinks``: ports
    whose ``tx_packets`` are the frames delivered; every listed port's drop counters
    (sources, sinks, ``through``) are drops at that port; a ring in ``through``
    contributes the frames still waiting in it; every component's drop row is added;
    ``copies`` names frames made on the way (e.g. ``{"mirror mir": n}``).
    """
    ledger = Ledger(name)
    for port in sources:
        ledger.offer(f"{port} rx", int(dp.stats[_slot(dp, port)][RX_PACKETS]))
    for port in sinks:
        ledger.deliver(f"{port} tx", int(dp.stats[_slot(dp, port)][TX_PACKETS]))
    for port in dict.fromkeys([*sources, *sinks, *through]):
        for reason, n in port_drops(dp, port).items():
            ledger.drop(port, reason, n)
        if PortId.parse(port).ptype == "ring":
            ledger.hold(port, ring_waiting(dp, port))
    for comp in components:
        for i, reason in enumerate(DROP_REASONS):
            ledger.drop(comp.name, reason, int(comp.drops[DROP_BASE + i]))
    for where, n in (copies or {}).items():
        ledger.create(where, n)
    return ledger


def hop_ledgers(dp: Dataplane, rings: Sequence[str]) -> list[Ledger]:
    """One ledger per ring: frames offered to it = dequeued + still waiting + counted drops."""
    out = []
    for port in rings:
        row = dp.stats[_slot(dp, port)]
        ledger = Ledger(f"hop {port}")
        drops = port_drops(dp, port)
        ledger.offer(f"{port} enqueue attempts", int(row[TX_PACKETS]) + sum(drops.values()))
        ledger.deliver(f"{port} dequeued", int(row[RX_PACKETS]))
        for reason, n in drops.items():
            ledger.drop(port, reason, n)
        ledger.hold(port, ring_waiting(dp, port))
        out.append(ledger)
    return out


def check_all(ledgers: Iterable[Ledger]) -> None:
    """Check every ledger; the error lists every unbalanced one."""
    bad = [ledger.report() for ledger in ledgers if ledger.balance != 0]
    if bad:
        raise ConservationError("\n".join(bad))


def status_drops(info: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per-component drops from an spp-vf / spp-mirror ``status`` ``info`` object."""
    out: dict[str, dict[str, int]] = {}
    for core in info.get("core", []):
        if "name" in core:
            out[str(core["name"])] = {str(k): int(v) for k, v in core.get("stats", {}).get("drops", {}).items()}
    return out
