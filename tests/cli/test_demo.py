"""``spp demo`` end to end: it runs to completion and leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute_netns

from spp.runtime.shm import segment_path
from spp.testing import wait_for


def _leftovers(pid: int, prefix: str | None) -> list[str]:
    tag = f"sd{pid % 10000}"
    found = []
    if os.geteuid() == 0:
        found += [f"netns {n}" for n in pyroute_netns.listnetns() if n.startswith(tag)]
        with IPRoute() as ipr:
            found += [f"link {link.get_attr('IFLA_IFNAME')}" for link in ipr.get_links()
                      if str(link.get_attr("IFLA_IFNAME")).startswith(tag)]
    if prefix is not None:
        if segment_path(prefix, "dataplane").exists():
            found.append(f"shm {prefix}")
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if prefix in cmdline:
                    found.append(f"process {proc.name}: {cmdline}")
    return found


def _prefix(output: str) -> str | None:
    match = re.search(r"--file-prefix\s+(\S+?)\)", output)
    return match.group(1) if match else None


def _run_demo(*args: str, timeout: float = 180) -> tuple[subprocess.CompletedProcess[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "spp.cli.main", "demo", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), proc.pid


@pytest.mark.root
def test_demo_runs_and_cleans_up() -> None:
    result, pid = _run_demo("--seconds", "3", "--no-live")
    out = result.stdout
    assert result.returncode == 0, out
    assert "Traceback" not in out
    counts = {name: int(value.replace(",", "")) for name, value in
              re.findall(r"│ (sent to VM1's MAC|sent to VM2's MAC|received in VM1|received in VM2|"
                         r"mirror copies received by the monitor)\s+│\s+([\d,]+)", out)}
    assert counts["sent to VM1's MAC"] > 0, out
    # frames in = frames out + counted drops; the monitor gets a copy of every frame VM1 gets
    drops_match = re.search(r"dropped, all ports, all reasons\s+│\s+([\d,]+)", out)
    assert drops_match is not None, out
    drops = int(drops_match.group(1).replace(",", ""))
    sent1, sent2 = counts["sent to VM1's MAC"], counts["sent to VM2's MAC"]
    vm1, vm2, monitor = (counts["received in VM1"], counts["received in VM2"],
                         counts["mirror copies received by the monitor"])
    if drops == 0:
        assert (vm1, vm2, monitor) == (sent1, sent2, sent1), out
    else:  # every frame is either delivered or counted (copies add frames)
        assert vm1 + vm2 + drops >= sent1 + sent2, out
    assert re.search(r"frames in = frames out \+ counted drops \(originals\): .* ✓", out), out
    assert re.search(r"pool buffers in use after teardown\s+│\s+0 of 8192", out), out
    assert _leftovers(pid, _prefix(out)) == []


def test_demo_null_variant() -> None:
    result, pid = _run_demo("--seconds", "1", "--null", "--no-live")
    assert result.returncode == 0, result.stdout
    assert "running the mirror on null ports" in result.stdout
    assert re.search(r"pool buffers in use after teardown\s+│\s+0 of 8192", result.stdout), result.stdout
    assert _leftovers(pid, _prefix(result.stdout)) == []


@pytest.mark.root
def test_demo_interrupted_cleans_up() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "spp.cli.main", "demo", "--seconds", "30", "--no-live"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        wait_for(lambda: lines.append(proc.stdout.readline()) or "mirror 2; port add ring:5 tx mir" in lines[-1],
                 timeout=120)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "interrupted: cleaning up" in out
    assert _leftovers(proc.pid, _prefix(out)) == []
