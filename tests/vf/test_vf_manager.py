"""The manager: SPEC §3's rules, status shape, VLAN operations, hitless reconfiguration."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from vf_helpers import MAC_A, MAC_B, MAC_X, err, make_manager, ok

from spp.control.manager import Manager, ManagerError
from spp.lang import parse_cores
from spp.ports.ring import drain_ring
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.packets import frame_number, numbered

NO_VLAN = {"operation": "none", "id": 0, "pcp": 0}


def test_core_rules(dp: Dataplane) -> None:
    m = Manager(dp, cores=[2, 3, 4], pin=False)
    try:
        assert err(m, "component start a 2 forward") == (
            "core 2 is the master lcore and cannot run components: use one of 3, 4")
        assert err(m, "component start a 7 forward") == (
            "core 7 is not in this process's core list (-l): use one of 3, 4")
        ok(m, "component start a 3 forward", "component start b 3 merge")  # two on one core
        assert "already exists (on core 3)" in err(m, "component start a 4 forward")
        assert sorted(m.workers()) == [3]
        ok(m, "component stop a", "component stop b")
        assert m.workers() == {}
        assert "no component named 'a' (components: none)" in err(m, "component stop a")
    finally:
        m.exit()


def test_parse_cores() -> None:
    assert parse_cores("0,1,2") == [0, 1, 2]
    assert parse_cores("2-6") == [2, 3, 4, 5, 6]
    assert parse_cores("1-3,5") == [1, 2, 3, 5]
    for bad, msg in (("a", "expected e.g."), ("3-1", "must go upwards"), ("1,1", "appears twice")):
        with pytest.raises(ValueError, match=msg):
            parse_cores(bad)


def test_port_rules(dp: Dataplane) -> None:
    m, _ = make_manager(dp)
    try:
        ok(m, "component start f1 1 forward", "component start f2 2 forward", "component start mg 3 merge",
           "component start cls 3 classifier")
        ok(m, "port add ring:0 tx f1", "port add ring:0 rx f2")  # tx of one, rx of another
        assert err(m, "port add ring:0 tx f2") == (
            "port ring:0 is already attached as tx of 'f1': a port is attached once per direction "
            "(port del ring:0 tx f1 first)")
        assert "already attached as rx of 'f2'" in err(m, "port add ring:0 rx mg")
        assert "forward 'f1' takes at most 1 tx port(s)" in err(m, "port add ring:1 tx f1")
        ok(m, "port add ring:1 rx mg", "port add ring:2 rx mg", "port add ring:3 tx mg")
        ok(m, "port add ring:4 rx cls")
        assert "classifier 'cls' takes at most 1 rx port(s)" in err(m, "port add ring:5 rx cls")
        assert "is not attached as tx of 'f1' (tx ports: ring:0)" in err(m, "port del ring:9 tx f1")
        assert "no component named 'zz'" in err(m, "port add ring:9 tx zz")
        assert "memif:N is not supported" in err(m, "port add memif:0 rx f1")
        assert "ring:99 out of range" in err(m, "port add ring:99 rx f1")
        assert "is not attached as tx of a classifier" in err(m, "classifier_table add mac default ring:0")
        # repeating port add with a VLAN option updates the tag
        ok(m, "port add ring:0 tx f1 add_vlantag 101 3")
        assert m.status()["core"][0]["tx_port"][0]["vlan"] == {"operation": "add", "id": 101, "pcp": 3}
        ok(m, "port add ring:0 tx f1 del_vlantag")
        assert m.status()["core"][0]["tx_port"][0]["vlan"] == {"operation": "del", "id": 0, "pcp": 0}
        ok(m, "port del ring:0 tx f1", "port add ring:0 tx f1")
    finally:
        m.exit()


def test_a_bad_resource_id_is_reported_before_the_component(dp: Dataplane) -> None:
    """``port add`` checks the port id first: its range, then that the type has a driver."""
    m, _ = make_manager(dp)
    try:
        ok(m, "component start cls 1 classifier", "port add ring:0 rx cls")
        before = m.status()
        n_rings = dp.layout.n_rings
        assert err(m, "port add ring:99999 rx cls") == (
            f"cannot open port ring:99999: ring:99999 out of range: index must be 0..{n_rings - 1}")
        assert "ring:99999 out of range" in err(m, "port add ring:99999 rx nosuch")
        assert "memif:N is not supported" in err(m, "port add memif:1 rx cls")
        # a good id on a full component still gets the port-limit error, and opens nothing
        assert err(m, "port add ring:1 rx cls") == (
            "cannot attach ring:1 as rx: classifier 'cls' takes at most 1 rx port(s)")
        assert m.ports.find("ring:1") is None and m.ports.find("ring:99999") is None
        assert m.status() == before
    finally:
        m.exit()

def test_classifier_table_rules(dp: Dataplane) -> None:
    m, _ = make_manager(dp)
    try:
        ok(m, "component start cls 1 classifier", "port add ring:0 tx cls", "port add ring:1 tx cls")
        ok(m, f"classifier_table add mac {MAC_A} ring:0", "classifier_table add mac default ring:1",
           f"classifier_table add vlan 101 {MAC_A} ring:1", "classifier_table add vlan 101 default ring:1",
           f"classifier_table add vlan 4095 {MAC_A} ring:0")
        assert err(m, f"classifier_table add mac {MAC_A.upper()} ring:1") == (
            f"classifier_table entry {MAC_A} already exists (port ring:0): delete it first")
        assert err(m, "classifier_table del vlan 102 default ring:1") == (
            "no classifier_table entry 102/default: nothing to delete")
        assert err(m, f"classifier_table del mac {MAC_A} ring:1") == (
            f"classifier_table entry {MAC_A} is on port ring:0, not ring:1")
        assert m.status()["classifier_table"] == [
            {"type": "mac", "value": MAC_A, "port": "ring:0"},
            {"type": "mac", "value": "default", "port": "ring:1"},
            {"type": "vlan", "value": f"101/{MAC_A}", "port": "ring:1"},
            {"type": "vlan", "value": "101/default", "port": "ring:1"},
            {"type": "vlan", "value": f"4095/{MAC_A}", "port": "ring:0"},
        ]
        ok(m, f"classifier_table del vlan 4095 {MAC_A} ring:0")
        assert len(m.status()["classifier_table"]) == 4
        with pytest.raises(ManagerError, match="invalid VLAN id '4096'"):
            m.classifier_add(4096, None, "ring:0")
    finally:
        m.exit()


def test_status_shape(dp: Dataplane) -> None:
    m = Manager(dp, client_id=7, cores=[2, 3, 4, 5], pin=False)
    try:
        ok(m, "component start cls 3 classifier", "port add ring:2 rx cls", "port add ring:0 tx cls",
           "port add ring:1 tx cls add_vlantag 101 3", f"classifier_table add mac {MAC_A} ring:0",
           "classifier_table add vlan 101 default ring:1", "component start fwd 5 forward",
           "port add nullpmd:0 tx fwd")
        reply = m.execute("status")
        assert list(reply) == ["results", "info"]
        assert reply["results"] == [{"result": "success"}]
        info = reply["info"]
        assert list(info) == ["client-id", "phy", "vhost", "ring", "nullpmd", "master-lcore", "core",
                              "classifier_table", "workers", "state"]  # SPP's keys, then spp's
        assert info["client-id"] == 7 and info["state"] == "ready"
        assert (info["phy"], info["vhost"], info["ring"], info["nullpmd"]) == ([], [], ["0", "1", "2"], ["0"])
        assert info["master-lcore"] == 2
        zero = {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0, "errors": 0, "drops": {}}
        assert info["core"] == [
            {"core": 3, "name": "cls", "type": "classifier",
             "rx_port": [{"port": "ring:2", "vlan": NO_VLAN, "stats": zero}],
             "tx_port": [{"port": "ring:0", "vlan": NO_VLAN, "stats": zero},
                         {"port": "ring:1", "vlan": {"operation": "add", "id": 101, "pcp": 3}, "stats": zero}],
             "stats": {"drops": {}}},
            {"core": 4, "type": "unuse"},
            {"core": 5, "name": "fwd", "type": "forward", "rx_port": [],
             "tx_port": [{"port": "nullpmd:0", "vlan": NO_VLAN, "stats": zero}], "stats": {"drops": {}}},
        ]
        assert info["classifier_table"] == [{"type": "mac", "value": MAC_A, "port": "ring:0"},
                                            {"type": "vlan", "value": "101/default", "port": "ring:1"}]
    finally:
        m.exit()


def test_empty_status_and_mirror_status(dp: Dataplane) -> None:
    m = Manager(dp, cores=[0, 1], pin=False)
    assert m.status() == {"client-id": 1, "phy": [], "vhost": [], "ring": [], "master-lcore": 0,
                          "core": [{"core": 1, "type": "unuse"}], "classifier_table": [], "workers": [],
                          "state": "ready"}
    m.exit()
    assert "is exiting" in err(m, "component start a 1 forward")
    mm = Manager(dp, process="mirror", client_id=2, cores=[0, 1], pin=False)
    try:
        assert "classifier_table" not in mm.status()
        assert "invalid component type 'forward': must be 'mirror'" in err(mm, "component start a 1 forward")
        assert mm.options == {"copy": "shallow"}
    finally:
        mm.exit()


def test_commands_while_compiling_take_effect_once_ready(dp: Dataplane, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data path compiles in the background: commands are answered at once, their plans adopted
    once it is ready; frames given meanwhile wait in their ring, none is lost."""
    import threading

    from spp.control import warmup
    from spp.ports.base import PortTable

    go = threading.Event()
    real = warmup.compile_data_path
    monkeypatch.setattr(warmup, "compile_data_path", lambda d: (go.wait(60), real(d)))
    m = Manager(dp, cores=[0, 1], pin=False, wait_compiled=False)
    ports = PortTable(dp)
    try:
        assert m.status()["state"] == "compiling"
        ok(m, "component start fwd 1 forward", "port add ring:0 rx fwd", "port add ring:1 tx fwd")
        assert m.status()["core"][0]["name"] == "fwd" and m.workers() == {}  # taken, not yet running
        ids = np.zeros(50, np.int32)
        assert dp.alloc(ids) == 50
        for i, b in enumerate(ids):
            dp.write_frame(int(b), numbered(i))
        assert ports.get("ring:0").tx_burst(ids, 50) == 50
        assert ringcore.ring_count(dp.ring_ctrl[1]) == 0
        ok(m, "component start gone 1 forward", "component stop gone")  # a plan that came and went meanwhile
        go.set()
        wait_for(lambda: m.status()["state"] == "ready", timeout=60)
        got: list[int] = []
        out = np.zeros(64, np.int32)
        sink = ports.get("ring:1")

        def collect() -> bool:
            k = sink.rx_burst(out)
            got.extend(frame_number(dp.frame(int(b))) for b in out[:k])
            dp.free(out, k)
            return len(got) >= 50

        wait_for(collect, timeout=30, message="the frames given while compiling")
        assert got == list(range(50)) and list(m.workers()) == [1]
    finally:
        go.set()
        m.exit()
        ports.close_all()
        for r in (0, 1):
            drain_ring(dp, r)


def _tci(frame: bytes) -> int | None:
    return struct.unpack("!H", frame[14:16])[0] if frame[12:14] == b"\x81\x00" else None


def test_vlan_add_del_rewrite_through_the_worker(dp: Dataplane) -> None:
    m, mem = make_manager(dp)
    try:
        ok(m, "component start f 1 forward", "port add pcap:0 rx f add_vlantag 101 3", "port add pcap:1 tx f")
        mem[0].inject([numbered(0), numbered(1, vlan=7, pcp=1)])
        wait_for(lambda: len(mem[1].sent) == 2, timeout=60)
        assert [_tci(f) for f in mem[1].sent] == [(3 << 13) | 101] * 2  # pushed, and rewritten
        assert [frame_number(f) for f in mem[1].sent] == [0, 1]
        ok(m, "port add pcap:0 rx f del_vlantag")  # update the rx operation: strip
        mem[0].inject([numbered(2, vlan=7), numbered(3)])
        wait_for(lambda: len(mem[1].sent) == 4)
        assert [_tci(f) for f in mem[1].sent[2:]] == [None, None]
        tagged = numbered(2, vlan=7)
        assert mem[1].sent[2] == tagged[:12] + tagged[16:]
        ok(m, "port del pcap:1 tx f", "port add pcap:2 tx f add_vlantag 5 0")  # tx side
        mem[0].inject([numbered(4)])
        wait_for(lambda: len(mem[2].sent) == 1)
        assert _tci(mem[2].sent[0]) == 5
    finally:
        m.exit()


ICMP_SCENARIO = """\
component start cls 3 classifier
component start fwd1 4 forward
component start fwd2 5 forward
component start mgr 6 merge
port add pcap:0 rx cls
port add ring:0 tx cls
port add ring:1 tx cls
port add ring:0 rx fwd1
port add ring:2 tx fwd1
port add ring:1 rx fwd2
port add ring:3 tx fwd2
port add ring:2 rx mgr
port add ring:3 rx mgr
port add pcap:1 tx mgr
classifier_table add mac 52:54:00:12:34:56 ring:0
classifier_table add mac 52:54:00:12:34:58 ring:1"""


def test_classify_icmp_scenario(dp: Dataplane) -> None:
    m, mem = make_manager(dp, cores=[2, 3, 4, 5, 6])
    try:
        ok(m, *ICMP_SCENARIO.splitlines())
        frames = [numbered(i, (MAC_A, MAC_B, MAC_X)[i % 3]) for i in range(3000)]
        for start in range(0, 3000, 500):
            mem[0].inject(frames[start : start + 500])
            wait_for(lambda s=start: len(mem[1].sent) >= (s + 500) * 2 // 3, timeout=60)
        assert sorted(frame_number(f) for f in mem[1].sent) == [i for i in range(3000) if i % 3 != 2]
        wait_for(lambda: m.status()["core"][0]["stats"] == {"drops": {"no_route": 1000}}, timeout=10,
                 message=lambda: f"1000 no_route drops counted: {m.status()['core'][0]['stats']}")
        info = m.status()
        cls, fwd1, _fwd2, mgr = info["core"]
        assert cls["tx_port"][0]["stats"]["tx_packets"] == fwd1["rx_port"][0]["stats"]["rx_packets"] == 1000
        assert mgr["tx_port"][0]["stats"]["tx_packets"] == 2000
        assert info["ring"] == ["0", "1", "2", "3"]
    finally:
        m.exit()


def test_hitless_reconfiguration(dp: Dataplane) -> None:
    """1,000 table and port changes while traffic flows: every routable frame arrives exactly once."""
    m, mem = make_manager(dp)
    rng = random.Random(7)
    try:
        ok(m, "component start cls 1 classifier", "port add pcap:0 rx cls", "port add pcap:1 tx cls",
           "port add pcap:2 tx cls", "port add ring:3 tx cls",
           f"classifier_table add mac {MAC_A} pcap:1", f"classifier_table add mac {MAC_B} pcap:2",
           f"classifier_table add mac {MAC_X} ring:3")
        sent = 0
        from_ring = 0
        b_on, ring_on = True, True
        extra: list[str] = []
        for op in range(1000):
            mem[0].inject([numbered(sent + i, (MAC_A, MAC_B, MAC_X)[(sent + i) % 3]) for i in range(24)])
            sent += 24
            choice = op % 4
            if choice == 0:
                ok(m, f"classifier_table {'del' if b_on else 'add'} mac {MAC_B} pcap:2")
                b_on = not b_on
            elif choice == 1:
                ok(m, f"port {'del' if ring_on else 'add'} ring:3 tx cls")
                ring_on = not ring_on
            elif choice == 2 or not extra:
                a = f"02:00:00:00:{rng.randrange(256):02x}:{op % 256:02x}"
                if a not in extra:
                    ok(m, f"classifier_table add vlan {op % 4096} {a} pcap:{1 + op % 2}")
                    extra.append(f"vlan {op % 4096} {a} pcap:{1 + op % 2}")
            else:
                ok(m, f"classifier_table del {extra.pop(rng.randrange(len(extra)))}")
            from_ring += drain_ring(dp, 3)
            if op == 500:
                assert mem[1].sent, "traffic flows while the configuration changes"

        def done() -> bool:
            nonlocal from_ring
            from_ring += drain_ring(dp, 3)
            cls = m.status()["core"][0]
            return (len(mem[1].sent) + len(mem[2].sent) + from_ring
                    + sum(cls["stats"]["drops"].values()) == sent) and not mem[0].pending

        wait_for(done, timeout=60, message=lambda: f"{sent} frames accounted for")
        got_a = sorted(frame_number(f) for f in mem[1].sent)
        assert got_a == list(range(0, sent, 3))  # always routed: each exactly once, none lost
        assert all(frame_number(f) % 3 == 1 for f in mem[2].sent)
        assert len({frame_number(f) for f in mem[2].sent}) == len(mem[2].sent)
        info = m.status()
        assert info["core"][0]["stats"]["drops"].keys() <= {"no_route"}
    finally:
        m.exit()
        drain_ring(dp, 3)


def test_exit_returns_every_buffer(dp: Dataplane) -> None:
    m = Manager(dp, cores=[0, 1, 2], pin=False)
    ok(m, "component start f 1 forward", "port add nullpmd:0 rx f", "port add ring:0 tx f",
       "component start g 2 forward", "port add ring:0 rx g", "port add nullpmd:1 tx g")
    wait_for(lambda: m.status()["core"][1]["tx_port"][0]["stats"]["tx_packets"] > 1000, timeout=60)
    ok(m, "exit")
    assert m.workers() == {}
    drain_ring(dp, 0)
    assert dp.free_count == dp.n_bufs
    assert ringcore.ring_count(dp.ring_ctrl[0]) == 0
    assert np.all(dp.refcnt == 0)


def test_frames_wait_in_a_detached_ring(dp: Dataplane) -> None:
    m, mem = make_manager(dp)
    try:
        ok(m, "component start f1 1 forward", "port add pcap:0 rx f1", "port add ring:0 tx f1")
        mem[0].inject([numbered(i) for i in range(100)])
        wait_for(lambda: ringcore.ring_count(dp.ring_ctrl[0]) == 100, timeout=60)
        ok(m, "port del ring:0 tx f1", "component stop f1")
        assert ringcore.ring_count(dp.ring_ctrl[0]) == 100  # still there
        ok(m, "component start f2 2 forward", "port add ring:0 rx f2", "port add pcap:1 tx f2")
        wait_for(lambda: len(mem[1].sent) == 100, timeout=60)
        assert [frame_number(f) for f in mem[1].sent] == list(range(100))
    finally:
        m.exit()
