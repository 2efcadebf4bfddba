"""spp._jitcache: a change in any compiled module drops spp's whole numba cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spp import _jitcache


def test_a_changed_compiled_module_drops_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    mod = src / "native_loop.py"
    mod.write_text("from numba import njit\n")
    cache = tmp_path / "cache"
    (cache / "runtime_x").mkdir(parents=True)
    ours = cache / "runtime_x" / "native_loop._run_core-300.py311.nbi"
    theirs = cache / "runtime_x" / "somebody_else.f-1.py311.nbi"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    monkeypatch.setattr(_jitcache, "_PKG", src)

    def make() -> None:
        ours.write_text("x")
        theirs.write_text("x")

    make()
    assert _jitcache.guard()  # no stamp yet: dropped
    assert not ours.exists() and theirs.exists()
    make()
    assert not _jitcache.guard()  # nothing changed: kept
    assert ours.exists()
    st = mod.stat()
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert _jitcache.guard()  # the module changed: dropped again
    assert not ours.exists() and theirs.exists()
