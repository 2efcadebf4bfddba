"""Keep numba's on-disk cache consistent across modules.

numba keys a cached function on its own source file only.  A compiled function that
calls compiled code of another module (the worker loop calls the ring, pool and vhost
bodies, which are linked into it) is therefore loaded from the cache *with the old
callee* after that other module changed: wrong speed at best (a stale vhost body made
the loop eight times slower), a crash at worst.  :func:`guard` runs once at import of
``spp``: if any of spp's compiled modules changed since the cache was written, every
cached spp function is dropped and compiled again on first use.

A fresh install has no cache, so only a working tree that changes sees a recompile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_STAMP = "spp-jit-sources"


def _compiled_sources() -> list[Path]:
    """spp's modules that define compiled code (they import numba)."""
    out = []
    for p in sorted(_PKG.rglob("*.py")):
        with contextlib.suppress(OSError):
            text = p.read_bytes()
            if b"from numba" in text or b"import numba" in text:
                out.append(p)
    return out


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(_PKG)}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()


def _cache_dirs() -> list[Path]:
    """Where numba keeps spp's cache: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the sources."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return [Path(base)]
    return [d for d in _PKG.rglob("__pycache__") if d.is_dir()]


def guard() -> bool:
    """Drop spp's cached compiled functions if a compiled module changed; True if it did."""
    try:
        sources = _compiled_sources()
        stamp_dir = Path(os.environ.get("NUMBA_CACHE_DIR") or _PKG / "__pycache__")
        stamp = stamp_dir / _STAMP
        now = _fingerprint(sources)
        with contextlib.suppress(OSError):
            if stamp.read_text() == now:
                return False
        names = {p.stem for p in sources}
        for d in _cache_dirs():
            for f in [*d.rglob("*.nbi"), *d.rglob("*.nbc")]:
                if f.name.split(".", 1)[0] in names:
                    with contextlib.suppress(OSError):
                        f.unlink()
        stamp_dir.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{_STAMP}.{os.getpid()}")
        tmp.write_text(now)
        os.replace(tmp, stamp)
        return True
    except OSError:  # a read-only install: numba falls back to its own cache rules
        return False
