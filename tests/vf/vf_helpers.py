"""Helpers for the spp-vf tests: a manager over MemoryPorts, and reply checks."""

from __future__ import annotations

from typing import Any

from spp.control.manager import Manager
from spp.runtime.dataplane import Dataplane
from spp.testing.memport import MemoryPort

MAC_A = "52:54:00:12:34:56"
MAC_B = "52:54:00:12:34:58"
MAC_X = "52:54:00:99:99:99"


def make_manager(dp: Dataplane, n_mem: int = 4, cores: list[int] | None = None) -> tuple[Manager, list[MemoryPort]]:
    """A vf manager on cores 0 (master), 1, 2, 3 with MemoryPorts as ``pcap:0..n_mem-1``."""
    m = Manager(dp, cores=cores or [0, 1, 2, 3], pin=False)
    mems = [MemoryPort(dp, i) for i in range(n_mem)]
    for p in mems:
        m.provide_port(p)
    return m, mems


def ok(m: Manager, *lines: str) -> None:
    """Run commands that must succeed."""
    for line in lines:
        reply = m.execute(line)
        assert reply == {"results": [{"result": "success"}]}, (line, reply)


def err(m: Manager, line: str) -> str:
    """Run a command that must fail; return its message."""
    reply: dict[str, Any] = m.execute(line)
    result = reply["results"][0]
    assert result["result"] == "error", (line, reply)
    assert list(reply) == ["results"]
    message: str = result["error_details"]["message"]
    return message


def drops(stats: dict[str, Any]) -> int:
    d: dict[str, int] = stats["drops"]
    return sum(d.values())
