"""Waiting until every worker has finished what it was doing (a grace period).

A worker's compiled loop may hold raw addresses of memory that a port's control
thread wants to unmap (a vhost guest that disconnects or sends a new memory table).
The control thread first stops publishing that memory (the port's queues are marked
not ready and the plan generation is bumped, so workers rebuild their plans), then
calls :func:`synchronize`: once every running worker has completed two more passes
of its loop, none can still be inside a burst that started before the change, and
the old mapping can go.  This is read-copy-update's grace period, with the worker's
pass counter as the quiescent state.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol


class Passes(Protocol):
    """What :func:`synchronize` needs of a worker."""

    @property
    def loops(self) -> int: ...

    @property
    def alive(self) -> bool: ...


_active: weakref.WeakSet[Passes] = weakref.WeakSet()
_lock = threading.Lock()
_local = threading.local()


def register(w: Passes) -> None:
    """``w``'s thread starts looping (call from that thread)."""
    with _lock:
        _active.add(w)
    _local.worker = w


def unregister(w: Passes) -> None:
    """``w`` stops looping (call from its thread)."""
    with _lock:
        _active.discard(w)
    if getattr(_local, "worker", None) is w:
        _local.worker = None


def synchronize(timeout: float = 2.0) -> bool:
    """Wait until every registered worker (other than the caller) has made two passes.

    Returns False if one did not within ``timeout`` seconds (a worker stuck in a long
    compile, say): the caller must then not free what the workers might still use.
    """
    me = getattr(_local, "worker", None)
    with _lock:
        snap = [(w, w.loops) for w in _active if w is not me]
    deadline = time.monotonic() + timeout
    for w, start in snap:
        while w.alive and w.loops < start + 2:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0002)
    return True
