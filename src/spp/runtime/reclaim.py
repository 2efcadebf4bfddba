"""Give back what a dead process held: buffers, references, half-done ring operations.

A process killed under traffic dies holding buffers (a burst in its hands, its
transmit buffers, its local buffer cache) and possibly a claim on a ring (it moved a
ring's producer or consumer head but not yet its tail).  Nothing else will ever
return those buffers, and a claim left open stalls the ring.

With the world stopped (:mod:`spp.runtime.pause`: every live worker waits between
calls, holding nothing), every reference to a buffer is either a free-list entry or
a ring entry; any other reference belongs to the dead.  :func:`sweep` therefore

1. closes the operations dead processes left open on rings (:func:`ringcore.recover`):
   ids a dead producer wrote are published, slots it reserved but never wrote are
   dropped (counted; those frames died in its hands), ids a dead consumer reserved
   go back to the ring (it died before handing them to anybody);
2. counts each buffer's ring entries and marks the free ones;
3. sets each in-use buffer's reference count to its ring entries: a buffer with
   none goes back to the pool (``reclaimed``), a shared one loses only the dead
   process's references.

It never returns a buffer that a live process can still reach, and never one twice:
the free list is read, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from spp.runtime import members, pause, ringcore
from spp.runtime.dataplane import H_RECLAIMED, Dataplane


@njit(cache=True, nogil=True)
def sweep(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, ring_ctrl: np.ndarray,
          ring_slots: np.ndarray, out: np.ndarray) -> tuple[int, int, int]:
    """With the world stopped: return (buffers reclaimed, references dropped, ring entries dropped).

    ``out`` is scratch of at least ``refcnt.shape[0]`` ids.
    """
    n = refcnt.shape[0]
    dropped = ringcore.recover(pctrl, pslots)[0]
    refs = np.zeros(n, np.int64)
    for r in range(ring_ctrl.shape[0]):
        ctrl = ring_ctrl[r]
        dropped += ringcore.recover(ctrl, ring_slots[r])[0]
        mask = ring_slots.shape[1] - 1
        for i in range(ctrl[ringcore.C_TAIL], ctrl[ringcore.P_TAIL]):
            refs[ring_slots[r, i & mask]] += 1
    free = np.zeros(n, np.bool_)
    pmask = pslots.shape[0] - 1
    for i in range(pctrl[ringcore.C_TAIL], pctrl[ringcore.P_TAIL]):
        free[pslots[i & pmask]] = True
    bufs = 0
    extra = 0
    for b in range(n):
        if free[b]:
            continue
        want = refs[b]
        have = refcnt[b]
        if want == 0:
            refcnt[b] = 0
            out[bufs] = b
            bufs += 1
            extra += max(have, 1)
        elif have > want:
            extra += have - want
            refcnt[b] = want
    if bufs:
        ringcore.ring_enqueue(pctrl, pslots, out, 0, bufs)
    return bufs, extra, dropped


@dataclass(frozen=True)
class Reclaimed:
    """What one reclaim gave back, and for whom."""

    dead: list[int]  # PIDs
    buffers: int = 0
    references: int = 0
    ring_entries: int = 0
    #: False: a live worker did not pause in time (a stopped process?): nothing was done, try later.
    done: bool = True

    def __str__(self) -> str:
        who = ", ".join(f"pid {p}" for p in self.dead)
        if not self.done:
            return (f"cannot reclaim what dead {who} held yet: a worker of a live process did not pause "
                    "(stopped?); trying again")
        return (f"reclaimed {self.buffers} buffers ({self.references} references) held by dead {who}; "
                f"{self.ring_entries} unpublished ring entries dropped")


def dead_members(dp: Dataplane) -> dict[int, int]:
    """Member rows whose process is gone (row → PID)."""
    out = {}
    table = dp.members
    for row in range(table.shape[0]):
        pid = int(table[row, members.W_PID])
        if pid > 0 and members.start_time(pid) != int(table[row, members.W_START]):
            out[row] = pid
    return out


def reclaim_dead(dp: Dataplane, *, timeout: float = 1.0) -> Reclaimed | None:
    """If a member of the stack died, stop the world, sweep, resume; None if nobody died.

    A result with ``done`` False: the world could not be stopped (a live worker did not
    answer within ``timeout``); nothing was changed, call again later.
    """
    dead = dead_members(dp)
    if not dead:
        return None
    live_rows = [r for r in range(dp.members.shape[0])
                 if int(dp.members[r, members.W_PID]) > 0 and r not in dead]
    if not pause.stop_world(dp, live_rows, timeout=timeout):
        return Reclaimed(sorted(dead.values()), done=False)
    try:
        out = np.empty(dp.n_bufs, np.int32)
        bufs, refs, entries = sweep(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.ring_ctrl, dp.ring_slots, out)
        pause.forget(dp, dead)
        for row, pid in dead.items():
            members.leave_for(dp.members, row, pid)
    finally:
        pause.resume(dp)
    dp.header[H_RECLAIMED] += int(bufs)
    return Reclaimed(sorted(dead.values()), int(bufs), int(refs), int(entries))
