"""Who maps a stack: the member table, stale and live segments, one primary per stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from spp.runtime import members
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.shm import segment_path
from spp.testing import unique_prefix, wait_for

SMALL = Layout(n_bufs=256, n_rings=4, ring_size=64)

# A child that joins the stack, says so, and waits to be killed.
PRIMARY = ("import sys, time; from spp.runtime.dataplane import Dataplane, Layout; "
           "dp, how = Dataplane.open_primary(sys.argv[1], Layout(256, 4, 64)); print('up', flush=True); "
           "time.sleep(600)")
SECONDARY = ("import sys, time; from spp.runtime.dataplane import Dataplane; "
             "dp = Dataplane.attach(sys.argv[1]); print('up', flush=True); time.sleep(600)")


@pytest.fixture
def prefix() -> Iterator[str]:
    p = unique_prefix("mb")
    yield p
    for name in ("dataplane", "lock"):
        segment_path(p, name).unlink(missing_ok=True)


def child(code: str, prefix: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, prefix], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stdout:
        proc.stdout.close()


def test_members_join_leave_and_pid_reuse(prefix: str) -> None:
    dp, how = Dataplane.open_primary(prefix, SMALL)
    try:
        assert how == f"created the stack {prefix!r}"
        assert dp.live_members() == []
        assert members.live(dp.members, exclude_self=False) == [members.Member(os.getpid(), members.ROLE_PRIMARY)]
        sec = child(SECONDARY, prefix)
        try:
            assert dp.live_members() == [members.Member(sec.pid, members.ROLE_SECONDARY)]
        finally:
            kill(sec)
        assert dp.live_members() == []  # gone by SIGKILL: its row is dead without any cleanup
        # a row naming a live process that started at another time is a reused PID: not a member
        row = members.join(dp.members, members.ROLE_SECONDARY)
        dp.members[row, members.W_PID] = 1
        dp.members[row, members.W_START] = members.start_time(1) + 12345
        assert dp.live_members() == []
        dp.members[row, members.W_START] = members.start_time(1)
        assert dp.live_members() == [members.Member(1, members.ROLE_SECONDARY)]
        dp.members[row] = 0
    finally:
        dp.close()
    assert not segment_path(prefix, "dataplane").exists()


def test_one_primary_per_stack(prefix: str) -> None:
    first = child(PRIMARY, prefix)
    try:
        with pytest.raises(FileExistsError, match="another spp-primary is running the stack"):
            Dataplane.open_primary(prefix, SMALL)
        assert segment_path(prefix, "dataplane").exists()  # the refused one changed nothing
    finally:
        kill(first)


def test_stale_segment_is_replaced(prefix: str) -> None:
    kill(child(PRIMARY, prefix))  # crashed: the segment and the lock file stay behind
    assert segment_path(prefix, "dataplane").exists()
    dp, how = Dataplane.open_primary(prefix, SMALL)
    try:
        assert how.startswith(f"removed the stale segment {segment_path(prefix, 'dataplane')}")
        assert dp.free_count == dp.n_bufs
    finally:
        dp.close()


def test_live_segment_is_adopted_and_left_to_its_users(prefix: str) -> None:
    pri = child(PRIMARY, prefix)
    sec = child(SECONDARY, prefix)
    try:
        seen = Dataplane.attach(prefix)
        seen.set_config({"mark": 7})  # the adopter must see it: same segment, not a new one
        seen.close()
        kill(pri)
        dp, how = Dataplane.open_primary(prefix, SMALL)
        assert how == f"adopted the live stack {prefix!r} (secondary pid {sec.pid} still uses it)"
        assert dp.config() == {"mark": 7}
        dp.close()  # a secondary still maps it: left in place
        assert [m.pid for m in dp.left_to] == [sec.pid]
        assert segment_path(prefix, "dataplane").exists()
    finally:
        kill(sec)
    dp, how = Dataplane.open_primary(prefix, SMALL)
    assert how.startswith("removed the stale segment")
    dp.close()
    assert not segment_path(prefix, "dataplane").exists()


def test_segment_of_another_version(prefix: str) -> None:
    path = segment_path(prefix, "dataplane")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"\0" * 4096)
    os.close(fd)
    dp, how = Dataplane.open_primary(prefix, SMALL)
    try:
        assert "a segment of another spp version that no process used" in how
    finally:
        dp.close()
    # the same while a process maps the old file: refused, and the file is left alone
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"\0" * 4096)
    os.close(fd)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import mmap, sys; f = open(sys.argv[1], 'rb'); "
                               "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); print('up', flush=True); "
                               "sys.stdin.read()", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        with pytest.raises(RuntimeError, match=rf"still use it.*{holder.pid}|{holder.pid}.*still use it"):
            Dataplane.open_primary(prefix, SMALL)
        assert path.exists()
    finally:
        holder.communicate("")
    wait_for(lambda: holder.poll() is not None)
