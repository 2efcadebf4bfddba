"""Stop the world for a moment: every worker of every process of a stack at a safe point.

A worker holds no buffer between two calls of its loop (the compiled loop sends or
frees everything before it returns; the Python loop flushes its transmit buffers
first), so a stack whose every worker waits at that point has each buffer either
free, queued in a ring, or in the hands of a process that is gone.  The primary
uses that to give back what a dead process held (:mod:`spp.runtime.reclaim`).

Protocol, through the shared segment:

* each worker thread takes a row of the worker table (:class:`Checkpoint`), owned
  by its process's member row, for its lifetime;
* the pauser makes the pause generation (header word ``H_PAUSE``) odd;
* a worker checks the word between calls (one load); seeing it odd, it makes its
  transmit buffers empty, writes the generation into its row (the acknowledgement)
  and waits until the word changes;
* the pauser waits until every row owned by a live member has acknowledged (rows of
  dead members are ignored: that is whom it pauses for), does its work, and makes
  the word even again.

Both sides use an atomic instruction between their store and their load (the row
claim, the generation change), so a worker that starts while a pause is requested
either is waited for or sees the request before its first call.  A worker waits
for the pauser at most ``HOLD_TIMEOUT`` seconds, and a pauser that does not hear
from every worker within its timeout gives up and resumes: a stopped (SIGSTOP)
process blocks reclaiming, never traffic for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
from numba import njit

from spp.runtime.atomics import atomic_cas
from spp.runtime.dataplane import H_PAUSE, Dataplane

#: Columns of a worker row: owner (its process's member row + 1; 0: free), acknowledged generation.
K_OWNER, K_ACK = 0, 1
#: Longest a worker waits for a pauser before it carries on (seconds).
HOLD_TIMEOUT = 2.0
Clock = Callable[[], float]


@njit(cache=True, nogil=True)
def _cas(arr: np.ndarray, idx: int, expected: int, new: int) -> int:
    return int(atomic_cas(arr, idx, expected, new))


class Checkpoint:
    """A worker's row in the worker table; :meth:`poll` between calls of its loop."""

    def __init__(self, dp: Dataplane, *, clock: Clock = time.monotonic) -> None:
        self.header = dp.header
        self.table = dp.workers
        self.clock = clock
        self.row = -1
        owner = dp.member_row + 1
        if owner <= 0:
            return  # not a member (an old-style attach): nothing to coordinate
        for row in range(self.table.shape[0]):
            if self.table[row, K_OWNER] == 0 and _cas(self.table[row], K_OWNER, 0, owner) == 0:
                self.table[row, K_ACK] = 0
                self.row = row
                return

    def requested(self) -> bool:
        """True when the world is asked to stop (cheap: one load)."""
        return bool(self.header[H_PAUSE] & 1)

    def hold(self, flush: Callable[[], None]) -> None:
        """Empty the worker's hands (``flush``), acknowledge, wait for the pauser to finish."""
        gen = int(self.header[H_PAUSE])
        if not gen & 1 or self.row < 0:
            return
        flush()
        _cas(self.table[self.row], K_ACK, int(self.table[self.row, K_ACK]), gen)
        deadline = self.clock() + HOLD_TIMEOUT
        while int(self.header[H_PAUSE]) == gen and self.clock() < deadline:
            time.sleep(0.0001)

    def close(self, flush: Callable[[], None]) -> None:
        """Leave for good: wait out a pause, send what is buffered (``flush``), give the row back."""
        try:
            if self.requested():
                self.hold(flush)
            flush()
        finally:
            if self.row >= 0:
                _cas(self.table[self.row], K_OWNER, int(self.table[self.row, K_OWNER]), 0)
                self.row = -1


def stop_world(dp: Dataplane, live_owners: Iterable[int], *, timeout: float = 1.0,
               clock: Clock = time.monotonic) -> bool:
    """Ask every worker to stop; True once every worker of a live member (``live_owners``:
    member rows) waits.  False (and the world resumed) if one did not within ``timeout``,
    or if another pause is under way.
    """
    gen = int(dp.header[H_PAUSE])
    if gen & 1 or _cas(dp.header, H_PAUSE, gen, gen + 1) != gen:
        return False
    want = {r + 1 for r in live_owners}
    deadline = clock() + timeout
    table = dp.workers
    while True:
        waiting = [r for r in range(table.shape[0])
                   if int(table[r, K_OWNER]) in want and int(table[r, K_ACK]) != gen + 1]
        if not waiting:
            return True
        if clock() > deadline:
            resume(dp)
            return False
        time.sleep(0.0002)


def resume(dp: Dataplane) -> None:
    """Let the workers go on."""
    gen = int(dp.header[H_PAUSE])
    if gen & 1:
        _cas(dp.header, H_PAUSE, gen, gen + 1)


def forget(dp: Dataplane, owners: Iterable[int]) -> int:
    """Free the worker rows of dead members (``owners``: member rows); return how many."""
    dead = {r + 1 for r in owners}
    n = 0
    for row in range(dp.workers.shape[0]):
        owner = int(dp.workers[row, K_OWNER])
        if owner in dead and _cas(dp.workers[row], K_OWNER, owner, 0) == owner:
            n += 1
    return n
