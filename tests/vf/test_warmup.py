"""spp.control.warmup: processes compile one at a time; ``python3 -m spp.control.warmup`` fills the cache."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from spp.control import warmup


def test_compile_lock_serialises_and_gives_up_on_a_stuck_holder(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    order: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with warmup.compile_lock():
            order.append("first in")
            held.set()
            release.wait(10)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    with warmup.compile_lock():  # waits for the first holder
        order.append("second in")
    t.join(10)
    assert order == ["first in", "first out", "second in"]
    release.clear()
    held.clear()
    t = threading.Thread(target=first)
    t.start()
    held.wait(10)
    t0 = time.monotonic()
    with warmup.compile_lock(wait=0.3):  # a holder that never lets go: compile anyway, after the wait
        assert time.monotonic() - t0 >= 0.3
    release.set()
    t.join(10)
    assert (tmp_path / "spp-compile.lock").exists()


def test_fill_cache_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert warmup.main() == 0
    out = capsys.readouterr().out
    assert "data plane" in out and "compiled" in out
    assert os.environ.get("NUMBA_CACHE_DIR") is None or warmup.is_cached()
