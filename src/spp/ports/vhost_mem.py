"""Guest memory of a vhost-user frontend, mapped into one contiguous numpy array.

``SET_MEM_TABLE`` hands over up to 8 regions, each a file descriptor (a memfd for
DPDK's virtio-user with ``--no-huge``, a hugetlbfs or memfd file for QEMU) with the
region's guest physical address, size, the frontend's own virtual address for it and
the offset of the region in the file.

The compiled data path wants *one* array it can index, so the regions are mapped
side by side into a single reserved address range (``mmap(PROT_NONE)`` first, then
each region ``MAP_SHARED | MAP_FIXED`` into its slot).  :attr:`GuestMemory.mem` is a
``uint8`` view of the whole range; :attr:`GuestMemory.regs` is the translation table
the compiled code walks: one row per region, columns ``R_GPA`` (guest physical start),
``R_SIZE``, ``R_HOST`` (offset of the region's first byte in ``mem``) and ``R_UVA``
(frontend virtual start).  Gaps between slots stay ``PROT_NONE``: an address that
passes translation can never reach them, and a bug would fault rather than read
another process's data.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import stat
from dataclasses import dataclass
from typing import Final

import numpy as np

R_GPA: Final = 0
R_SIZE: Final = 1
R_HOST: Final = 2
R_UVA: Final = 3
R_COLS: Final = 4

#: vhost-user allows at most 8 regions in ``SET_MEM_TABLE``.
MAX_REGIONS: Final = 8
#: Slots are aligned to 1 GiB at most (a 1 GiB huge page); 2 MiB at least.
_MIN_ALIGN: Final = 2 << 20

_PROT_NONE: Final = 0
_MAP_PRIVATE: Final = 0x02
_MAP_ANONYMOUS: Final = 0x20
_MAP_NORESERVE: Final = 0x4000
_MAP_FIXED: Final = 0x10
_MAP_FAILED: Final = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)


class GuestMemoryError(ValueError):
    """A memory table cannot be mapped; the message says which region and why."""


@dataclass(frozen=True)
class Region:
    """One entry of ``SET_MEM_TABLE`` (``VhostUserMemoryRegion``)."""

    gpa: int
    size: int
    uva: int
    mmap_offset: int


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


class GuestMemory:
    """The frontend's memory regions mapped into one array.  Call :meth:`close` to unmap.

    The file descriptors are only borrowed: the caller closes them (the mappings
    stay valid after that).
    """

    def __init__(self, regions: list[Region], fds: list[int]) -> None:
        if not 1 <= len(regions) <= MAX_REGIONS:
            raise GuestMemoryError(f"memory table has {len(regions)} regions: must be 1..{MAX_REGIONS}")
        if len(fds) != len(regions):
            raise GuestMemoryError(f"memory table has {len(regions)} regions but {len(fds)} file descriptors came")
        page = mmap.PAGESIZE
        plan: list[tuple[int, int, int, int]] = []  # slot offset, file offset, map length, delta
        pos = 0
        for i, (r, fd) in enumerate(zip(regions, fds, strict=True)):
            if r.size <= 0:
                raise GuestMemoryError(f"region {i}: size {r.size} must be positive")
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size < r.mmap_offset + r.size:
                # Touching pages past the end of the file would kill the process with SIGBUS.
                raise GuestMemoryError(
                    f"region {i}: file offset {r.mmap_offset:#x} + size {r.size:#x} is past the end of its "
                    f"file ({st.st_size:#x} bytes)")
            blk = max(st.st_blksize, page)
            align = min(max(blk, _MIN_ALIGN), 1 << 30)
            file_off = r.mmap_offset // blk * blk
            delta = r.mmap_offset - file_off
            length = _align_up(r.size + delta, blk)
            pos = _align_up(pos, align)
            plan.append((pos, file_off, length, delta))
            pos += length
        total = _align_up(pos, _MIN_ALIGN)
        # Over-reserve so the base itself can be aligned to the largest slot alignment.
        reserve = total + (1 << 30 if any(os.fstat(fd).st_blksize >= 1 << 30 for fd in fds) else _MIN_ALIGN)
        raw = _libc.mmap(None, reserve, _PROT_NONE, _MAP_PRIVATE | _MAP_ANONYMOUS | _MAP_NORESERVE, -1, 0)
        if raw is None or raw == _MAP_FAILED:
            err = ctypes.get_errno()
            raise GuestMemoryError(f"cannot reserve {reserve} bytes of address space: {os.strerror(err)}")
        self._raw: int = raw
        self._reserve = reserve
        big = 1 << 30 if reserve - total >= 1 << 30 else _MIN_ALIGN
        self._base: int = _align_up(raw, big)
        self.size: int = total
        regs = np.zeros((len(regions), R_COLS), np.int64)
        try:
            for i, ((slot, file_off, length, delta), r, fd) in enumerate(zip(plan, regions, fds, strict=True)):
                got = _libc.mmap(self._base + slot, length, mmap.PROT_READ | mmap.PROT_WRITE,
                                 mmap.MAP_SHARED | _MAP_FIXED, fd, file_off)
                if got is None or got == _MAP_FAILED:
                    err = ctypes.get_errno()
                    raise GuestMemoryError(
                        f"region {i} (gpa {r.gpa:#x}, {r.size} bytes, file offset {r.mmap_offset:#x}): "
                        f"mmap failed: {os.strerror(err)}")
                regs[i] = (r.gpa, r.size, slot + delta, r.uva)
        except BaseException:
            _libc.munmap(self._raw, self._reserve)
            raise
        self.regs = regs
        ptr = ctypes.cast(self._base, ctypes.POINTER(ctypes.c_uint8))
        self.mem: np.ndarray = np.ctypeslib.as_array(ptr, shape=(total,))
        self.mem16: np.ndarray = self.mem.view(np.uint16)
        self.mem32: np.ndarray = self.mem.view(np.uint32)
        self.mem64: np.ndarray = self.mem.view(np.uint64)
        self.regions = list(regions)
        self.closed = False

    def uva_to_host(self, uva: int, length: int) -> int:
        """Offset in :attr:`mem` of the frontend virtual range ``[uva, uva+length)``; ``-1`` if unmapped."""
        for gpa, size, host, ruva in self.regs.tolist():
            del gpa
            if ruva <= uva and uva + length <= ruva + size:
                return int(host + uva - ruva)
        return -1

    def gpa_to_host(self, gpa: int, length: int) -> int:
        """Offset in :attr:`mem` of the guest physical range ``[gpa, gpa+length)``; ``-1`` if unmapped."""
        for rgpa, size, host, _ in self.regs.tolist():
            if rgpa <= gpa and gpa + length <= rgpa + size:
                return int(host + gpa - rgpa)
        return -1

    def close(self) -> None:
        """Unmap everything.  Nobody may use :attr:`mem` (or a view of it) afterwards."""
        if self.closed:
            return
        self.closed = True
        self.mem = self.mem16 = self.mem32 = self.mem64 = np.zeros(8, np.uint8)
        _libc.munmap(self._raw, self._reserve)
