"""Helpers for the vhost tests: DPDK's testpmd playing the guest (virtio-user frontend)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from spp.ports.base import Port
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for

TESTPMD = shutil.which("dpdk-testpmd")

_STAT_RE = re.compile(r"(RX|TX)-(packets|bytes|dropped|errors|missed):\s*(\d+)")


def _stdbuf() -> list[str]:
    tool = shutil.which("stdbuf")
    return [tool, "-o0", "-e0"] if tool else []


def need_testpmd() -> str:
    """The testpmd binary, or skip the test saying what is missing."""
    if TESTPMD is None:
        pytest.skip("dpdk-testpmd is not installed (Debian: apt-get install dpdk)")
    return TESTPMD


class GuestPmd:
    """``dpdk-testpmd`` in interactive mode with one ``net_virtio_user`` port on ``path``.

    Output is read by a thread; :meth:`cmd` sends a command and waits for the next
    prompt, returning what testpmd printed in between.
    """

    def __init__(self, path: str, mode: str = "io", *, server: bool = False, extra: tuple[str, ...] = ()) -> None:
        binary = need_testpmd()
        self.prefix = f"vu{os.getpid() % 100000}{uuid.uuid4().hex[:6]}"
        vdev = f"net_virtio_user0,path={path}" + (",server=1" if server else "")
        # stdbuf: testpmd's printf output must not sit in a pipe buffer behind the prompt.
        argv = [*_stdbuf(), binary, "-l", "0,1", "--main-lcore", "1", "--no-huge", "-m", "1024", "--no-pci",
                f"--file-prefix={self.prefix}", f"--vdev={vdev}", "--", "-i", f"--forward-mode={mode}",
                "--total-num-mbufs=4096", *extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._out = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self._lock:
                self._out += chunk

    @property
    def output(self) -> str:
        with self._lock:
            return self._out.decode(errors="replace")

    def wait_prompt(self, start: int = 0, timeout: float = 60) -> str:
        """Wait for a ``testpmd> `` prompt printed after position ``start``; return the text before it."""

        def prompt() -> str | None:
            text = self.output
            pos = text.find("testpmd> ", start)
            if pos >= 0:
                return text[start:pos]
            if self.proc.poll() is not None:
                raise RuntimeError(f"testpmd exited with {self.proc.returncode}:\n{text[-3000:]}")
            return None

        return wait_for(prompt, timeout=timeout, message=lambda: f"a testpmd prompt; output:\n{self.output[-2000:]}")

    def cmd(self, line: str, timeout: float = 30) -> str:
        """Run one interactive command; return its output."""
        start = len(self.output)
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        # The command is echoed after the old prompt; its output ends at the next prompt.
        text = self.wait_prompt(start, timeout)
        return text

    def port_stats(self) -> dict[str, int]:
        """``show port stats 0`` as ``{"RX-packets": N, "TX-bytes": N, ...}``."""
        text = self.cmd("show port stats 0")
        return {f"{d}-{what}": int(v) for d, what, v in _STAT_RE.findall(text)}

    def kill(self) -> None:
        """Kill testpmd at once (a crashing guest) and remove its runtime files."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)

    def quit(self) -> None:
        """Leave testpmd cleanly (it stops its queues and disconnects)."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


@contextmanager
def guest_pmd(path: str, mode: str = "io", **kw: object) -> Iterator[GuestPmd]:
    """A running testpmd (prompt reached); always killed on exit."""
    t = GuestPmd(path, mode, **kw)  # type: ignore[arg-type]
    try:
        t.wait_prompt(0, timeout=90)
        yield t
    finally:
        t.quit()


def send_frames(dp: Dataplane, port: Port, frames: list[bytes]) -> np.ndarray:
    """Put ``frames`` into fresh pool buffers; return their ids."""
    ids = np.empty(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames), "pool exhausted"
    for b, f in zip(ids.tolist(), frames, strict=True):
        dp.write_frame(b, f)
    return ids


def receive(dp: Dataplane, port: Port, into: list[bytes], burst: int = 32) -> int:
    """One ``rx_burst``: append the frames' bytes to ``into`` and free the buffers."""
    bufs = np.empty(burst, np.int32)
    k = port.rx_burst(bufs)
    for b in bufs[:k].tolist():
        into.append(dp.frame(b))
    if k:
        dp.free(bufs, k)
    return k

