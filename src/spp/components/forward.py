"""``forward`` (1 rx, 1 tx) and ``merge`` (any rx, 1 tx): everything to tx 0."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from spp.components.base import KERNEL_FORWARD, KERNEL_PYTHON, Component, Kernel, register_component


class Forward(Component):
    """Forwards when it has exactly one rx and one tx port."""

    type_name = "forward"
    max_rx: ClassVar[int | None] = 1
    max_tx: ClassVar[int | None] = 1

    def kernel(self, n_tx: int) -> Kernel:
        return Kernel(KERNEL_FORWARD if n_tx == 1 else KERNEL_PYTHON)

    def ready(self, n_rx: int, n_tx: int) -> bool:
        return n_rx == 1 and n_tx == 1

    def process(self, bufs: np.ndarray, n: int, n_tx: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        return bufs, None, n


class Merge(Forward):
    """Forwards when it has at least one rx and exactly one tx port."""

    type_name = "merge"
    max_rx = None

    def ready(self, n_rx: int, n_tx: int) -> bool:
        return n_rx >= 1 and n_tx == 1


register_component("forward")(Forward)
register_component("merge")(Merge)
