"""The classifier's lookup order (SPEC §3), first on the compiled burst function, then through a worker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vf_helpers import MAC_A, MAC_B, MAC_X, make_manager, ok

from spp.components.classifier import Classifier, build_table
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import REASON
from spp.testing import wait_for
from spp.testing.packets import BROADCAST, frame_number, numbered

MCAST = "01:00:5e:00:00:01"


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


@dataclass
class Outcome:
    """What one burst produced: ``routes`` as ``[(input index, tx)]``, the buffers still to free."""

    routes: list[tuple[int, int]]
    classifier: Classifier
    given: np.ndarray
    pending: np.ndarray

    def release(self, dp: Dataplane) -> None:
        dp.free(self.pending, len(self.pending))


def run(dp: Dataplane, table: list[tuple[int | None, int, int]], frames: list[bytes], n_tx: int = 4) -> Outcome:
    """Classify ``frames`` in one burst; the caller releases the outputs."""
    c = Classifier(dp, "c", 1).with_table(build_table(table))
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    given = ids.copy()
    out, dst, m = c.process(ids, len(frames), n_tx)
    assert dst is not None
    pos = {int(b): i for i, b in enumerate(given)}
    routes = [(pos[int(out[i])], int(dst[i])) for i in range(m)]
    return Outcome(routes, c, given, out[:m].copy())


def test_hit_default_and_no_route(dp: Dataplane) -> None:
    table = [(None, mac(MAC_A), 0), (None, mac(MAC_B), 1)]
    o = run(dp, table, [numbered(0, MAC_A), numbered(1, MAC_B), numbered(2, MAC_X)])
    assert o.routes == [(0, 0), (1, 1)]  # MAC_X: unicast miss, no default: dropped
    assert o.classifier.stats_dict() == {"drops": {"no_route": 1}}
    o.release(dp)
    o = run(dp, [*table, (None, -1, 2)], [numbered(2, MAC_X)])
    assert o.routes == [(0, 2)]
    o.release(dp)


def test_multicast_address_added_is_an_exact_hit(dp: Dataplane) -> None:
    table = [(None, mac(MAC_A), 0), (None, mac(MCAST), 1), (None, -1, 2)]
    o = run(dp, table, [numbered(0, MCAST), numbered(1, "01:00:5e:00:00:02")])
    # the added group goes to its port only; another group floods to every port (default included)
    assert o.routes == [(0, 1), (1, 0), (1, 1), (1, 2)]
    o.release(dp)


def test_broadcast_flood_shares_the_buffer(dp: Dataplane) -> None:
    table = [(None, mac(MAC_A), 0), (None, mac(MAC_B), 1), (None, mac("52:54:00:00:00:07"), 1), (None, -1, 2)]
    free_before = dp.free_count
    o = run(dp, table, [numbered(0, BROADCAST)])
    assert o.routes == [(0, 0), (0, 1), (0, 2)]  # each port once
    assert int(dp.refcnt[o.given[0]]) == 3  # one buffer, three references: no copy was made
    assert dp.free_count == free_before - 1
    o.release(dp)


def test_default_is_a_flag_not_an_address(dp: Dataplane) -> None:
    # the all-zero and all-ones addresses can be registered next to a default
    table = [(None, 0, 0), (None, mac(BROADCAST), 1), (None, -1, 2)]
    o = run(dp, table, [numbered(0, "00:00:00:00:00:00"), numbered(1, BROADCAST), numbered(2, MAC_X)])
    assert o.routes == [(0, 0), (1, 1), (2, 2)]
    o.release(dp)


def test_vlan_tables(dp: Dataplane) -> None:
    table = [
        (None, mac(MAC_A), 0), (None, -1, 3),  # untagged table
        (101, mac(MAC_A), 1), (101, -1, 2),  # VLAN 101
        (102, mac(MAC_B), 1),  # VLAN 102, no default
    ]
    frames = [
        numbered(0, MAC_A, vlan=101),  # hit in 101
        numbered(1, MAC_X, vlan=101),  # miss → 101's default
        numbered(2, MAC_X, vlan=102),  # miss, no 102 default → untagged default
        numbered(3, MAC_X, vlan=7),  # no table for 7 → untagged default
        numbered(4, MAC_B, vlan=7),  # likewise, even though MAC_B is known in 102
        numbered(5, MAC_A),  # untagged hit
        numbered(6, BROADCAST, vlan=101),  # flood: 101's ports (1, 2) + untagged default (3)
        numbered(7, BROADCAST, vlan=102),  # flood: 102's port 1 + untagged default 3
    ]
    o = run(dp, table, frames)
    assert o.routes == [(0, 1), (1, 2), (2, 3), (3, 3), (4, 3), (5, 0), (6, 1), (6, 2), (6, 3), (7, 1), (7, 3)]
    o.release(dp)


def test_vlan_4095_is_not_the_untagged_table(dp: Dataplane) -> None:
    table = [(4095, mac(MAC_A), 0), (None, mac(MAC_B), 1)]
    frames = [numbered(0, MAC_A, vlan=4095), numbered(1, MAC_A), numbered(2, MAC_B, vlan=4095), numbered(3, MAC_B)]
    o = run(dp, table, frames)
    assert o.routes == [(0, 0), (3, 1)]
    assert o.classifier.stats_dict() == {"drops": {"no_route": 2}}
    o.release(dp)


def test_no_table_and_no_untagged_default_drops(dp: Dataplane) -> None:
    o = run(dp, [(101, -1, 0)], [numbered(0, MAC_A, vlan=5), numbered(1, MAC_A)])
    assert o.routes == []
    assert o.classifier.stats_dict() == {"drops": {"no_route": 2}}


def test_runts_are_counted(dp: Dataplane) -> None:
    frames = [b"\x01" * 14, numbered(0, MAC_A)[:12] + b"\x81\x00\x00"]
    c = Classifier(dp, "c", 1).with_table(build_table([(None, -1, 0)]))
    ids = np.zeros(2, np.int32)
    dp.alloc(ids)
    dp.write_frame(int(ids[0]), frames[0][:13])
    dp.write_frame(int(ids[1]), frames[1])
    _, _, m = c.process(ids, 2, 1)
    assert m == 0
    assert int(c.drops[REASON["runt"]]) == 2


def test_many_entries_per_port_and_vlan(dp: Dataplane) -> None:
    macs = [0x020000000000 + i for i in range(3000)]
    table = [(i % 3 or None, a, i % 4) for i, a in enumerate(macs)]
    c = Classifier(dp, "c", 1).with_table(build_table(table))
    frames = [numbered(i, ":".join(f"{(a >> s) & 0xFF:02x}" for s in range(40, -8, -8)),
                       vlan=(i % 3 or None)) for i, a in enumerate(macs)]
    got: list[tuple[int, int]] = []
    for start in range(0, len(frames), 32):
        chunk = frames[start : start + 32]
        ids = np.zeros(len(chunk), np.int32)
        assert dp.alloc(ids) == len(chunk)
        for b, f in zip(ids, chunk, strict=True):
            dp.write_frame(int(b), f)
        out, dst, m = c.process(ids, len(chunk), 4)
        assert dst is not None
        got.extend((frame_number(dp.frame(int(out[i]))), int(dst[i])) for i in range(m))
        dp.free(out[:m].copy(), m)
    assert got == [(i, i % 4) for i in range(len(macs))]


def test_through_the_worker_counts_add_up(dp: Dataplane) -> None:
    m, mem = make_manager(dp)
    try:
        ok(m, "component start cls 1 classifier",
           "port add pcap:0 rx cls", "port add pcap:1 tx cls", "port add pcap:2 tx cls", "port add pcap:3 tx cls",
           f"classifier_table add mac {MAC_A} pcap:1",
           f"classifier_table add mac {MAC_B} pcap:2",
           "classifier_table add vlan 101 default pcap:3")
        frames = [numbered(0, MAC_A), numbered(1, MAC_B), numbered(2, MAC_X), numbered(3, BROADCAST),
                  numbered(4, MAC_X, vlan=101), b"\x00" * 10]
        mem[0].inject(frames * 50)
        wait_for(lambda: len(mem[1].sent) + len(mem[2].sent) + len(mem[3].sent) == 50 * 5, timeout=60)
        assert sorted(frame_number(f) for f in mem[1].sent) == [0] * 50 + [3] * 50
        assert sorted(frame_number(f) for f in mem[2].sent) == [1] * 50 + [3] * 50
        assert sorted(frame_number(f) for f in mem[3].sent) == [4] * 50
        info = m.status()
        cls = info["core"][0]
        assert cls["stats"] == {"drops": {"no_route": 50}}
        assert cls["rx_port"][0]["stats"]["drops"] == {"runt": 50}
        assert cls["rx_port"][0]["stats"]["rx_packets"] == 250
        # in = out + drops, where the 50 broadcasts went out twice (one extra copy each)
        out = sum(p["stats"]["tx_packets"] for p in cls["tx_port"])
        extra_copies = 50
        assert cls["rx_port"][0]["stats"]["rx_packets"] == out - extra_copies + cls["stats"]["drops"]["no_route"]
    finally:
        m.exit()


def test_flood_copy_with_a_tx_vlan_tag_does_not_change_the_other_copies(dp: Dataplane) -> None:
    """A VLAN operation on one copy of a shared buffer must not show in the others (copy on write)."""
    m, mem = make_manager(dp)
    try:
        ok(m, "component start cls 1 classifier", "port add pcap:0 rx cls",
           "port add pcap:1 tx cls add_vlantag 101 3", "port add pcap:2 tx cls", "port add pcap:3 tx cls del_vlantag",
           f"classifier_table add mac {MAC_A} pcap:1", f"classifier_table add mac {MAC_B} pcap:2",
           "classifier_table add mac default pcap:3")
        frame = numbered(0, BROADCAST)
        mem[0].inject([frame] * 100)
        wait_for(lambda: len(mem[3].sent) == 100, timeout=60)
        wait_for(lambda: len(mem[1].sent) == len(mem[2].sent) == 100)
        assert set(mem[2].sent) == set(mem[3].sent) == {frame}
        assert {f[12:16] for f in mem[1].sent} == {bytes([0x81, 0x00, 0x60, 101])}
    finally:
        m.exit()


def test_unshare_copies_shared_buffers_and_counts_nombuf() -> None:
    from spp.components.vlan import unshare
    from spp.testing import stack

    with stack(n_bufs=64) as dp:
        ids = np.zeros(64, np.int32)
        assert dp.alloc(ids) == 64
        dp.write_frame(int(ids[0]), numbered(5))
        dp.ref(ids[:1].copy())  # buffer 0 is shared
        dp.free(ids[62:].copy())  # two buffers free
        burst = ids[:2].copy()
        assert unshare(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header, burst, 2,
                       np.empty(1, np.int32)) == 2
        assert burst[0] != ids[0] and burst[1] == ids[1]
        assert dp.frame(int(burst[0])) == numbered(5)
        assert int(dp.refcnt[ids[0]]) == 1
        dp.ref(ids[2:3].copy())
        dp.free(burst, 1)
        dp.alloc(np.zeros(dp.free_count, np.int32))  # the pool is empty now
        shared = ids[2:3].copy()
        assert dp.free_count == 0
        assert unshare(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header, shared, 1,
                       np.empty(1, np.int32)) == 0
        assert int(dp.refcnt[ids[2]]) == 1  # our reference was dropped, the other holder keeps it
        held = np.array([i for i in range(64) if dp.refcnt[i] > 0], np.int32)
        dp.free(held)


MAC_POOL = [MAC_A, MAC_B, MAC_X, BROADCAST, MCAST, "01:80:c2:00:00:0e", "00:00:00:00:00:00"]
VLANS = [None, 0, 5, 4095]


def reference(entries: dict[tuple[int | None, str | None], int], vlan: int | None, dst: str) -> list[int]:
    """SPEC §3's lookup order, written plainly: the tx ports a frame goes to (sorted)."""
    untagged_default = entries.get((None, None))
    table = {k: v for k, v in entries.items() if k[0] == vlan}
    if not table:
        return [] if untagged_default is None else [untagged_default]
    if (vlan, dst) in table:
        return [table[(vlan, dst)]]
    if int(dst[:2], 16) & 1:
        ports = set(table.values())
        if vlan is not None and untagged_default is not None:
            ports.add(untagged_default)
        return sorted(ports)
    if (vlan, None) in table:
        return [table[(vlan, None)]]
    if vlan is not None and untagged_default is not None:
        return [untagged_default]
    return []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.dictionaries(st.tuples(st.sampled_from(VLANS), st.one_of(st.none(), st.sampled_from(MAC_POOL))),
                               st.integers(0, 3), max_size=12),
       frames=st.lists(st.tuples(st.sampled_from([*VLANS, 7]), st.sampled_from(MAC_POOL)), min_size=1, max_size=40))
def test_matches_the_reference_model(dp: Dataplane, entries: dict[tuple[int | None, str | None], int],
                                     frames: list[tuple[int | None, str]]) -> None:
    table = [(v, -1 if a is None else mac(a), tx) for (v, a), tx in entries.items()]
    o = run(dp, table, [numbered(i, a, vlan=v) for i, (v, a) in enumerate(frames)])
    try:
        got: dict[int, list[int]] = {}
        for i, tx in o.routes:
            got.setdefault(i, []).append(tx)
        for i, (v, a) in enumerate(frames):
            assert sorted(got.get(i, [])) == reference(entries, v, a), (entries, v, a)
        dropped = sum(1 for v, a in frames if not reference(entries, v, a))
        assert int(o.classifier.drops[REASON["no_route"]]) == dropped
        for i, b in enumerate(o.given):  # one reference per copy sent
            assert int(dp.refcnt[b]) == len(got.get(i, []))
    finally:
        o.release(dp)
