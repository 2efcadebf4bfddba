"""Python called from the compiled worker loop, once per burst.

Everything on the data path has a compiled kernel except what users write in Python:
a port driver without a compiled body (a test's fake port, a user's own driver), a
component without one, and port callbacks that are not compiled port mirrors (a
mirror's Python burst filter, any other rx/tx callback).  The loop reaches those
through a *hook*: a Python function ``hook(n) -> m`` registered here, called from
compiled code (numba's object mode, which takes the GIL for the call: about a
microsecond) with the burst in the hook's row of the plan's ``pyio`` array.

A hook never raises into the loop: an exception is logged once per hook and the burst
is treated as the hook's kind says (:func:`guard`).  Hooks are registered when a plan
is built and released when it is replaced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Hook = Callable[[int], int]

_hooks: list[Hook | None] = []
_free: list[int] = []
_lock = threading.Lock()


def register(hook: Hook) -> int:
    """Make ``hook`` callable from compiled code; return its id."""
    with _lock:
        if _free:
            h = _free.pop()
            _hooks[h] = hook
        else:
            h = len(_hooks)
            _hooks.append(hook)
        return h


def release(h: int) -> None:
    """Forget hook ``h`` (its id may be given to another hook)."""
    with _lock:
        if 0 <= h < len(_hooks) and _hooks[h] is not None:
            _hooks[h] = None
            _free.append(h)


def call_hook(h: int, n: int) -> int:
    """Run hook ``h`` on a burst of ``n`` (the compiled loop's one way into Python)."""
    hook = _hooks[h]
    return 0 if hook is None else hook(n)


def guard(name: str, fallback: int, fn: Hook) -> Hook:
    """``fn`` made safe for the loop: an exception is logged (once) and ``fallback`` returned
    (-1 on transmit: the frames count ``link_down``; 0 on receive: nothing arrived; for a
    callback, ``n``: the burst passes untouched)."""
    failed = False

    def hook(n: int) -> int:
        nonlocal failed
        try:
            return fn(n)
        except Exception:
            if not failed:
                failed = True
                log.exception("%s failed in the worker loop (logged once)", name)
            return n if fallback == -2 else fallback

    return hook
