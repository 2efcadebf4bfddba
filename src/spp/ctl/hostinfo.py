"""Host CPU facts for ``GET /v1/cpu_layout`` and ``GET /v1/cpu_usage``.

Read from Linux's ``/sys/devices/system/cpu``, ``/proc/cpuinfo`` and
``/proc/stat``; the paths are parameters so tests can use fake trees.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Final

SYS_CPU: Final = Path("/sys/devices/system/cpu")
PROC_CPUINFO: Final = Path("/proc/cpuinfo")
PROC_STAT: Final = Path("/proc/stat")

_CPU_DIR_RE: Final = re.compile(r"^cpu([0-9]+)$")


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``"0-3,6,8-9"``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return cpus


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cpuinfo_topology(cpuinfo: Path) -> dict[int, tuple[int, int]]:
    """``{lcore: (socket, core)}`` from /proc/cpuinfo (x86 layout); may be empty."""
    result: dict[int, tuple[int, int]] = {}
    try:
        text = cpuinfo.read_text()
    except OSError:
        return result
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        try:
            lcore = int(fields["processor"])
            result[lcore] = (int(fields.get("physical id", "0")), int(fields.get("core id", lcore)))
        except (KeyError, ValueError):
            continue
    return result


def online_cpus(sys_cpu: Path = SYS_CPU) -> list[int]:
    """Online logical CPUs, from ``online`` or else the ``cpuN`` directories."""
    try:
        return parse_cpu_list((sys_cpu / "online").read_text())
    except (OSError, ValueError):
        pass
    cpus = []
    try:
        for entry in sys_cpu.iterdir():
            match = _CPU_DIR_RE.match(entry.name)
            if match:
                cpus.append(int(match[1]))
    except OSError:
        return []
    return sorted(cpus)


def cpu_layout(sys_cpu: Path = SYS_CPU, cpuinfo: Path = PROC_CPUINFO) -> list[dict[str, Any]]:
    """The host's CPU layout in SPP's shape, sorted by socket and core id.

    ``[{"socket_id": 0, "cores": [{"core_id": 0, "lcores": [0, 4]}, ...]}, ...]``

    Topology comes from ``cpuN/topology/{physical_package_id,core_id}``, else
    from /proc/cpuinfo, else each lcore is its own core on socket 0.
    """
    fallback = _cpuinfo_topology(cpuinfo)
    sockets: dict[int, dict[int, list[int]]] = {}
    for lcore in online_cpus(sys_cpu):
        topo = sys_cpu / f"cpu{lcore}" / "topology"
        socket_id = _read_int(topo / "physical_package_id")
        core_id = _read_int(topo / "core_id")
        if socket_id is None or core_id is None:
            socket_id, core_id = fallback.get(lcore, (0, lcore))
        sockets.setdefault(max(socket_id, 0), {}).setdefault(core_id, []).append(lcore)
    return [
        {
            "socket_id": socket_id,
            "cores": [{"core_id": core_id, "lcores": sorted(lcores)} for core_id, lcores in sorted(cores.items())],
        }
        for socket_id, cores in sorted(sockets.items())
    ]


def read_cpu_times(stat: Path = PROC_STAT) -> dict[int, tuple[int, int]]:
    """``{lcore: (busy_jiffies, total_jiffies)}`` from /proc/stat.

    Idle time is ``idle + iowait``; guest time is already part of user time
    and is not counted twice.
    """
    times: dict[int, tuple[int, int]] = {}
    for line in stat.read_text().splitlines():
        name, _, rest = line.partition(" ")
        match = _CPU_DIR_RE.match(name)
        if not match:
            continue
        values = [int(v) for v in rest.split()]
        total = sum(values[:8])  # user nice system idle iowait irq softirq steal
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        times[int(match[1])] = (total - idle, total)
    return times


def usage_between(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """Per-lcore busy percentage between two :func:`read_cpu_times` samples."""
    usage: list[dict[str, Any]] = []
    for lcore in sorted(after):
        busy1, total1 = after[lcore]
        busy0, total0 = before.get(lcore, (busy1, total1))
        elapsed = total1 - total0
        busy = 100.0 * (busy1 - busy0) / elapsed if elapsed > 0 else 0.0
        usage.append({"lcore_id": lcore, "busy": round(min(max(busy, 0.0), 100.0), 1)})
    return usage


async def cpu_usage(interval: float = 0.2, stat: Path = PROC_STAT) -> dict[str, Any]:
    """Busy percentage of each lcore over a sample of ``interval`` seconds.

    Returns ``{"interval": 0.2, "lcores": [{"lcore_id": 0, "busy": 12.5}, ...]}``
    where ``busy`` is the share (0-100, one decimal) of the interval the lcore
    spent outside idle and iowait.
    """
    before = read_cpu_times(stat)
    await asyncio.sleep(interval)
    return {"interval": interval, "lcores": usage_between(before, read_cpu_times(stat))}
