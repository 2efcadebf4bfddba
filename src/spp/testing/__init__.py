"""Test kits shipped with spp: fakes, packet builders and conformance checks.

* :func:`stack` — a private data plane (unique ``--file-prefix``) that checks on exit
  that the pool is whole and no reference was dropped twice.
* :class:`~spp.testing.memport.MemoryPort` — an in-memory port pair for unit tests.
* :mod:`spp.testing.packets` — Ethernet/VLAN/IPv4/UDP frame builders (no scapy needed).
* :func:`wait_for` — poll a condition with a deadline (tests never sleep for a result).
"""

from spp.testing.kit import PoolLeak, stack, unique_prefix, wait_for

__all__ = ["PoolLeak", "stack", "unique_prefix", "wait_for"]
