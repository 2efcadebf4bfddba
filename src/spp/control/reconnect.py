"""What the primary and the secondaries share about their connection to spp-ctl.

* :class:`Backoff`: the wait between connection attempts, doubling from 0.1 s to
  5 s, reset only once a connection has lasted a while (a connection that spp-ctl
  closes at once does not restart the fast retries); it says when to log: the first
  failure, then once a minute, at INFO (the rest at DEBUG).
* :func:`identity`: the process's own id in the ``_get_client_id`` reply (``pid`` and
  an ``instance`` token), so that spp-ctl tells a reconnect of the same process from a
  second process claiming the same id.
* :data:`REFUSE`: the command spp-ctl sends a newcomer whose id another live process
  holds (``_refuse MESSAGE``); the newcomer answers, logs the message and exits non-zero.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

BACKOFF_MIN: Final = 0.1
BACKOFF_MAX: Final = 5.0
LOG_EVERY: Final = 60.0
STABLE_AFTER: Final = 10.0
"""A connection that lasted this long resets the backoff to its minimum."""

REFUSE: Final = "_refuse"

_INSTANCE: Final = secrets.token_hex(8)


def identity() -> dict[str, Any]:
    """``{"pid": ..., "instance": ...}``: this process, for the ``_get_client_id`` reply."""
    return {"pid": os.getpid(), "instance": f"{os.getpid()}-{_INSTANCE}"}


def refusal(command: str) -> str | None:
    """The message of a ``_refuse MESSAGE`` command, or None for any other command."""
    head, _, message = command.strip("\0\r\n\t ").partition(" ")
    if head != REFUSE:
        return None
    return message.strip() or "refused by spp-ctl"


class Backoff:
    """Exponential backoff with rate-limited logging; ``clock`` is injectable for tests."""

    def __init__(self, minimum: float = BACKOFF_MIN, maximum: float = BACKOFF_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.clock = clock
        self.delay = minimum
        self.failures = 0
        self._last_log: float | None = None
        self._connected_at: float | None = None

    def failed(self) -> tuple[float, bool]:
        """One more failure: ``(seconds to wait, whether to log it at INFO)``."""
        now = self.clock()
        if self._connected_at is not None and now - self._connected_at >= STABLE_AFTER:
            self.delay = self.minimum
            self._last_log = None
        self._connected_at = None
        delay = self.delay
        self.delay = min(self.delay * 2, self.maximum)
        self.failures += 1
        loud = self._last_log is None or now - self._last_log >= LOG_EVERY
        if loud:
            self._last_log = now
        return delay, loud

    def connected(self) -> None:
        """A connection was made (the backoff resets once it has lasted :data:`STABLE_AFTER`)."""
        self._connected_at = self.clock()
