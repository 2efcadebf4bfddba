"""``mirror`` (spp_mirror, SPEC §4): 1 rx, 2 tx; the original to tx 0, a duplicate to tx 1.

Copy modes (settable at any time through :attr:`Mirror.copy_mode`):

* ``shallow`` (default): the duplicate is the same buffer with its reference count
  raised by one (no memcpy).  Both outputs then share the bytes, which must be
  treated as read-only from here on.
* ``deep``: the duplicate is a fresh buffer holding a full copy of the frame (with
  the origin record ``M_ORIGLEN``/``M_ORIGPORT`` set).  When the pool has no free
  buffer the duplicate is dropped and counted ``mirror_nombuf`` in the component's
  ``drops``; the original still goes.

``process`` returns the originals (destination 0) followed by the duplicates
(destination 1).  Every returned id is one buffer *reference*: the worker frees
exactly one reference for each one a tx port refuses and counts it on that port, so
when the two ports accept different numbers nothing leaks and nothing is freed twice.
"""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np
from numba import njit

from spp.components.base import KERNEL_MIRROR, Component, ComponentError, Kernel, register_component
from spp.runtime.dataplane import Dataplane, copy_frames, pool_alloc, pool_ref

COPY_MODES: Final[tuple[str, ...]] = ("shallow", "deep")


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def mirror_duplicate(data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, pctrl: np.ndarray,
                     pslots: np.ndarray, bufs: np.ndarray, n: int, deep: bool, out: np.ndarray,
                     dst: np.ndarray) -> int:
    """Write ``bufs[:n]`` then their duplicates into ``out``; fill ``dst`` (0/1); return the total.

    Shallow: ``out[n:2n]`` are the same ids, each with one more reference.  Deep: as many
    fresh copies as the pool can give (``total - n`` of them; the rest are the caller's
    ``mirror_nombuf`` drops).
    """
    for i in range(n):
        out[i] = bufs[i]
        dst[i] = 0
    if deep:
        k = pool_alloc(pctrl, pslots, refcnt, meta, out, n, n)
        copy_frames(data, meta, bufs, out[n:], k, 0)  # no numba allocation: pool buffers
    else:
        for i in range(n):
            out[n + i] = bufs[i]
        pool_ref(refcnt, bufs, 0, n)
        k = n
    for i in range(k):
        dst[n + i] = 1
    return n + k


class Mirror(Component):
    """Duplicates every frame of its rx port: originals to tx 0, duplicates to tx 1."""

    type_name = "mirror"
    max_rx: ClassVar[int | None] = 1
    max_tx: ClassVar[int | None] = 2

    def __init__(self, dp: Dataplane, name: str, core: int, copy_mode: str = "shallow") -> None:
        super().__init__(dp, name, core)
        self._deep = False
        #: The copy mode as the compiled worker loop reads it (by address, so a change applies at once).
        self.mode_word = np.zeros(1, np.int64)
        self.copy_mode = copy_mode
        self._out = np.empty(64, np.int32)
        self._dst = np.empty(64, np.int64)

    @property
    def copy_mode(self) -> str:
        """``"shallow"`` (shared buffer, reference counted) or ``"deep"`` (a full copy)."""
        return "deep" if self._deep else "shallow"

    @copy_mode.setter
    def copy_mode(self, mode: str) -> None:
        if mode not in COPY_MODES:
            raise ComponentError(f"mirror {self.name!r}: copy mode {mode!r} is invalid; use 'shallow' or 'deep'")
        self._deep = mode == "deep"
        self.mode_word[0] = int(self._deep)

    def ready(self, n_rx: int, n_tx: int) -> bool:
        return n_rx == 1 and n_tx == 2

    def kernel(self, n_tx: int) -> Kernel:
        """Its copy mode is read live by address: a mode change is not a plan change."""
        return Kernel(KERNEL_MIRROR, word=self.mode_word.__array_interface__["data"][0])

    def process(self, bufs: np.ndarray, n: int, n_tx: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Originals to 0 and duplicates to 1 (see the module docstring); ``n_tx`` must be 2."""
        if 2 * n > len(self._out):
            self._out = np.empty(2 * n, np.int32)
            self._dst = np.empty(2 * n, np.int64)
        dp = self.dp
        m = int(mirror_duplicate(dp.data, dp.meta, dp.refcnt, dp.pool_ctrl, dp.pool_slots, bufs, n, self._deep,
                                 self._out, self._dst))
        if m < 2 * n:
            self.count_drop("mirror_nombuf", 2 * n - m)
        return self._out, self._dst, m


register_component("mirror")(Mirror)
