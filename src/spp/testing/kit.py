"""Helpers for tests: a private stack that must end leak-free, and polling with a deadline."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from spp.runtime.dataplane import Dataplane, Layout

T = TypeVar("T")


class PoolLeak(AssertionError):
    """The pool was not whole when a test's stack closed."""


def unique_prefix(tag: str = "t") -> str:
    """A ``--file-prefix`` no other test or stack uses."""
    return f"{tag}{os.getpid()}x{uuid.uuid4().hex[:8]}"


def wait_for(cond: Callable[[], T], timeout: float = 10.0, interval: float = 0.005,
             message: str | Callable[[], str] = "condition") -> T:
    """Poll ``cond`` until it returns something truthy; return it or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


@contextmanager
def stack(n_bufs: int = 4096, n_rings: int = 16, ring_size: int = 512, *, prefix: str | None = None,
          check: bool = True, settle: float = 5.0) -> Iterator[Dataplane]:
    """Create a private data plane; on exit assert every buffer is free again.

    ``settle`` gives other processes or threads time to return buffers before the
    check (polled, not slept).
    """
    dp = Dataplane.create(prefix or unique_prefix(), Layout(n_bufs=n_bufs, n_rings=n_rings, ring_size=ring_size))
    ok = False
    try:
        yield dp
        ok = True
    finally:
        try:
            if ok and check:
                try:
                    wait_for(lambda: dp.free_count == dp.n_bufs, timeout=settle)
                except TimeoutError:
                    raise PoolLeak(f"pool not whole: {dp.in_use} of {dp.n_bufs} buffers still in use") from None
                if dp.double_frees:
                    raise PoolLeak(f"{dp.double_frees} references dropped on free buffers (double free)")
        finally:
            dp.close()
