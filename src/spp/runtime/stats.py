"""Counters: one row of int64 per port in shared memory, one local row per component.

Every place a frame can die has a named reason; each lost frame is counted once,
under one reason, so that for any path ``frames in = frames out + sum(drops)``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit

from spp.runtime.atomics import atomic_add

RX_PACKETS: Final = 0
RX_BYTES: Final = 1
TX_PACKETS: Final = 2
TX_BYTES: Final = 3
ERRORS: Final = 4
DROP_BASE: Final = 5

#: Drop reasons, in column order after ``DROP_BASE``.
DROP_REASONS: Final[tuple[str, ...]] = (
    "ring_full",  # a ring had no room
    "tx_full",  # a device's transmit queue had no room
    "runt",  # frame shorter than an Ethernet header (14 bytes)
    "too_long",  # frame longer than a buffer's data room
    "nombuf",  # the pool had no free buffer
    "link_down",  # the interface is gone or down
    "no_route",  # a classifier found no destination
    "no_tx_port",  # a component had nowhere to send (tx port detached)
    "vlan_error",  # a VLAN operation could not be applied (e.g. no headroom)
    "bad_frame",  # malformed input (e.g. a bad pcap record)
    "mirror_full",  # a mirror destination had no room
    "mirror_nombuf",  # a deep-copy mirror found no free buffer
    "stopped",  # frames held by a component when it was stopped
    "filtered",  # dropped on purpose by a callback
)
N_FIELDS: Final = 24
assert DROP_BASE + len(DROP_REASONS) <= N_FIELDS

REASON: Final[dict[str, int]] = {name: DROP_BASE + i for i, name in enumerate(DROP_REASONS)}


def drop_field(reason: str) -> int:
    """Column of drop ``reason``; ``KeyError`` names the known reasons."""
    try:
        return REASON[reason]
    except KeyError:
        raise KeyError(f"unknown drop reason {reason!r}; known: {', '.join(DROP_REASONS)}") from None


@njit(cache=True, nogil=True)
def stat_add(row: np.ndarray, field: int, value: int) -> None:
    """Atomically add ``value`` to ``row[field]`` (rows are shared between processes)."""
    if value != 0:
        atomic_add(row, field, value)


def row_to_dict(row: np.ndarray, *, port: bool = True) -> dict[str, object]:
    """SPEC's ``stats`` object for a port row (``port=False``: only ``drops``)."""
    drops = {name: int(row[DROP_BASE + i]) for i, name in enumerate(DROP_REASONS) if row[DROP_BASE + i]}
    if not port:
        return {"drops": drops}
    return {
        "rx_packets": int(row[RX_PACKETS]),
        "rx_bytes": int(row[RX_BYTES]),
        "tx_packets": int(row[TX_PACKETS]),
        "tx_bytes": int(row[TX_BYTES]),
        "errors": int(row[ERRORS]),
        "drops": drops,
    }


def total_drops(row: np.ndarray) -> int:
    """Sum of every drop reason in ``row``."""
    return int(row[DROP_BASE : DROP_BASE + len(DROP_REASONS)].sum())
