"""One shared poller feeding every open topology page.

:class:`UiHub` polls the stack once per ``interval`` while at least one page
stream is open (never once per page), builds one snapshot
(:func:`~spp.ctl.ui.snapshot.build_snapshot`), encodes it once, and wakes
every stream.  A stream that falls behind only ever gets the newest snapshot.

Each process is asked on its own task.  A process that does not answer within
the tick is shown as down ("no answer for N s") and is not asked again until
its request in flight ends: a request is never cancelled, because cancelling
one drops the process's connection (see :mod:`spp.ctl.connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from spp.ctl.controller import PRIMARY, Controller, ProcessKey
from spp.ctl.errors import CtlError
from spp.ctl.ui.snapshot import RateMemory, Reading, build_snapshot

LOG = logging.getLogger(__name__)

DEFAULT_INTERVAL: Final = 1.0
"""Seconds between two polls (the page updates at least once a second)."""

GONE_LINGER: Final = 30.0
"""Seconds a process that left stays on the page, shown as down."""

KEEPALIVE: Final = 15.0
"""Seconds of silence after which a stream sends an SSE comment."""


class Subscription:
    """One open stream; :meth:`close` (idempotent) frees it."""

    def __init__(self, hub: UiHub) -> None:
        self._hub = hub
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub._unsubscribe(self)


class UiHub:
    """The poller of one spp-ctl app (see the module docstring)."""

    def __init__(
        self,
        controller: Controller,
        interval: float = DEFAULT_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.controller = controller
        self.interval = interval
        self.clock = clock
        self.wall = wall
        self.seq = 0
        self.latest: bytes | None = None
        self.latest_at: float | None = None
        self.polls = 0
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[ProcessKey, asyncio.Task[None]] = {}
        self._readings: dict[ProcessKey, Reading] = {}
        self._mirrors: list[Any] | None = None
        self._mirror_error: str | None = None
        self._rates = RateMemory()
        self._changed: asyncio.Event | None = None
        self._tick_lock: asyncio.Lock | None = None

    @property
    def streams(self) -> int:
        """How many streams are open."""
        return len(self._subs)

    # -- streams ---------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Open a stream; polling runs while any is open."""
        sub = Subscription(self)
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="spp-ctl ui poller")
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def events(self, sub: Subscription) -> AsyncIterator[bytes]:
        """The ``text/event-stream`` body of ``sub``: one ``data:`` line per snapshot."""
        yield f"retry: 2000\n: spp-ctl topology stream, one snapshot every {self.interval:g} s\n\n".encode()
        fresh = self.latest_at is not None and self.clock() - self.latest_at < 2 * self.interval
        seen = -1 if fresh else self.seq  # a page opens on the newest snapshot, unless it is old
        while not sub.closed:
            if self.latest is not None and self.seq != seen:
                seen = self.seq
                yield b"id: %d\ndata: %s\n\n" % (seen, self.latest)
                continue
            if not await self._wait_changed(KEEPALIVE):
                yield b": keepalive\n\n"

    async def _wait_changed(self, timeout: float) -> bool:
        event = self._event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        return False

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _publish(self, data: bytes) -> None:
        self.latest = data
        self.latest_at = self.clock()
        old = self._event()
        self._changed = asyncio.Event()
        old.set()

    # -- polling ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._subs:
                started = self.clock()
                try:
                    await self.tick()
                except Exception:
                    LOG.exception("topology poller: tick failed")
                left = self.interval - (self.clock() - started)
                if left > 0 and self._subs:
                    await asyncio.sleep(left)
        finally:
            self._task = None

    async def snapshot(self) -> bytes:
        """The poller's newest snapshot while streams are open (at most one interval old), else polled now."""
        if self.latest is not None and self.latest_at is not None and self._subs \
                and self.clock() - self.latest_at < 2 * self.interval:
            return self.latest
        if self._tick_lock is not None and self._tick_lock.locked():
            async with self._tick_lock:  # a poll is under way: share its result
                pass
        else:
            await self.tick()
        assert self.latest is not None
        return self.latest

    async def tick(self) -> None:
        """Ask every process for its status (bounded wait), publish one snapshot."""
        if self._tick_lock is None:
            self._tick_lock = asyncio.Lock()
        async with self._tick_lock:
            await self._tick()

    async def _tick(self) -> None:
        now = self.clock()
        connected = set(self.controller.processes())
        for key, reading in list(self._readings.items()):
            if key not in connected:
                if reading.gone_since is None:
                    reading.gone_since = now
                elif now - reading.gone_since > GONE_LINGER:
                    del self._readings[key]
        for key in connected:
            known = self._readings.get(key)
            if known is None or known.gone_since is not None:
                known = self._readings[key] = Reading(key.kind, key.client_id)
            task = self._inflight.get(key)
            if task is None or task.done():
                self._inflight[key] = asyncio.create_task(self._query(key, known), name=f"ui status {key}")
        pending = [t for k, t in self._inflight.items() if k in connected and not t.done()]
        grace = 0.8 * self.interval
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for key in [k for k, t in self._inflight.items() if t.done()]:
            del self._inflight[key]
        self.polls += 1
        self.seq += 1
        primary = self._readings.get(ProcessKey(PRIMARY))
        primary_info = primary.status if primary is not None and primary.error is None \
            and primary.gone_since is None else None
        errors = [f"port mirrors: {self._mirror_error}"] if self._mirror_error else []
        readings = sorted(self._readings.items(), key=lambda kv: kv[0].sort_key())
        snap = build_snapshot(
            [r for _, r in readings], primary=primary_info, port_mirrors=self._mirrors, rates=self._rates,
            now=self.clock(), wall=self.wall(), interval=self.interval, grace=0.75 * self.interval, seq=self.seq,
            streams=len(self._subs), errors=errors,
        )
        self._publish(json.dumps(snap, separators=(",", ":"), default=str).encode())

    async def _query(self, key: ProcessKey, reading: Reading) -> None:
        reading.waiting_since = self.clock()
        try:
            if key.kind == PRIMARY:
                status = await self.controller.primary_status()
                await self._query_mirrors()
            elif key.kind in ("vf", "mirror"):
                assert key.client_id is not None
                status = await self.controller.status(key.kind, key.client_id)
            else:
                reply = await self.controller.send(key.kind, key.client_id, "status")
                info = reply.get("info")
                status = info if isinstance(info, dict) else {k: v for k, v in reply.items() if k != "results"}
            reading.status = status
            reading.error = None
            reading.answered_at = self.clock()
        except CtlError as exc:
            reading.error = str(exc)
        except Exception as exc:  # a bug must not stop the page
            LOG.exception("topology poller: status of %s", key)
            reading.error = f"internal error: {exc}"
        finally:
            reading.waiting_since = None

    async def _query_mirrors(self) -> None:
        from spp.ctl.port_mirrors import list_port_mirrors

        try:
            self._mirrors = await list_port_mirrors(self.controller)
            self._mirror_error = None
        except CtlError as exc:
            self._mirror_error = str(exc)
