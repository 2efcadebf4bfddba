"""spp._jitcache: a change in code compiled functions can see drops spp's numba cache, and only spp's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spp import _jitcache


def _touch(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake spp package: a compiled module taking a constant from a module without numba."""
    src = tmp_path / "src" / "spp"
    _touch(src / "__init__.py", "")
    _touch(src / "runtime" / "__init__.py", "")
    _touch(src / "runtime" / "loop.py", "from numba import njit\nfrom spp.ports.consts import R_ADDR\n")
    _touch(src / "ports" / "__init__.py", "")
    _touch(src / "ports" / "consts.py", "from .more import BASE\nR_ADDR = BASE + 1\n")  # no numba
    _touch(src / "ports" / "more.py", "BASE = 0\n")
    _touch(src / "cli" / "__init__.py", "")
    _touch(src / "cli" / "main.py", "print('hello')\n")  # nothing compiled imports it
    monkeypatch.setattr(_jitcache, "_PKG", src)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    return src


def _entry(pkg_dir: Path, name: str) -> Path:
    """A cache entry where numba puts it for a function of a module in ``pkg_dir``."""
    (d,) = {*_jitcache.cache_dirs_for(pkg_dir)}
    p = d / name
    _touch(p, "x")
    return p


def test_a_changed_compiled_module_drops_the_cache(pkg: Path) -> None:
    ours = _entry(pkg / "runtime", "loop.run-3.py311.nbi")
    assert _jitcache.guard()  # no stamp yet: dropped
    assert not ours.exists()
    ours = _entry(pkg / "runtime", "loop.run-3.py311.nbi")
    assert not _jitcache.guard()  # nothing changed: kept
    assert ours.exists()
    (pkg / "runtime" / "loop.py").write_text("from numba import njit\nfrom spp.ports.consts import R_ADDR\n# x\n")
    assert _jitcache.guard()  # the module changed: dropped again
    assert not ours.exists()


@pytest.mark.parametrize("module", ["consts.py", "more.py"])
def test_a_constant_from_a_module_without_numba_counts(pkg: Path, module: str) -> None:
    _jitcache.guard()
    ours = _entry(pkg / "runtime", "loop.run-3.py311.nbc")
    (pkg / "ports" / module).write_text((pkg / "ports" / module).read_text().replace("1", "2").replace("0", "8"))
    assert _jitcache.guard()  # R_ADDR (imported directly, or through a relative import) may have changed
    assert not ours.exists()


def test_front_ends_do_not_count(pkg: Path) -> None:
    _jitcache.guard()
    ours = _entry(pkg / "runtime", "loop.run-3.py311.nbi")
    (pkg / "cli" / "main.py").write_text("print('changed')\n")
    os.utime(pkg / "runtime" / "loop.py")  # a new mtime with the same contents is no change either
    assert not _jitcache.guard()
    assert ours.exists()
    sources = {p.relative_to(pkg).as_posix() for p in _jitcache._compiled_sources()}
    assert sources == {"__init__.py", "runtime/loop.py", "ports/__init__.py",
                       "ports/consts.py", "ports/more.py"}


def test_another_projects_entries_in_a_shared_cache_survive(pkg: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "runtime"  # same directory and module names as spp's
    _touch(other / "stats.py", "")
    theirs = [_entry(other, "stats.stat_add-10.py311.nbi"), _entry(other, "loop.run-3.py311.nbc")]
    stray = tmp_path / "cache" / "loop.run-3.py311.nbi"  # not in any source directory's cache dir
    _touch(stray, "x")
    ours = _entry(pkg / "runtime", "loop.run-3.py311.nbi")
    assert _jitcache.guard()
    assert not ours.exists()
    assert all(p.exists() for p in theirs) and stray.exists()


def test_cache_dirs_are_where_numba_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real compiled function: its cache files land in the directory the guard cleans."""
    mod = tmp_path / "mods" / "tiny_jit_mod.py"
    _touch(mod, textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def twice(x):
            return 2 * x
    """))
    cache = tmp_path / "cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": f"{mod.parent}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-c", "import tiny_jit_mod; assert tiny_jit_mod.twice(2) == 4"],
                   env=env, check=True, timeout=120)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    dirs = _jitcache.cache_dirs_for(mod.parent)
    written = {p.parent for p in cache.rglob("tiny_jit_mod.twice-*.nbi")}
    assert written and written <= set(dirs)
