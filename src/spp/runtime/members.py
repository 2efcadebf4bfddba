"""Who maps a data plane: the segment's member table.

Every process that maps a stack's segment (the primary, each secondary, a test or a
benchmark reading counters) takes a row of the table on attach and gives it back on
close.  A row is ``(pid, start time, role)``; the start time (field 22 of
``/proc/PID/stat``, clock ticks since boot) tells a live member from an unrelated
process that got the same PID after the member died, so a reused PID never keeps a
dead stack alive.  A stopped process (SIGSTOP) is alive: only a process that is gone
counts as gone.

The table answers the questions of a stack's life cycle:

* may the primary remove the segment on exit?  Only if no other member is alive;
  otherwise it leaves it to them and says who they are;
* is an existing segment stale (every member gone: remove it and start afresh) or
  live (adopt it)?

Rows are claimed with a compare-and-swap on the pid word, so processes attaching at
the same time never share a row; a row whose process is gone is reclaimed the same
way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Final

import numpy as np
from numba import njit

from spp.runtime.atomics import atomic_cas

#: Rows of the member table.
MAX_MEMBERS: Final = 64
#: Columns of a row.
W_PID, W_START, W_ROLE = range(3)
MEMBER_COLS: Final = 4
#: Roles.
ROLE_PRIMARY: Final = 1
ROLE_SECONDARY: Final = 2
ROLE_NAMES: Final = {ROLE_PRIMARY: "primary", ROLE_SECONDARY: "secondary"}


@njit(cache=True, nogil=True)
def _claim(table: np.ndarray, row: int, expected: int, pid: int) -> bool:
    return bool(atomic_cas(table[row], W_PID, expected, pid) == expected)


def start_time(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks since boot; -1 if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return -1
    # the command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 overall
    except (IndexError, ValueError):
        return -1


@dataclass(frozen=True)
class Member:
    """A live process mapping the segment."""

    pid: int
    role: int

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, "process")

    def __str__(self) -> str:
        return f"{self.role_name} pid {self.pid}"


def _alive(table: np.ndarray, row: int) -> bool:
    pid = int(table[row, W_PID])
    return pid > 0 and start_time(pid) == int(table[row, W_START])


def join(table: np.ndarray, role: int) -> int:
    """Take a row for this process in ``role``; return it (-1: the table is full)."""
    pid = os.getpid()
    mine = start_time(pid)
    # a free row first: a dead member's row is left to the reclaimer (taking it would hide the
    # death, and what the dead process held would never come back), unless nothing else is free
    for dead_too in (False, True):
        for row in range(table.shape[0]):
            old = int(table[row, W_PID])
            if (old == 0 or (dead_too and not _alive(table, row))) and _claim(table, row, old, pid):
                table[row, W_START] = mine
                table[row, W_ROLE] = role
                return row
    return -1


def leave(table: np.ndarray, row: int) -> None:
    """Give row ``row`` back (only if this process still holds it)."""
    if 0 <= row < table.shape[0]:
        _claim(table, row, os.getpid(), 0)


def leave_for(table: np.ndarray, row: int, pid: int) -> None:
    """Give row ``row`` back on behalf of ``pid`` (a dead member), if it still names it."""
    if 0 <= row < table.shape[0]:
        _claim(table, row, pid, 0)


def set_role(table: np.ndarray, row: int, role: int) -> None:
    if 0 <= row < table.shape[0]:
        table[row, W_ROLE] = role


def live(table: np.ndarray, *, exclude_self: bool = True) -> list[Member]:
    """The live members, optionally without this process."""
    me = os.getpid()
    out = []
    for row in range(table.shape[0]):
        pid = int(table[row, W_PID])
        if pid <= 0 or (exclude_self and pid == me):
            continue
        if _alive(table, row):
            out.append(Member(pid, int(table[row, W_ROLE])))
    return out


def describe(members: list[Member]) -> str:
    """``"secondary pid 12, secondary pid 13"``."""
    return ", ".join(str(m) for m in members)


# --- what the primary launched ---------------------------------------------------
#
# The secondaries a primary launched are written down in the segment too, so that a
# primary adopting the stack knows them (lists them in its status, refuses a second
# launch of one, stops them when it stops): rows of (pid, start time, kind, client id).
# The kind is a small number whose meaning is the primary's.

MAX_LAUNCHED: Final = 64
L_PID, L_START, L_KIND, L_CLIENT = range(4)
LAUNCHED_COLS: Final = 4


@dataclass(frozen=True)
class Launched:
    """A live process a primary of the stack launched."""

    pid: int
    kind: int
    client_id: int


def record_launch(table: np.ndarray, pid: int, kind: int, client_id: int) -> bool:
    """Write down that process ``pid`` was launched; False if the table is full."""
    started = start_time(pid)
    for row in range(table.shape[0]):
        old = int(table[row, L_PID])
        if (old == 0 or start_time(old) != int(table[row, L_START])) and _claim(table, row, old, pid):
            table[row, L_START] = started
            table[row, L_KIND] = kind
            table[row, L_CLIENT] = client_id
            return True
    return False


def forget_launch(table: np.ndarray, pid: int) -> None:
    """Strike process ``pid`` off (it exited)."""
    for row in range(table.shape[0]):
        if int(table[row, L_PID]) == pid:
            _claim(table, row, pid, 0)


def launched(table: np.ndarray) -> list[Launched]:
    """The launched processes still alive (rows of those gone are struck off)."""
    out = []
    for row in range(table.shape[0]):
        pid = int(table[row, L_PID])
        if pid <= 0:
            continue
        if start_time(pid) == int(table[row, L_START]):
            out.append(Launched(pid, int(table[row, L_KIND]), int(table[row, L_CLIENT])))
        else:
            _claim(table, row, pid, 0)
    return out


def cmdline(pid: int) -> list[str]:
    """Process ``pid``'s command line ([] if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class Handle:
    """A process this one did not start, seen through the part of ``subprocess.Popen`` a
    primary uses (``pid``, ``poll``, ``terminate``, ``kill``, ``wait``).

    It is known by PID and start time, so a reused PID is never signalled.  Its exit
    status cannot be known (it is not our child): once gone, :meth:`poll` says 0.
    """

    stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = start_time(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and (self._start < 0 or start_time(self.pid) != self._start):
            self.returncode = 0
        return self.returncode

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code
