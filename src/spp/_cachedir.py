"""Give numba a writable compile cache before it is imported (docs/operations.md).

numba caches compiled functions in ``__pycache__`` beside the sources, else in a
per-user directory under ``$HOME``.  An installed wheel in a read-only site-packages,
run by a service user whose ``HOME`` cannot be written, has neither: every
``@njit(cache=True)`` then fails at import.  :func:`choose` runs first thing in
``spp/__init__.py``: when ``NUMBA_CACHE_DIR`` is unset and the package directory is
not writable, it sets ``NUMBA_CACHE_DIR`` to the first writable of
``$XDG_CACHE_HOME/spp/numba`` (default ``~/.cache/spp/numba``),
``/var/cache/spp/numba`` and ``$TMPDIR/spp-numba-UID`` (created 0700 and used only
if this user owns it and nobody else may write it).  No numba import here.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _package_writable() -> bool:
    cache = _PKG / "__pycache__"
    return _writable_dir(cache) if cache.exists() else _writable_dir(_PKG)


def _usable(path: Path, *, private: bool = False) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if private:
            st = path.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return False
        return _writable_dir(path)
    except OSError:
        return False


def candidates() -> list[tuple[Path, bool]]:
    """Where the cache may go, in order, each with whether it must be private to this user."""
    out: list[tuple[Path, bool]] = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        out.append((Path(xdg) / "spp" / "numba", False))
    with contextlib.suppress(RuntimeError, KeyError):
        out.append((Path.home() / ".cache" / "spp" / "numba", False))
    out.append((Path("/var/cache/spp/numba"), False))
    out.append((Path(tempfile.gettempdir()) / f"spp-numba-{os.geteuid()}", True))
    return out


def choose() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when needed (see the module docstring); return what was set."""
    if os.environ.get("NUMBA_CACHE_DIR") or _package_writable():
        return None
    for path, private in candidates():
        if _usable(path, private=private):
            os.environ["NUMBA_CACHE_DIR"] = str(path)
            return str(path)
    return None
