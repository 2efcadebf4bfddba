"""Keep numba's on-disk cache consistent across modules.

numba keys a cached function on its own source file only.  A compiled function that
calls compiled code of another module (the worker loop calls the ring, pool and vhost
bodies, which are linked into it) is therefore loaded from the cache *with the old
callee* after that other module changed: wrong speed at best (a stale vhost body made
the loop eight times slower), a crash at worst.  The same holds for constants: a
global a compiled function reads (``vhost_mem.R_*``, ``vhost_port.RXQ``) is frozen
into the machine code, whatever module it comes from, numba or not.

:func:`guard` runs once at import of ``spp``.  It fingerprints the *contents* of
every spp module compiled code can see: the modules that import numba and,
transitively, every spp module they import (``from spp.x import C``, ``import
spp.x``, relative imports, anywhere in the file).  That is a superset of what can
end up frozen in compiled code, so the cache is never stale; the front ends (CLI,
spp-ctl, bench, docs) are outside it, so editing them does not cost a minute of
recompiling.  (Fingerprinting every ``.py`` of the package would be simpler but
would drop the cache on every CLI edit.)  If the fingerprint changed since the cache
was written, spp's cached functions are dropped and compiled again on first use.

Only spp's entries are dropped, never another project's in a shared
``NUMBA_CACHE_DIR``: numba puts a function's entries in a directory named after the
*directory of its source file* (``<dirname>_<sha1 of its absolute path>`` under
``NUMBA_CACHE_DIR`` or the user-wide cache, ``__pycache__`` beside the source
otherwise; see ``numba.core.caching._CacheLocator.get_suitable_cache_subpath``), and
the guard deletes ``.nbi``/``.nbc`` files in the directories of spp's own source
directories only.  The stamp is per checkout, so two checkouts sharing a cache do
not drop each other's entries either.

A fresh install has no cache, so only a working tree that changes sees a recompile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

_PKG = Path(os.path.abspath(__file__)).parent
_STAMP = "spp-jit-sources"

_FROM = re.compile(rb"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.M)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^\n#;]*)", re.M)


def _module_name(path: Path) -> str:
    rel = path.relative_to(_PKG).with_suffix("")
    parts = ["spp", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, text: bytes, modules: dict[str, Path]) -> set[Path]:
    """spp modules ``text`` (the source of ``path``) imports, with the packages on the way.

    ``modules`` maps every spp module name (``spp.a.b``) to its file.
    """
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names: set[str] = set()
    for m in _FROM.finditer(text):
        mod = m.group(1).decode()
        if mod.startswith("."):
            dots = len(mod) - len(mod.lstrip("."))
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (dots - 1)] if dots > 1 else anchor
            mod = ".".join([*anchor, *([mod.lstrip(".")] if mod.lstrip(".") else [])])
        names.add(mod)
        for item in m.group(2).decode().strip("() \t\r\n").split(","):
            word = item.split()[0] if item.split() else ""
            if word and word != "*":
                names.add(f"{mod}.{word}")  # ``from spp.ports import vhost_mem``: a module too
    for m in _IMPORT.finditer(text):
        for item in m.group(1).decode().split(","):
            if item.split():
                names.add(item.split()[0])
    out: set[Path] = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing spp.a.b runs spp/__init__ and spp/a/__init__ too
            p = modules.get(".".join(parts[:i]))
            if p is not None:
                out.add(p)
    return out


def _compiled_sources() -> list[Path]:
    """spp's modules compiled code can see: those importing numba, and every spp module they import."""
    texts: dict[Path, bytes] = {}
    for p in sorted(_PKG.rglob("*.py")):
        with contextlib.suppress(OSError):
            texts[p] = p.read_bytes()
    modules = {_module_name(p): p for p in texts}
    todo = [p for p, t in texts.items() if b"from numba" in t or b"import numba" in t]
    seen = set(todo)
    while todo:
        p = todo.pop()
        for q in _imports(p, texts.get(p, b""), modules):
            if q not in seen and q in texts:
                seen.add(q)
                todo.append(q)
    return sorted(seen)


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.relative_to(_PKG)}\n".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _numba_subpath(directory: str) -> str:
    """The directory name numba gives the cache entries of sources in ``directory`` (an absolute path)."""
    return f"{os.path.basename(directory)}_{hashlib.sha1(directory.encode()).hexdigest()}"


def cache_dirs_for(directory: Path) -> list[Path]:
    """Where numba may keep the cache entries of functions defined in ``directory``'s modules."""
    spellings = {os.path.abspath(directory), os.path.realpath(directory)}
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return [Path(base) / _numba_subpath(d) for d in sorted(spellings)]
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    return [Path(directory) / "__pycache__", *(user / _numba_subpath(d) for d in sorted(spellings))]


def stamp_dir() -> Path:
    """Where the guard keeps its stamp (and processes their compile lock)."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or _PKG / "__pycache__")


def _stamp() -> Path:
    return stamp_dir() / f"{_STAMP}-{hashlib.sha1(str(_PKG).encode()).hexdigest()[:12]}"


def guard() -> bool:
    """Drop spp's cached compiled functions if code they can see changed; True if they were dropped."""
    try:
        now = _fingerprint(_compiled_sources())
        stamp = _stamp()
        with contextlib.suppress(OSError):
            if stamp.read_text() == now:
                return False
        dirs = {p.parent for p in _PKG.rglob("*.py")}
        for src in sorted(dirs):
            for d in cache_dirs_for(src):
                for f in [*d.glob("*.nbi"), *d.glob("*.nbc")]:
                    with contextlib.suppress(OSError):
                        f.unlink()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        tmp.write_text(now)
        os.replace(tmp, stamp)
        return True
    except OSError:  # a read-only install: numba falls back to its own cache rules
        return False
