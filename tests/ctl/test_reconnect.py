"""The reconnect backoff shared by spp-primary and the secondaries."""

from __future__ import annotations

from spp.control.reconnect import BACKOFF_MAX, Backoff, refusal


def test_backoff_doubles_to_the_cap_and_logs_once_a_minute() -> None:
    now = [0.0]
    backoff = Backoff(clock=lambda: now[0])
    delays, loud = [], []
    for _ in range(200):  # far more attempts than a minute holds at the cap
        delay, log = backoff.failed()
        delays.append(delay)
        loud.append(log)
        now[0] += delay
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == BACKOFF_MAX
    minutes = now[0] / 60
    assert loud[0] and sum(loud) <= minutes + 1


def test_a_connection_dropped_at_once_does_not_restart_fast_retries() -> None:
    now = [0.0]
    backoff = Backoff(clock=lambda: now[0])
    for _ in range(10):
        backoff.failed()
    backoff.connected()
    now[0] += 0.5
    assert backoff.failed() == (BACKOFF_MAX, False)
    backoff.connected()
    now[0] += 30  # a stable connection resets it
    assert backoff.failed() == (0.1, True)


def test_refusal_message() -> None:
    assert refusal("_refuse client id 1 is already used by vf 1\n") == "client id 1 is already used by vf 1"
    assert refusal("status") is None
