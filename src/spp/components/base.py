"""Components are burst transforms (Click elements / VPP nodes).

A component declares how many rx and tx ports it may have and when it is ready to
forward, and maps a received burst to output ports.  It never does I/O: the worker
receives, calls :meth:`Component.process`, buffers per tx port and transmits.

``process(bufs, n, n_tx)`` returns ``(ids, dst, m)``: ``ids[:m]`` are buffers to send
and ``dst[:m]`` the index of the tx port for each (``dst is None``: all to tx 0).
A component that sends one buffer to several ports adds references itself (a
shallow copy); one that drops a frame frees it and counts it in ``self.drops``
under a reason.  Every input buffer is either in the output or counted and freed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import N_FIELDS, drop_field, row_to_dict, stat_add

#: The compiled kernels of the worker loop a component can ask for (:meth:`Component.kernel`).
KERNEL_FORWARD = 0  # every received frame to the one tx port (forward, merge)
KERNEL_CLASSIFIER = 1  # a MAC/VLAN table lookup (``table``: the packed table of ``components.classifier``)
KERNEL_MIRROR = 2  # originals to tx 0, duplicates to tx 1 (``word``: address of the copy-mode word, 1: deep)
KERNEL_PYTHON = 3  # :meth:`Component.process`, called once per burst from the loop


@dataclass(frozen=True)
class Kernel:
    """Which compiled kernel runs a component, and its parameters."""

    kind: int
    table: np.ndarray | None = None
    word: int = 0


class ComponentError(ValueError):
    """A component cannot take this configuration; the message says why."""


class Component(ABC):
    """Base of every component type."""

    type_name: ClassVar[str]
    #: Port limits (None: any number).
    max_rx: ClassVar[int | None] = None
    max_tx: ClassVar[int | None] = None

    def __init__(self, dp: Dataplane, name: str, core: int) -> None:
        self.dp = dp
        self.name = name
        self.core = core
        self.drops = np.zeros(N_FIELDS, np.int64)

    def check_ports(self, n_rx: int, n_tx: int) -> None:
        """Raise :class:`ComponentError` if the counts exceed this type's limits."""
        if self.max_rx is not None and n_rx > self.max_rx:
            raise ComponentError(f"{self.type_name} {self.name!r} takes at most {self.max_rx} rx port(s)")
        if self.max_tx is not None and n_tx > self.max_tx:
            raise ComponentError(f"{self.type_name} {self.name!r} takes at most {self.max_tx} tx port(s)")

    @abstractmethod
    def ready(self, n_rx: int, n_tx: int) -> bool:
        """True when the component forwards with this many ports."""

    def kernel(self, n_tx: int) -> Kernel:
        """The compiled kernel that runs this component with ``n_tx`` tx ports (default: its
        :meth:`process`, called from the loop once per burst)."""
        return Kernel(KERNEL_PYTHON)

    @abstractmethod
    def process(self, bufs: np.ndarray, n: int, n_tx: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Map ``bufs[:n]`` to tx ports; see the module docstring."""

    def count_drop(self, reason: str, n: int = 1) -> None:
        stat_add(self.drops, drop_field(reason), n)

    def stats_dict(self) -> dict[str, object]:
        return row_to_dict(self.drops, port=False)


ComponentFactory = Callable[[Dataplane, str, int], Component]
COMPONENT_TYPES: dict[str, ComponentFactory] = {}


def register_component(type_name: str) -> Callable[[ComponentFactory], ComponentFactory]:
    def deco(factory: ComponentFactory) -> ComponentFactory:
        COMPONENT_TYPES[type_name] = factory
        return factory

    return deco
