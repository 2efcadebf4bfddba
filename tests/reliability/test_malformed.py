"""Malformed frames through a running spp-vf path are counted drops, and the ledger balances.

Runts and giants die at the receiving port (``runt``, ``too_long``); a frame too short
for its VLAN tag dies in the classifier (``runt``).  Bad pcap records:
tests/ports/test_pcap.py (``bad_frame``).
"""

from __future__ import annotations

from spp.control.manager import Manager
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, Dataplane
from spp.testing import wait_for
from spp.testing.conservation import Ledger, port_drops
from spp.testing.memport import MemoryPort
from spp.testing.packets import numbered

MAC = "52:54:00:12:34:56"


def test_runts_giants_and_truncated_tags_are_counted(dp: Dataplane) -> None:
    assert ETHER_MIN == 14
    m = Manager(dp, cores=[0, 1], pin=False)
    src, dst = MemoryPort(dp, 0), MemoryPort(dp, 1)
    m.provide_port(src)
    m.provide_port(dst)
    good = [numbered(i, MAC) for i in range(50)]
    tagged = numbered(99, MAC, vlan=7)
    bad = {
        "runt": [b"\x01" * (ETHER_MIN - 1), b""],
        "too_long": [b"\x02" * (DATA_ROOM + 1), b"\x03" * 65536],
        "truncated tag": [tagged[:15], tagged[:17]],  # 0x8100 but no room for the tag
    }
    frames = [*good, *(f for fs in bad.values() for f in fs)]
    try:
        for line in ("component start cls 1 classifier", "port add pcap:0 rx cls", "port add pcap:1 tx cls",
                     "classifier_table add mac default pcap:1", "classifier_table add vlan 7 default pcap:1"):
            assert m.execute(line) == {"results": [{"result": "success"}]}, line
        src.inject(frames)
        cls = m.components()["cls"]

        def ledger() -> Ledger:
            led = Ledger("malformed")
            led.offer("injected", len(frames))
            led.deliver("pcap:1 tx", len(dst.sent))
            for port in ("pcap:0", "pcap:1"):
                for reason, n in port_drops(dp, port).items():
                    led.drop(port, reason, n)
            for reason, n in cls.stats_dict()["drops"].items():  # type: ignore[attr-defined]
                led.drop("cls", reason, n)
            return led

        wait_for(lambda: not src.pending and ledger().balance == 0, timeout=60, message=lambda: ledger().report())
        ledger().check()
        assert len(dst.sent) == len(good)
        assert port_drops(dp, "pcap:0") == {"runt": 2, "too_long": 2}
        assert cls.stats_dict() == {"drops": {"runt": 2}}
    finally:
        m.execute("exit")
