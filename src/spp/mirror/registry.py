"""The shared mirror registry, kept in the data plane's ``mirror`` region.

Any process attached to a stack can add, remove and list *shared* mirrors (those with
built-in filters only); every process that has the source port open attaches them
(see :class:`spp.mirror.MirrorAgent`).  Layout of ``dp.mirror_bytes``::

    [0, 4096)       statistics: 64 rows x 8 int64 (packets, filtered, nombuf, full, ...)
    [4096, ...)     the registry: a JSON list, ``header[H_MIRROR_LEN]`` bytes long

Writers serialise on ``flock`` of the segment's file (released by the kernel if a
writer dies).  Readers take no lock: ``header[H_MIRROR_GEN]`` is a sequence counter,
odd while a write is in progress, so a reader retries until it sees the same even
value before and after reading.  A change of generation is also what tells agents
to reconcile.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from spp.lang.base import CommandError
from spp.lang.port_mirror import mirror_name
from spp.mirror.engine import COPY_MODES, DIRECTIONS, STAT_COLS, stats_dict
from spp.mirror.filters import FilterError, FlowMatch, MatchSpec
from spp.ports.base import PortError, PortId
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, H_MIRROR_GEN, H_MIRROR_LEN, MIRROR_BYTES, Dataplane

STATS_ROWS: Final = 64
STATS_BYTES: Final = STATS_ROWS * STAT_COLS * 8
JSON_OFF: Final = STATS_BYTES
JSON_MAX: Final = MIRROR_BYTES - JSON_OFF



class MirrorError(ValueError):
    """A mirror request is refused; the message says why and what would be accepted."""


@dataclass(frozen=True)
class MirrorSpec:
    """A mirror as stored in the registry: ``source`` → ``destination`` in ``direction``.

    Build with :meth:`create`, which validates and normalises every field.
    """

    name: str
    source: str
    destination: str
    direction: str = "both"
    match: MatchSpec = field(default_factory=MatchSpec)
    snaplen: int = 0
    copy: str = "shallow"

    @classmethod
    def create(cls, dp: Dataplane, name: str, source: str, destination: str, direction: str = "both", *,
               src_mac: str | None = None, dst_mac: str | None = None, vlan: str | None = None,
               flow: FlowMatch | str | None = None, snaplen: int = 0, copy: str = "shallow") -> MirrorSpec:
        """Validate everything (raising :class:`MirrorError`) and return the normalised spec."""
        try:
            mirror_name(name)
        except CommandError as e:
            raise MirrorError(str(e)) from None
        src = _port(dp, source, "source")
        dst = _port(dp, destination, "destination")
        if src == dst:
            raise MirrorError(f"mirror {name!r}: cannot mirror {src} to itself (packet storm); "
                              "pick another destination port")
        if direction not in DIRECTIONS:
            raise MirrorError(f"mirror {name!r}: direction {direction!r} is invalid; use rx, tx or both")
        if copy not in COPY_MODES:
            raise MirrorError(f"mirror {name!r}: copy mode {copy!r} is invalid; use shallow or deep")
        if isinstance(snaplen, bool) or not isinstance(snaplen, int) or not (
                snaplen == 0 or ETHER_MIN <= snaplen <= DATA_ROOM):
            raise MirrorError(f"mirror {name!r}: snaplen {snaplen!r} is invalid; use 0 (whole frames) or "
                              f"{ETHER_MIN}..{DATA_ROOM} bytes")
        try:
            if isinstance(flow, str):
                flow = FlowMatch.parse(flow.split())
            match = MatchSpec(src_mac, dst_mac, vlan, flow)
        except FilterError as e:
            raise MirrorError(f"mirror {name!r}: {e}") from None
        return cls(name, src, dst, direction, match, snaplen, copy)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "destination": self.destination,
                "direction": self.direction, **self.match.to_json(), "snaplen": self.snaplen, "copy": self.copy}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MirrorSpec:
        return cls(obj["name"], obj["source"], obj["destination"], obj["direction"], MatchSpec.from_json(obj),
                   obj["snaplen"], obj["copy"])


def _port(dp: Dataplane, spec: str, role: str) -> str:
    try:
        pid = PortId.parse(spec) if isinstance(spec, str) else None
        if pid is None:
            raise PortError(f"invalid port {spec!r}: expected TYPE:N (e.g. ring:0)")
        dp.port_slot(pid.ptype, pid.index)
    except ValueError as e:
        raise MirrorError(f"unknown {role} port: {e}") from None
    return pid.base


@dataclass(frozen=True)
class SharedMirror:
    """A registry entry: the spec and the row of the statistics table it counts in."""

    spec: MirrorSpec
    slot: int


def stats_table(dp: Dataplane) -> np.ndarray:
    """The shared statistics rows (``STATS_ROWS x STAT_COLS`` int64)."""
    return dp.mirror_bytes[:STATS_BYTES].view(np.int64).reshape(STATS_ROWS, STAT_COLS)


@contextmanager
def registry_lock(dp: Dataplane) -> Iterator[None]:
    """Exclusive writer lock across processes and threads (``flock`` on the segment file)."""
    fd = os.open(dp.seg.path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def generation(dp: Dataplane) -> int:
    """The registry's sequence counter (changes on every write)."""
    return int(dp.header[H_MIRROR_GEN])


def read_registry(dp: Dataplane, timeout: float = 1.0) -> tuple[int, list[SharedMirror]]:
    """A consistent snapshot ``(generation, entries)`` without taking the lock."""
    deadline = time.monotonic() + timeout
    while True:
        g1 = int(dp.header[H_MIRROR_GEN])
        if g1 % 2 == 0:
            n = int(dp.header[H_MIRROR_LEN])
            raw = bytes(dp.mirror_bytes[JSON_OFF : JSON_OFF + n])
            if int(dp.header[H_MIRROR_GEN]) == g1:
                break
        if time.monotonic() > deadline:
            raise TimeoutError("mirror registry stays locked for writing (a writer died mid-write?)")
        time.sleep(0.0001)
    if not raw:
        return g1, []
    items = json.loads(raw)
    return g1, [SharedMirror(MirrorSpec.from_json(it["spec"]), int(it["slot"])) for it in items]


def _write(dp: Dataplane, entries: list[SharedMirror]) -> None:
    raw = json.dumps([{"spec": e.spec.to_json(), "slot": e.slot} for e in entries]).encode()
    if len(raw) > JSON_MAX:
        raise MirrorError(f"mirror registry full ({len(raw)} of {JSON_MAX} bytes); remove a mirror first")
    hdr = dp.header
    hdr[H_MIRROR_GEN] += 1  # odd: readers wait
    dp.mirror_bytes[JSON_OFF : JSON_OFF + len(raw)] = np.frombuffer(raw, np.uint8)
    hdr[H_MIRROR_LEN] = len(raw)
    hdr[H_MIRROR_GEN] += 1


def check_conflicts(spec: MirrorSpec, others: list[MirrorSpec]) -> None:
    """Refuse a second mirror with the same name or the same (source, destination) pair."""
    for o in others:
        if o.name == spec.name:
            raise MirrorError(f"mirror {spec.name!r} already exists; remove it first or pick another name")
        if (o.source, o.destination) == (spec.source, spec.destination):
            raise MirrorError(f"{spec.source} is already mirrored to {spec.destination} by {o.name!r}; "
                              "one mirror per (source, destination) pair (use direction 'both' to cover rx and tx)")


def add_mirror(dp: Dataplane, spec: MirrorSpec, *, local: Sequence[MirrorSpec] = ()) -> SharedMirror:
    """Add ``spec`` to the shared registry; every agent with the source port open attaches it.

    ``local`` are the caller's local mirrors, also checked for conflicts.
    """
    with registry_lock(dp):
        _, entries = read_registry(dp)
        check_conflicts(spec, [e.spec for e in entries] + list(local))
        used = {e.slot for e in entries}
        free = [s for s in range(STATS_ROWS) if s not in used]
        if not free:
            raise MirrorError(f"too many shared mirrors ({STATS_ROWS}); remove one first")
        entry = SharedMirror(spec, free[0])
        stats_table(dp)[entry.slot] = 0
        _write(dp, [*entries, entry])
        return entry


def remove_mirror(dp: Dataplane, name: str) -> SharedMirror:
    """Remove shared mirror ``name``; :class:`MirrorError` if there is none."""
    with registry_lock(dp):
        _, entries = read_registry(dp)
        for e in entries:
            if e.spec.name == name:
                _write(dp, [x for x in entries if x is not e])
                return e
    names = ", ".join(e.spec.name for e in entries) or "none"
    raise MirrorError(f"no mirror {name!r}; registered: {names}")


def list_mirrors(dp: Dataplane) -> list[dict[str, Any]]:
    """Every shared mirror with its statistics (JSON-ready), in registration order."""
    _, entries = read_registry(dp)
    table = stats_table(dp)
    return [{**e.spec.to_json(), "shared": True, "stats": stats_dict(table[e.slot])} for e in entries]
