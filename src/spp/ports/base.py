"""The one port interface every driver implements (DPDK ethdev's burst contract).

* ``rx_burst(bufs)`` fills ``bufs[:k]`` with up to ``len(bufs)`` received buffers and
  returns ``k``; the caller owns them.
* ``tx_burst(bufs, n)`` offers ``bufs[:n]``; returns ``k``, how many the port took
  (always a prefix).  The port owns ``bufs[:k]`` from then on; the caller still owns
  ``bufs[k:n]`` and must send them again or free them and count a drop
  (:meth:`Port.count_drop` with :attr:`Port.full_reason`).
* Counters live in the stack's shared ``stats`` table, one row per port, so every
  process sees the same numbers: rx/tx packets and bytes, errors, drops by reason.
* Rx and tx callbacks can be added and removed at any time, even while traffic flows
  (the list is replaced, never mutated): rx callbacks run right after receive, tx
  callbacks right before transmit.  A callback is ``cb(port, bufs, n) -> m`` with
  ``m <= n``: it may keep a prefix ``bufs[:m]`` (compacting what it keeps) and then
  owns, frees and counts whatever it removed.  Port mirroring hooks in here.

Drivers register by type name (:func:`register_driver`) and are built from a
resource id such as ``ring:0`` or ``phy:1`` by :func:`open_port`.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spp.runtime.dataplane import PORT_TYPES, Dataplane
from spp.runtime.stats import ERRORS, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, drop_field, row_to_dict, stat_add

Callback = Callable[["Port", np.ndarray, int], int]

_PORT_RE = re.compile(r"^([a-z]+):(\d+)(?:nq(\d+))?$")
_CB_GEN_LOCK = threading.Lock()


class PortError(ValueError):
    """A port cannot be built or used; the message says why and what would work."""


@dataclass(frozen=True, order=True)
class PortId:
    """A resource id: ``TYPE:N`` with an optional queue (``phy:0nq1`` on the wire)."""

    ptype: str
    index: int
    queue: int = 0

    @classmethod
    def parse(cls, text: str) -> PortId:
        """Parse ``phy:0``, ``ring:3`` or ``phy:0nq1``; :class:`PortError` explains failures."""
        m = _PORT_RE.match(text.strip())
        if not m:
            raise PortError(f"invalid port {text!r}: expected TYPE:N (e.g. ring:0, phy:1, phy:0nq1)")
        ptype, idx, q = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if ptype not in PORT_TYPES:
            raise PortError(f"invalid port {text!r}: unknown type {ptype!r}; known: {', '.join(PORT_TYPES)}")
        return cls(ptype, idx, q)

    def __str__(self) -> str:
        return f"{self.ptype}:{self.index}" + (f"nq{self.queue}" if self.queue else "")

    @property
    def base(self) -> str:
        """``TYPE:N`` without the queue."""
        return f"{self.ptype}:{self.index}"


class Port(ABC):
    """Base of every driver.  See the module docstring for the contract."""

    #: Type name in resource ids (``ring``, ``phy``, ...).
    ptype: ClassVar[str]
    #: Reason counted when ``tx_burst`` does not take everything.
    full_reason: ClassVar[str] = "tx_full"
    #: Native kind for compiled workers (0: Python-only driver).
    native_kind: ClassVar[int] = 0
    #: Bumped whenever a callback is added to or removed from any port of this process,
    #: so workers re-check whether their compiled fast path still applies.
    callback_generation: ClassVar[int] = 0

    def __init__(self, dp: Dataplane, pid: PortId) -> None:
        self.dp = dp
        self.id = pid
        self.slot = dp.port_slot(pid.ptype, pid.index)
        self.stats = dp.stats[self.slot]
        self._rx_cbs: tuple[Callback, ...] = ()
        self._tx_cbs: tuple[Callback, ...] = ()
        self._cb_lock = threading.Lock()
        self.closed = False

    # -- the burst contract ---------------------------------------------------

    def rx_burst(self, bufs: np.ndarray, n: int | None = None) -> int:
        """Receive up to ``n`` (default ``len(bufs)``) buffers into ``bufs``; return the count."""
        k = self._rx(bufs, len(bufs) if n is None else min(n, len(bufs)))
        for cb in self._rx_cbs:
            if k == 0:
                break
            k = cb(self, bufs, k)
        return k

    def tx_burst(self, bufs: np.ndarray, n: int) -> int:
        """Offer ``bufs[:n]``; return how many the port took (a prefix).

        Frames a tx callback removed count as taken (the callback owns them), so the
        refused remainder is moved to the end, ``bufs[k:n]``, where the caller looks.
        """
        n0 = n
        for cb in self._tx_cbs:
            if n == 0:
                return n0
            n = cb(self, bufs, n)
        if n == 0:
            return n0
        k = self._tx(bufs, n)
        if n < n0 and k < n:
            bufs[n0 - (n - k) : n0] = bufs[k:n].copy()
        return k + (n0 - n)

    @abstractmethod
    def _rx(self, bufs: np.ndarray, n: int) -> int:
        """Driver receive: fill ``bufs[:k]``, count rx packets/bytes and rx-side drops."""

    @abstractmethod
    def _tx(self, bufs: np.ndarray, n: int) -> int:
        """Driver transmit: take a prefix of ``bufs[:n]``, count tx packets/bytes."""

    # -- callbacks ------------------------------------------------------------

    @property
    def rx_callbacks(self) -> tuple[Callback, ...]:
        """The rx callbacks, in the order they run (a snapshot: the tuple is replaced on change)."""
        return self._rx_cbs

    @property
    def tx_callbacks(self) -> tuple[Callback, ...]:
        """The tx callbacks, in the order they run."""
        return self._tx_cbs

    @property
    def has_callbacks(self) -> bool:
        return bool(self._rx_cbs or self._tx_cbs)

    def add_rx_callback(self, cb: Callback, *, first: bool = False) -> Callback:
        """Run ``cb`` on every received burst from now on; returns a handle for removal.

        ``first``: run it before the callbacks already there (port mirrors see every
        received frame, before other callbacks may remove some).
        """
        with self._cb_lock:
            self._rx_cbs = (cb, *self._rx_cbs) if first else (*self._rx_cbs, cb)
        self._callbacks_changed()
        return cb

    def remove_rx_callback(self, cb: Callback) -> None:
        with self._cb_lock:
            if cb not in self._rx_cbs:
                raise PortError(f"{self.id}: no such rx callback")
            self._rx_cbs = tuple(c for c in self._rx_cbs if c is not cb)
        self._callbacks_changed()

    def add_tx_callback(self, cb: Callback) -> Callback:
        """Run ``cb`` on every burst about to be transmitted; returns a handle."""
        with self._cb_lock:
            self._tx_cbs = (*self._tx_cbs, cb)
        self._callbacks_changed()
        return cb

    def remove_tx_callback(self, cb: Callback) -> None:
        with self._cb_lock:
            if cb not in self._tx_cbs:
                raise PortError(f"{self.id}: no such tx callback")
            self._tx_cbs = tuple(c for c in self._tx_cbs if c is not cb)
        self._callbacks_changed()

    @staticmethod
    def _callbacks_changed() -> None:
        with _CB_GEN_LOCK:
            Port.callback_generation += 1

    # -- counters -------------------------------------------------------------

    def count_rx(self, packets: int, nbytes: int) -> None:
        stat_add(self.stats, RX_PACKETS, packets)
        stat_add(self.stats, RX_BYTES, nbytes)

    def count_tx(self, packets: int, nbytes: int) -> None:
        stat_add(self.stats, TX_PACKETS, packets)
        stat_add(self.stats, TX_BYTES, nbytes)

    def count_drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` frames lost at this port for ``reason`` (see ``stats.DROP_REASONS``)."""
        stat_add(self.stats, drop_field(reason), n)

    def count_error(self, n: int = 1) -> None:
        stat_add(self.stats, ERRORS, n)

    def stats_dict(self) -> dict[str, object]:
        """SPEC's per-port ``stats`` object."""
        return row_to_dict(self.stats)

    def native(self) -> tuple[int, int]:
        """``(kind, arg)`` for compiled workers; kind 0 means Python-only."""
        return (self.native_kind, 0)

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when frames arrive, if the driver has one."""
        return None

    def close(self) -> None:
        """Release the driver's resources.  Idempotent."""
        self.closed = True

    def describe(self) -> dict[str, Any]:
        """Driver facts for status output."""
        return {"port": str(self.id)}


DriverFactory = Callable[[Dataplane, PortId, dict[str, Any]], Port]
_DRIVERS: dict[str, DriverFactory] = {}
_REFUSED: dict[str, str] = {
    "vhost": "vhost:N is not supported yet; use tap:N for a VM (qemu -netdev tap,ifname=spptapN) or ring:N",
    "memif": "memif:N is not supported; use ring:N between spp processes or tap:N for containers",
}


def register_driver(ptype: str) -> Callable[[DriverFactory], DriverFactory]:
    """Register a factory for ``ptype`` ports (used as a decorator)."""

    def deco(factory: DriverFactory) -> DriverFactory:
        _DRIVERS[ptype] = factory
        _REFUSED.pop(ptype, None)
        return factory

    return deco


def driver_types() -> list[str]:
    _load_builtin_drivers()
    return sorted(_DRIVERS)


def open_port(dp: Dataplane, spec: str | PortId, **opts: Any) -> Port:
    """Build the port for resource id ``spec`` (e.g. ``ring:0``)."""
    _load_builtin_drivers()
    pid = spec if isinstance(spec, PortId) else PortId.parse(spec)
    if pid.ptype in _REFUSED:
        raise PortError(_REFUSED[pid.ptype])
    factory = _DRIVERS.get(pid.ptype)
    if factory is None:
        raise PortError(f"no driver for {pid.ptype}; available: {', '.join(sorted(_DRIVERS))}")
    dp.port_slot(pid.ptype, pid.index)  # range check with a clear message
    return factory(dp, pid, opts)


_loaded = False
_loading = threading.RLock()


def _load_builtin_drivers() -> None:
    """Import the built-in drivers once.  Thread-safe: a caller never sees half of them registered
    (a command handled while the data path compiles in another thread once found ``ring`` missing)."""
    global _loaded
    if _loaded:
        return
    import importlib

    with _loading:
        if _loaded:
            return
        for mod in ("null", "ring", "pcap", "tap", "phy", "vhost"):
            try:
                importlib.import_module(f"spp.ports.{mod}")
            except ModuleNotFoundError as e:
                if e.name != f"spp.ports.{mod}":
                    raise
        _loaded = True


class PortTable:
    """The ports one process has open, shared by its components: one object per id."""

    def __init__(self, dp: Dataplane) -> None:
        self.dp = dp
        self._ports: dict[str, Port] = {}
        self._lock = threading.Lock()

    def get(self, spec: str | PortId, **opts: Any) -> Port:
        """The open port for ``spec`` (without its queue), opening it on first use."""
        pid = spec if isinstance(spec, PortId) else PortId.parse(spec)
        with self._lock:
            port = self._ports.get(str(pid))
            if port is None:
                port = open_port(self.dp, pid, **opts)
                self._ports[str(pid)] = port
            return port

    def find(self, spec: str | PortId) -> Port | None:
        return self._ports.get(str(spec))

    def all(self) -> list[Port]:
        return list(self._ports.values())

    def close(self, spec: str | PortId) -> None:
        with self._lock:
            port = self._ports.pop(str(spec), None)
        if port is not None:
            port.close()

    def close_all(self) -> None:
        with self._lock:
            ports, self._ports = list(self._ports.values()), {}
        for p in ports:
            p.close()
