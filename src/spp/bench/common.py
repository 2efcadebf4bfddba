"""What every scenario shares: results, a cleanup registry, testpmd, child processes.

Each scenario is a function ``run(opts, cleanup) -> list[Result]``.  Everything a
scenario creates (processes, network namespaces, veth pairs, data planes) is
registered with the :class:`Cleanup` it is given *as soon as it exists*, so that a
failure or Ctrl-C at any point still removes it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TESTPMD = "/usr/bin/dpdk-testpmd"


class BenchError(RuntimeError):
    """A scenario could not run; the message says why and what would help."""


@dataclass(frozen=True)
class Options:
    """Command-line options every scenario sees."""

    seconds: float = 3.0
    rounds: int = 3
    core: int = 1
    bursts: tuple[int, ...] = (32, 64)
    rates: tuple[float, ...] = (0.2,)
    rate: float = 0.2  # the phy load being run (set per entry of ``rates``)
    size: int = 64
    peer: bool = True
    quick: bool = False  # ndr: short trials, coarse resolution (a smoke run, not a measurement)
    sides: tuple[str, ...] = ()  # ndr: the sides to run (empty: all)


@dataclass
class Result:
    """One line of output.  ``mpps`` is spp's figure; ``peer_*`` the reference's, if one ran."""

    scenario: str
    mpps: float | None
    peer: str | None = None
    peer_mpps: float | None = None
    unit: str = "Mpps"
    status: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.mpps is None or not self.peer_mpps:
            return None
        return self.mpps / self.peer_mpps

    def to_json(self) -> dict[str, Any]:
        """The JSON object printed by ``spp bench --json`` (stable keys first)."""
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "mpps": _round(self.mpps),
            "peer": self.peer,
            "peer_mpps": _round(self.peer_mpps),
            "ratio": _round(self.ratio),
            "unit": self.unit,
            "status": self.status,
            "native": self.extra.get("native"),  # the compiled loop ran (None: no worker ran)
        }
        out.update(self.extra)
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


class Cleanup:
    """A stack of undo actions, run last-in first-out; each runs once, errors are reported."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        with self._lock:
            self._actions.append((what, action))

    def run(self) -> None:
        while True:
            with self._lock:
                if not self._actions:
                    return
                what, action = self._actions.pop()
            try:
                action()
            except Exception as e:
                self.errors.append(f"cleanup of {what} failed: {e}")

    def process(self, proc: subprocess.Popen[bytes], what: str) -> subprocess.Popen[bytes]:
        """Register ``proc`` to be stopped (SIGINT, then SIGKILL) at cleanup."""
        self.push(what, lambda: stop_process(proc))
        return proc


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Ask ``proc`` to end (SIGINT), wait up to ``grace`` seconds, then kill it; close its stdin."""
    try:
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()


#: Children get SIGKILL if the bench process dies, even by SIGKILL (``PR_SET_PDEATHSIG``).
#: A wrapper rather than ``preexec_fn``, which is unsafe in a process with threads.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []


def spawn(argv: list[str], cleanup: Cleanup, what: str, *, stdin: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout+stderr captured, tied to our life and registered for cleanup."""
    proc = subprocess.Popen([*DIE_WITH_PARENT, *argv], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return cleanup.process(proc, what)


def python_child(module: str, args: list[str], cleanup: Cleanup, what: str) -> subprocess.Popen[bytes]:
    """Run ``python -m module args`` (a scenario's helper process)."""
    return spawn([sys.executable, "-m", module, *args], cleanup, what, stdin=True)


class OutputReader:
    """Collects a child's output in a thread; scenarios wait for markers in it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._fd = proc.stdout.fileno()
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._buf.extend(b"\n<EOF>\n")
                    self._cond.notify_all()
                    if self.proc.stdout is not None:
                        self.proc.stdout.close()
                    return
                self._buf.extend(data)
                self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return self._buf.decode(errors="replace")

    @property
    def mark(self) -> int:
        """Current end of output; pass to :meth:`wait_for` to look only at what follows."""
        with self._cond:
            return len(self._buf)

    def wait_for(self, pattern: str, start: int = 0, timeout: float = 30.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears after byte ``start``; return the match."""
        rx = re.compile(pattern, re.S)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._buf[start:].decode(errors="replace")
                m = rx.search(text)
                if m:
                    return m
                if "<EOF>" in text:
                    raise BenchError(f"process exited before printing /{pattern}/; its output ends:\n"
                                     + text[-1500:])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out after {timeout}s waiting for /{pattern}/; output ends:\n"
                                     + text[-1500:])
                self._cond.wait(min(left, 0.2))


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """CPU time (user + system) thread ``tid`` of process ``pid`` has used, in seconds (10 ms steps)."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_thread(pid: int, name: str) -> int:
    """Id of the thread of ``pid`` called ``name`` (``/proc/PID/task/TID/comm``)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == name:
                    return int(tid)
        except OSError:
            continue
    raise BenchError(f"process {pid} has no thread named {name!r}")


def eal_args(prefix: str, core: int) -> list[str]:
    """EAL options for a testpmd that uses ``core`` to forward and another core as main lcore."""
    cores = sorted(os.sched_getaffinity(0))
    if core not in cores:
        raise BenchError(f"core {core} is not available (this process may use cores {cores}); pass --core")
    main = next((c for c in cores if c != core), core)
    lcores = f"{main},{core}" if main != core else f"{core}"
    return ["--no-huge", "-m", "1024", "--no-pci", f"--file-prefix={prefix}", "-l", lcores,
            "--main-lcore", str(main), "--log-level=lib.eal:error"]


def dpdk_runtime_dir(prefix: str) -> str:
    """Where a DPDK process with ``--file-prefix prefix`` keeps its runtime files."""
    base = "/var/run" if os.geteuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix)


class Testpmd:
    """An interactive ``dpdk-testpmd`` driven over stdin: start, stop, read forward totals."""

    def __init__(self, eal: list[str], app: list[str], cleanup: Cleanup, what: str = "dpdk-testpmd") -> None:
        self.lcore = int(eal[eal.index("-l") + 1].split(",")[-1])
        self.lcore_tid: int | None = None
        self.cpu = 0.0
        if not os.access(TESTPMD, os.X_OK):
            raise BenchError(f"{TESTPMD} not found: install dpdk (Debian: apt-get install dpdk) or pass --no-peer")
        prefix = next((a.split("=", 1)[1] for a in eal if a.startswith("--file-prefix=")), None)
        if prefix:  # DPDK leaves its runtime directory (~12 MiB of tmpfs) behind: remove it after the process
            cleanup.push("testpmd runtime dir", functools.partial(shutil.rmtree, dpdk_runtime_dir(prefix),
                                                                   ignore_errors=True))
        # stdbuf: testpmd printf()s through stdio, block-buffered on a pipe
        self.argv = ["stdbuf", "-oL", TESTPMD, *eal, "--", "-i", *app]
        self.proc = spawn(self.argv, cleanup, what, stdin=True)
        self.out = OutputReader(self.proc)
        self.out.wait_for(r"testpmd> ", timeout=60)

    @property
    def command(self) -> str:
        return " ".join(self.argv[2:])

    def send(self, line: str) -> int:
        """Send one command; return the output mark from just before it."""
        mark = self.out.mark
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return mark

    def forward_for(self, seconds: float) -> tuple[int, int, float]:
        """``start``, wait, ``stop``; return (rx, tx, elapsed) summed over all ports.

        :attr:`cpu` is then the CPU time its forwarding lcore used meanwhile (the lcore
        thread blocks while stopped, so start/stop latency adds nothing).
        """
        cpu0 = self._lcore_cpu()
        self.send("start")
        t0 = time.monotonic()
        time.sleep(seconds)  # the measurement window itself, not a wait for a result
        mark = self.send("stop")
        t1 = time.monotonic()
        m = self.out.wait_for(r"Accumulated forward statistics.*?RX-packets:\s+(\d+).*?TX-packets:\s+(\d+)",
                              mark)
        self.out.wait_for(r"testpmd> ", mark + m.end())
        self.cpu = self._lcore_cpu() - cpu0
        return int(m.group(1)), int(m.group(2)), t1 - t0

    def _lcore_cpu(self) -> float:
        if self.lcore_tid is None:
            self.lcore_tid = find_thread(self.proc.pid, f"rte-worker-{self.lcore}")
        return thread_cpu_seconds(self.proc.pid, self.lcore_tid)

    def quit(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                stop_process(self.proc)


def runs_native(worker: Any) -> bool:
    """Whether ``worker`` runs its current plan on the compiled loop (every row's ``native``)."""
    path = getattr(worker, "path", None)  # ("native", None) or ("python", why), where workers say it
    if isinstance(path, tuple):
        return bool(path[0] == "native")
    return getattr(worker, "_native", None) is not None


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
