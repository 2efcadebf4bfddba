"""Checks of a command's ports against the live stack, made before anything changes.

:func:`check_port` refuses a ``phy:N`` the primary has no interface for, and a queue
``phy:NnqQ`` beyond the interface's receive queues (``/sys/class/net/IF/queues``), so
that a component or port mirror naming them is an error instead of a port that
never carries traffic.  Used by the secondaries' ``port add`` and by ``port_mirror add``.
"""

from __future__ import annotations

from pathlib import Path

from spp.ports.base import PortId
from spp.runtime.dataplane import Dataplane

SYS_NET = Path("/sys/class/net")


def rx_queues(iface: str) -> int | None:
    """Number of receive queues of ``iface``, or None when sysfs does not tell."""
    try:
        names = [p.name for p in (SYS_NET / iface / "queues").iterdir()]
    except OSError:
        return None
    count = sum(1 for n in names if n.startswith("rx-"))
    return count or None


def check_port(dp: Dataplane, pid: PortId) -> None:
    """Raise ``ValueError`` saying why ``pid`` cannot carry traffic in this stack (phy ports)."""
    if pid.ptype != "phy":
        return
    phys = dp.config().get("phy", [])
    if not isinstance(phys, list):
        return
    if not 0 <= pid.index < len(phys):
        have = ", ".join(f"phy:{i} ({n})" for i, n in enumerate(phys)) or "none"
        raise ValueError(f"{pid}: the stack has no phy:{pid.index} (its phy ports: {have}; "
                         "spp-primary --phy IF0,IF1,... names them)")
    if pid.queue:
        queues = rx_queues(str(phys[pid.index]))
        if queues is not None and pid.queue >= queues:
            raise ValueError(f"{pid}: interface {phys[pid.index]} has {queues} receive queue"
                             f"{'s' if queues != 1 else ''} (nq 0..{queues - 1})")
