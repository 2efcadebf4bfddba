"""The libc calls of compiled driver kernels (tap's ``readv``/``write``, phy's tx kick, pcap's file I/O).

The worker loop is compiled without numba's runtime and cached on disk.  A ctypes or
cffi function pointer would be a "dynamic global" (numba refuses to cache such code),
so the functions are declared by symbol name (``types.ExternalFunction``): the
generated code calls the process's libc, resolved when the code is loaded.  Pointers
are passed as integers (``arr.ctypes.data``).  ``errno_location()[0]`` is the calling
thread's ``errno`` right after a failed call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

from numba import njit, types

EINTR: Final = 4
EIO: Final = 5
ENOSPC: Final = 28
ENXIO: Final = 6
EAGAIN: Final = 11
ENODEV: Final = 19
EBADFD: Final = 77
ENETDOWN: Final = 100
MSG_DONTWAIT: Final = 0x40
SEEK_SET: Final = 0
CLOCK_REALTIME: Final = 0
_NO_NRT: dict[str, Any] = {"_nrt": False}

readv = cast("Callable[..., int]", types.ExternalFunction("readv", types.intp(types.intc, types.uintp, types.intc)))
write = cast("Callable[..., int]", types.ExternalFunction("write", types.intp(types.intc, types.uintp, types.uintp)))
read = cast("Callable[..., int]", types.ExternalFunction("read", types.intp(types.intc, types.uintp, types.uintp)))
writev = cast("Callable[..., int]", types.ExternalFunction("writev", types.intp(types.intc, types.uintp, types.intc)))
lseek = cast("Callable[..., int]", types.ExternalFunction("lseek", types.int64(types.intc, types.int64, types.intc)))
ftruncate = cast("Callable[..., int]", types.ExternalFunction("ftruncate", types.intc(types.intc, types.int64)))
#: ``clock_gettime(clock, ts)``: ``ts`` is the address of two int64 words (seconds, nanoseconds).
clock_gettime = cast("Callable[..., int]",
                     types.ExternalFunction("clock_gettime", types.intc(types.intc, types.uintp)))
sendto = cast("Callable[..., int]", types.ExternalFunction(
    "sendto", types.intp(types.intc, types.uintp, types.uintp, types.intc, types.uintp, types.intc)))
errno_location = cast("Callable[[], Any]",
                      types.ExternalFunction("__errno_location", types.CPointer(types.intc)()))  # type: ignore[no-untyped-call]


@njit(cache=True, nogil=True, inline="always", **_NO_NRT)
def send_kick(fd: int) -> int:
    """``send(fd, NULL, 0, MSG_DONTWAIT)`` (a packet socket's tx ring kick): 0, or ``-errno``."""
    r = sendto(fd, 0, 0, MSG_DONTWAIT, 0, 0)
    if r < 0:
        e: int = errno_location()[0]
        return -e
    return 0
