"""The port conformance suite: every driver must pass :func:`check_port`.

A driver test supplies a *factory*: a context manager that, given a data plane, opens
the port under test and yields a :class:`Harness` — the port plus a way to make frames
arrive at it from outside (``inject``) and a way to see what it transmitted
(``collect``)::

    @contextmanager
    def make_ring(dp):
        port = open_port(dp, "ring:0")
        yield Harness(port, inject=..., collect=...)
        port.close()

    def test_ring_conforms(dp):
        check_port(make_ring, dp)

What is checked (each step on fresh counters deltas, the pool whole at the end):

1. **rx burst contract** — ``rx_burst(bufs, n)`` never returns more than ``n``; every
   injected frame comes out once, byte-exact and in order; ``rx_packets``/``rx_bytes``
   grow by exactly what was received.
2. **tx burst contract** — ``tx_burst(bufs, n)`` returns ``0 <= k <= n``; the refused
   remainder ``bufs[k:n]`` is still the caller's (alive, unchanged) and is offered
   again; what the outside collects is exactly the accepted frames, in order;
   ``tx_packets``/``tx_bytes`` exact.
3. **callbacks while traffic flows** — an rx (tx) callback added between two bursts sees
   every frame of the bursts while it is attached exactly once and none after its
   removal; a filtering callback that keeps a prefix and frees the rest makes
   ``received + filtered == sent``.  Then the same while another thread keeps adding
   and removing callbacks during a stream: no frame is lost, duplicated, or seen twice
   by a callback (``callbacks_live``).
4. **bad frames** — an injected runt (< 14 bytes) is counted ``runt`` and an oversize
   frame ``too_long``, never delivered; the frames around them still arrive.
5. **pool whole** — after everything, the pool has as many free buffers as before.

Capabilities a harness can lack are flags on :class:`Harness` (e.g. a ring cannot carry
a runt, a null port cannot be injected into).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from spp.ports.base import Port
from spp.runtime.dataplane import DATA_ROOM, Dataplane
from spp.runtime.stats import RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, drop_field
from spp.testing.kit import wait_for
from spp.testing.packets import frame_number, numbered


@dataclass
class Harness:
    """The port under test and its outside world.

    * ``inject(frames)`` makes ``frames`` arrive at the port (``None``: the port is a
      source that needs no input, such as ``nullpmd``; then ``source_frame`` is what
      every received frame looks like).
    * ``collect(count, timeout)`` returns the frames the port transmitted since the last
      call, waiting up to ``timeout`` s for ``count`` of them (``None``: transmitted
      frames cannot be observed; only counters are checked).
    * ``runt``/``oversize``: whether the outside can deliver a runt/an oversize frame.
    * ``ordered``: whether frames keep their order through the port.
    """

    port: Port
    inject: Callable[[list[bytes]], None] | None
    collect: Callable[[int, float], list[bytes]] | None
    runt: bool = True
    oversize: bool = True
    oversize_len: int = DATA_ROOM + 1
    ordered: bool = True
    source_frame: bytes | None = None
    timeout: float = 30.0
    sizes: tuple[int, ...] = (60, 64, 128, 511, 1000, 1514)
    notes: list[str] = field(default_factory=list)


Factory = Callable[[Dataplane], AbstractContextManager[Harness]]


class ConformanceError(AssertionError):
    """A port broke the contract; the message names the step and what differed."""


def _fail(step: str, msg: str) -> ConformanceError:
    return ConformanceError(f"[{step}] {msg}")


def check_port(factory: Factory, dp: Dataplane | None = None) -> list[str]:
    """Run every check against a port made by ``factory``; return the names of the steps run.

    ``dp`` defaults to a private leak-checked stack (:func:`spp.testing.stack`).  Raises
    :class:`ConformanceError` on the first violation.
    """
    if dp is None:
        from spp.testing.kit import stack

        with stack() as own:
            return check_port(factory, own)
    base_free = dp.free_count
    steps: list[str] = []
    with factory(dp) as h:
        _check_rx(dp, h, steps)
        _check_tx(dp, h, steps)
        _check_rx_callbacks(dp, h, steps)
        _check_tx_callbacks(dp, h, steps)
        _check_bad_frames(dp, h, steps)
        _check_callbacks_live(dp, h, steps)
    try:
        wait_for(lambda: dp.free_count == base_free, timeout=10)
    except TimeoutError:
        raise _fail("pool", f"{base_free - dp.free_count} buffers not returned to the pool") from None
    steps.append("pool")
    return steps


# -- helpers --------------------------------------------------------------------


class _Counters:
    def __init__(self, port: Port) -> None:
        self.port = port
        self.before = port.stats.copy()

    def delta(self, field_: int) -> int:
        return int(self.port.stats[field_] - self.before[field_])

    def drop(self, reason: str) -> int:
        return self.delta(drop_field(reason))


def _frames(h: Harness, start: int, count: int) -> list[bytes]:
    if h.source_frame is not None:
        return [h.source_frame] * count
    return [numbered(start + i, size=h.sizes[(start + i) % len(h.sizes)]) for i in range(count)]


def _receive(dp: Dataplane, h: Harness, count: int, step: str, burst: int = 7,
             until: Callable[[], bool] | None = None) -> list[bytes]:
    """Poll ``rx_burst`` with small bursts until ``count`` frames came (and ``until()``); check ``k <= n``."""
    bufs = np.full(burst + 8, -1, np.int32)
    got: list[bytes] = []

    def poll() -> bool:
        while len(got) < count or (until is not None and not until()):
            n = max(1, min(burst, count - len(got)))
            k = h.port.rx_burst(bufs, n)
            if not 0 <= k <= n:
                raise _fail(step, f"rx_burst(bufs, {n}) returned {k}: must be 0..{n}")
            got.extend(dp.frame(int(b)) for b in bufs[:k])
            dp.free(bufs[:k].copy(), k)
            if k == 0:
                return False
        return True

    try:
        wait_for(poll, timeout=h.timeout)
    except TimeoutError:
        raise _fail(step, f"received {len(got)} of {count} frames within {h.timeout}s") from None
    return got


def _same(step: str, h: Harness, got: list[bytes], want: list[bytes]) -> None:
    if not h.ordered:
        got, want = sorted(got), sorted(want)
    if len(got) != len(want):
        raise _fail(step, f"expected {len(want)} frames, got {len(got)}")
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if a != b:
            raise _fail(step, f"frame {i} differs: got {len(a)} bytes {a[:32].hex()}..., "
                              f"expected {len(b)} bytes {b[:32].hex()}...")


def _load(dp: Dataplane, frames: list[bytes]) -> np.ndarray:
    ids = np.zeros(len(frames), np.int32)
    if dp.alloc(ids) != len(frames):
        raise _fail("setup", "pool too small for the test burst")
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    return ids


def _send(dp: Dataplane, h: Harness, frames: list[bytes], step: str, burst: int = 32) -> int:
    """Transmit ``frames`` through the port in bursts, re-offering refused remainders first.

    Checks ``0 <= k <= n`` and that each refused buffer is alive, unchanged and one of
    the frames offered (a tx callback may have reordered by compacting).  Returns how many
    frames the port took.
    """
    ids = _load(dp, frames)
    by_id = {int(b): f for b, f in zip(ids, frames, strict=True)}
    pending = list(ids)
    total = len(frames)

    def progress() -> bool:
        nonlocal pending
        while pending:
            n = min(burst, len(pending))
            chunk = np.array(pending[:n], np.int32)
            offered = {int(b) for b in chunk}
            k = h.port.tx_burst(chunk, n)
            if not 0 <= k <= n:
                raise _fail(step, f"tx_burst(bufs, {n}) returned {k}: must be 0..{n}")
            rest = [int(b) for b in chunk[k:n]]
            for b in rest:
                if b not in offered or dp.refcnt[b] < 1 or dp.frame(b) != by_id[b]:
                    raise _fail(step, f"tx_burst took {k} of {n} but refused buffer {b} is not an intact "
                                      "offered frame (the remainder must stay the caller's, unchanged)")
            if len(set(rest)) != len(rest):
                raise _fail(step, f"tx_burst returned a remainder with duplicates: {rest}")
            pending = rest + pending[n:]
            if k < n:
                return False
        return True

    try:
        wait_for(progress, timeout=h.timeout, interval=0.001)
    except TimeoutError:
        left = len(pending)
        dp.free(np.array(pending, np.int32), left)
        h.port.count_drop(h.port.full_reason, left)
        raise _fail(step, f"port accepted only {total - left} of {total} frames within {h.timeout}s") from None
    return total


# -- steps ----------------------------------------------------------------------


def _check_rx(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    step = "rx"
    c = _Counters(h.port)
    frames = _frames(h, 0, 60)
    if h.inject is not None:
        h.inject(frames)
    got = _receive(dp, h, len(frames), step)
    if h.inject is not None:
        _same(step, h, got, frames)
    elif h.source_frame is not None and any(g != h.source_frame for g in got):
        raise _fail(step, "a source port delivered a frame different from its template")
    nbytes = sum(len(f) for f in got)
    if c.delta(RX_PACKETS) != len(got) or c.delta(RX_BYTES) != nbytes:
        raise _fail(step, f"counters rx_packets +{c.delta(RX_PACKETS)} rx_bytes +{c.delta(RX_BYTES)}, "
                          f"expected +{len(got)} and +{nbytes}")
    steps.append(step)


def _check_tx(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    step = "tx"
    c = _Counters(h.port)
    frames = [numbered(1000 + i, size=h.sizes[i % len(h.sizes)]) for i in range(200)]
    sent = _send(dp, h, frames, step, burst=64)
    if h.collect is not None:
        out = h.collect(sent, h.timeout)
        _same(step, h, out, frames[:sent])
    nbytes = sum(len(f) for f in frames[:sent])
    if c.delta(TX_PACKETS) != sent or c.delta(TX_BYTES) != nbytes:
        raise _fail(step, f"counters tx_packets +{c.delta(TX_PACKETS)} tx_bytes +{c.delta(TX_BYTES)}, "
                          f"expected +{sent} and +{nbytes}")
    steps.append(step)


def _recorder(dp: Dataplane, seen: list[int], drop_odd: bool) -> Callable[[Port, np.ndarray, int], int]:
    def cb(port: Port, bufs: np.ndarray, n: int) -> int:
        keep = 0
        dropped: list[int] = []
        for i in range(n):
            b = int(bufs[i])
            num = frame_number(dp.frame(b))
            seen.append(num)
            if drop_odd and num % 2:
                dropped.append(b)
            else:
                bufs[keep] = b
                keep += 1
        if dropped:
            dp.free(np.array(dropped, np.int32), len(dropped))
            port.count_drop("filtered", len(dropped))
        return keep

    return cb


def _check_rx_callbacks(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    step = "rx_callbacks"
    if h.inject is None:
        h.notes.append("rx callbacks: skipped (source port)")
        return
    seen: list[int] = []
    filt: list[int] = []
    c = _Counters(h.port)
    a, b, d = _frames(h, 100, 20), _frames(h, 200, 20), _frames(h, 300, 20)
    h.inject(a)
    got_a = _receive(dp, h, 20, step)
    cb = h.port.add_rx_callback(_recorder(dp, seen, False))
    cb2 = h.port.add_rx_callback(_recorder(dp, filt, True))
    h.inject(b)
    # The filter keeps the 10 even-numbered frames; wait until the callbacks saw all 20.
    got_b = _receive(dp, h, 10, step, until=lambda: len(filt) >= 20)
    h.port.remove_rx_callback(cb)
    h.port.remove_rx_callback(cb2)
    h.inject(d)
    got_d = _receive(dp, h, 20, step)
    want_b = [frame_number(f) for f in b]
    if sorted(seen) != sorted(want_b) or len(seen) != len(set(seen)):
        raise _fail(step, f"callback saw {sorted(seen)}, expected each of {want_b} exactly once")
    if sorted(filt) != sorted(want_b):
        raise _fail(step, f"second callback saw {sorted(filt)}, expected {want_b}")
    _same(step, h, got_a, a)
    _same(step, h, got_b, [f for f in b if frame_number(f) % 2 == 0])
    _same(step, h, got_d, d)
    if c.drop("filtered") != 10:
        raise _fail(step, f"filtered drops +{c.drop('filtered')}, expected +10")
    if c.delta(RX_PACKETS) != 60:
        raise _fail(step, f"rx_packets +{c.delta(RX_PACKETS)}, expected +60 (callbacks run after counting)")
    steps.append(step)


def _check_tx_callbacks(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    step = "tx_callbacks"
    seen: list[int] = []
    filt: list[int] = []
    c = _Counters(h.port)
    a = [numbered(400 + i, size=100) for i in range(20)]
    b = [numbered(500 + i, size=100) for i in range(20)]
    d = [numbered(600 + i, size=100) for i in range(20)]
    sa = _send(dp, h, a, step)
    cb = h.port.add_tx_callback(_recorder(dp, seen, False))
    cb2 = h.port.add_tx_callback(_recorder(dp, filt, True))
    sb = _send(dp, h, b, step)
    h.port.remove_tx_callback(cb)
    h.port.remove_tx_callback(cb2)
    sd = _send(dp, h, d, step)
    want_b = [frame_number(f) for f in b]
    if sorted(seen) != sorted(want_b) or len(seen) != len(set(seen)):
        raise _fail(step, f"tx callback saw {sorted(seen)}, expected each of {want_b} exactly once")
    if sorted(filt) != sorted(want_b):
        raise _fail(step, f"second tx callback saw {sorted(filt)}, expected {want_b}")
    if c.drop("filtered") != 10:
        raise _fail(step, f"filtered drops +{c.drop('filtered')}, expected +10")
    kept_b = [f for f in b if frame_number(f) % 2 == 0]
    if h.collect is not None:
        out = h.collect(sa + 10 + sd, h.timeout)
        _same(step, h, out, a + kept_b + d)
    if c.delta(TX_PACKETS) != 50 or sa + sb + sd != 60:
        raise _fail(step, f"tx_packets +{c.delta(TX_PACKETS)}, expected +50 (60 offered, 10 filtered)")
    steps.append(step)


def _check_bad_frames(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    step = "bad_frames"
    if h.inject is None or not (h.runt or h.oversize):
        h.notes.append("bad frames: skipped (cannot be injected)")
        return
    c = _Counters(h.port)
    good = _frames(h, 700, 3)
    batch = [good[0]]
    if h.runt:
        batch.append(b"\x01" * 10)
    batch.append(good[1])
    if h.oversize:
        batch.append(numbered(701, size=h.oversize_len))
    batch.append(good[2])
    h.inject(batch)
    got = _receive(dp, h, 3, step)
    _same(step, h, got, good)

    def counted() -> bool:
        return (c.drop("runt") == int(h.runt)) and (c.drop("too_long") == int(h.oversize))

    try:
        wait_for(counted, timeout=5)
    except TimeoutError:
        raise _fail(step, f"runt +{c.drop('runt')} too_long +{c.drop('too_long')}, expected "
                          f"+{int(h.runt)} and +{int(h.oversize)}") from None
    steps.append(step)


def _check_callbacks_live(dp: Dataplane, h: Harness, steps: list[str]) -> None:
    """Callbacks toggled by another thread while frames stream through rx and tx."""
    import threading

    step = "callbacks_live"
    rx_seen: list[int] = []
    tx_seen: list[int] = []
    stop = threading.Event()
    toggles = [0]

    def toggler() -> None:
        rcb = _recorder(dp, rx_seen, False)
        tcb = _recorder(dp, tx_seen, False)
        while not stop.is_set():
            if h.inject is not None:
                h.port.add_rx_callback(rcb)
            h.port.add_tx_callback(tcb)
            stop.wait(0.0005)
            if h.inject is not None:
                h.port.remove_rx_callback(rcb)
            h.port.remove_tx_callback(tcb)
            toggles[0] += 1
            stop.wait(0.0005)

    t = threading.Thread(target=toggler, name="conformance-toggler")
    t.start()
    try:
        got: list[bytes] = []
        out: list[bytes] = []
        frames: list[bytes] = []
        for chunk in range(8):
            part = [numbered(800 + 25 * chunk + i, size=h.sizes[i % len(h.sizes)]) for i in range(25)]
            frames += part
            if h.inject is not None:
                h.inject(part)
                got += _receive(dp, h, len(part), step, burst=4)
            _send(dp, h, part, step, burst=4)
            if h.collect is not None:
                out += h.collect(len(part), h.timeout)
    finally:
        stop.set()
        t.join()
    if h.inject is not None:
        _same(step, h, got, frames)
        if len(rx_seen) != len(set(rx_seen)) or not set(rx_seen) <= {frame_number(f) for f in frames}:
            raise _fail(step, "an rx callback saw a frame twice or a frame that was not sent")
    if h.collect is not None:
        _same(step, h, out, frames)
    if len(tx_seen) != len(set(tx_seen)):
        raise _fail(step, "a tx callback saw a frame twice")
    steps.append(step)


def iter_steps() -> Iterator[str]:
    """Names of the checks, in order."""
    yield from ("rx", "tx", "rx_callbacks", "tx_callbacks", "bad_frames", "callbacks_live", "pool")
