"""Named shared-memory segments under ``/dev/shm`` with owner-only permissions.

We do not use :mod:`multiprocessing.shared_memory`: on Python < 3.13 every process
that attaches registers the segment with its resource tracker, which then unlinks it
when that process exits, tearing the pool away from everyone else.  Here only the
creator unlinks, and segments are created ``0600`` so other users cannot map them.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")


class Segment:
    """A mapped shared-memory file.  ``buf`` is a writable memoryview of it."""

    def __init__(self, path: Path, size: int, *, create: bool) -> None:
        self.path = path
        self.owner = create
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise FileExistsError(
                f"shared memory {path} already exists: another stack runs with this "
                "--file-prefix (pick another prefix, or stop it / remove the stale file)"
            ) from None
        except FileNotFoundError:
            raise FileNotFoundError(
                f"shared memory {path} not found: start spp-primary with the same "
                "--file-prefix first"
            ) from None
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
            self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.size = size
        self.buf = memoryview(self._mmap)

    def close(self, unlink: bool | None = None) -> None:
        """Unmap; unlink too if ``unlink`` (default: if this process created it)."""
        if unlink is None:
            unlink = self.owner
        self.buf.release()
        try:
            self._mmap.close()
        except BufferError:
            # numpy views still reference the mapping; the OS unmaps at exit.
            pass
        if unlink:
            self.path.unlink(missing_ok=True)


def segment_path(prefix: str, name: str) -> Path:
    """Path of segment ``name`` for the stack ``prefix``."""
    if not prefix or "/" in prefix or prefix.startswith("."):
        raise ValueError(f"invalid --file-prefix {prefix!r}: use letters, digits, '-' or '_'")
    return SHM_DIR / f"spp-{prefix}-{name}"


def mappers(path: Path) -> list[int]:
    """PIDs of the processes (other than this one) that map ``path``, read from ``/proc/*/maps``."""
    needle = str(path).encode()
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError), open(entry / "maps", "rb") as f:
            if needle in f.read():
                out.append(int(entry.name))
    return out


class StackLock:
    """An exclusive ``flock`` on a stack's lock file, held by its primary for its lifetime.

    The kernel drops the lock when the holder dies, even by SIGKILL, so a stale lock
    never blocks a restart, and two primaries racing for one stack cannot both win.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self, unlink: bool = False) -> None:
        if self._fd < 0:
            return
        if unlink:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1
