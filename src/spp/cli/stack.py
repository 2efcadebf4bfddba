"""Run a whole local stack (spp-ctl, spp-primary, secondaries) as child processes.

Used by ``spp demo`` and by tests.  :class:`LocalStack` picks free TCP ports and
a unique ``--file-prefix``, so it never collides with another stack on the host,
writes each child's output to a log file, and :meth:`LocalStack.stop` ends every
child it started (SIGTERM, then SIGKILL) and removes the shared-memory segment if
the primary could not.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from spp.runtime.shm import segment_path

HOST = "127.0.0.1"


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def poll(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``cond`` until truthy; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class StackError(RuntimeError):
    """A process of the stack failed to start; the message includes its log tail."""


class LocalStack:
    """spp-ctl + spp-primary (+ anything else) as children of this process.

    ``prefix`` defaults to a unique name; ``log_dir`` to a fresh temporary
    directory.  Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, prefix: str | None = None, *, log_dir: Path | None = None, host: str = HOST) -> None:
        self.prefix = prefix or f"spp{os.getpid()}{uuid.uuid4().hex[:6]}"
        self.host = host
        self.pri_port, self.sec_port, self.api_port = free_ports(3, host)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"{self.prefix}-logs-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Path] = {}

    @property
    def url(self) -> str:
        """Base URL of spp-ctl's REST API."""
        return f"http://{self.host}:{self.api_port}"

    @property
    def server(self) -> str:
        """``HOST:PORT`` of the REST API (the CLI's ``-b``)."""
        return f"{self.host}:{self.api_port}"

    @property
    def secondary_addr(self) -> str:
        """``HOST:PORT`` secondaries connect to."""
        return f"{self.host}:{self.sec_port}"

    # -- children --------------------------------------------------------------------

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` as child ``name``, output to ``log_dir/NAME.log``."""
        if name in self.procs and self.procs[name].poll() is None:
            raise StackError(f"{name} is already running")
        log = self.log_dir / f"{name}.log"
        self._logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        """Last lines of child ``name``'s log."""
        path = self._logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self, name: str) -> None:
        """Raise :class:`StackError` with the log tail if child ``name`` has exited."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise StackError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def start_ctl(self, timeout: float = 20.0, reply_timeout: float = 30.0) -> None:
        """Start spp-ctl and wait until its REST API answers.

        ``reply_timeout`` is spp-ctl's ``--timeout`` (a secondary answers at once, also
        while it compiles its data path; a worker's first burst on a cold cache may
        still make a command wait a few seconds).
        """
        self.spawn("spp-ctl", [
            sys.executable, "-m", "spp.ctl", "-b", self.host, "-p", str(self.pri_port),
            "-s", str(self.sec_port), "-a", str(self.api_port), "--timeout", f"{reply_timeout:g}",
        ])
        self.wait_process(None, timeout, check="spp-ctl")

    def start_primary(self, phy: Sequence[str] = (), *, extra: Sequence[str] = (), timeout: float = 30.0) -> None:
        """Start spp-primary on this stack's prefix and wait until spp-ctl lists it."""
        argv = [sys.executable, "-m", "spp.control.primary", "-s", f"{self.host}:{self.pri_port}",
                "--file-prefix", self.prefix, *extra]
        if phy:
            argv += ["--phy", ",".join(phy)]
        self.spawn("spp-primary", argv)
        self.wait_process({"type": "primary"}, timeout, check="spp-primary")

    def processes(self) -> list[dict[str, Any]] | None:
        """spp-ctl's ``/v1/processes``, or None if it does not answer."""
        try:
            response = httpx.get(f"{self.url}/v1/processes", timeout=2.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        result: list[dict[str, Any]] = response.json()
        return result

    def wait_process(self, entry: dict[str, Any] | None, timeout: float, check: str | None = None) -> None:
        """Wait until spp-ctl answers and (if ``entry``) lists ``entry``; fail early if ``check`` died."""

        def ready() -> bool:
            if check is not None:
                self.check_alive(check)
            listed = self.processes()
            return listed is not None and (entry is None or entry in listed)

        poll(ready, timeout, f"{entry or 'spp-ctl'} to be listed by spp-ctl")

    def stop_one(self, name: str, timeout: float = 8.0) -> int | None:
        """SIGTERM child ``name`` (SIGKILL after ``timeout`` s); return its exit code."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self) -> None:
        """Stop every child (newest first) and remove the stack's shared memory."""
        for name in reversed(list(self.procs)):
            self.stop_one(name)
        with contextlib.suppress(ValueError):
            segment_path(self.prefix, "dataplane").unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
