"""Generated stacks for the topology page: a big one (10 processes, 100+ ports) built through
:func:`spp.ctl.ui.snapshot.build_snapshot`, exactly as spp-ctl builds the real ones."""

from __future__ import annotations

from typing import Any

from spp.ctl.ui.snapshot import RateMemory, Reading, build_snapshot


def _stats(n: int) -> dict[str, Any]:
    drops = {"ring_full": n % 7} if n % 5 == 0 else {}
    return {"rx_packets": n * 1000, "rx_bytes": n * 64000, "tx_packets": n * 990, "tx_bytes": n * 63360,
            "errors": 0, "drops": drops}


def _comp(name: str, ctype: str, core: int, rx: list[str], tx: list[str]) -> dict[str, Any]:
    return {"name": name, "type": ctype, "core": core,
            "rx_port": [{"port": p} for p in rx], "tx_port": [{"port": p} for p in tx],
            "stats": {"drops": {"no_route": 2} if ctype == "classifier" else {}}}


def big_stack(scale: int = 1) -> tuple[list[Reading], dict[str, Any], list[dict[str, Any]]]:
    """Readings, primary info and port mirrors of a 10-process stack with 100+ ports.

    vf 1-5 each classify one phy port onto four rings and forward each ring to a
    vhost port; mirror 6 and 7 copy two rings of each vf onto rings that vf 8 and 9
    forward to tap ports; nfv 10 patches pcap ports; the primary holds idle rings.
    """
    comps: dict[tuple[str, int], list[dict[str, Any]]] = {}
    ring = 0
    mirror_in: list[str] = []
    for vf in range(1, 6):
        rings = [f"ring:{ring + k}" for k in range(4)]
        ring += 4
        vfc = [_comp("cls", "classifier", 2, [f"phy:{vf - 1}"], rings)]
        vfc += [_comp(f"fwd{k}", "forward", 3 + k % 2, [r], [f"vhost:{(vf - 1) * 4 + k}"]) for k, r in enumerate(rings)]
        extra = [f"ring:{ring}", f"ring:{ring + 1}"]
        ring += 2
        vfc.append(_comp("merge", "merge", 5, [f"vhost:{(vf - 1) * 4}", f"vhost:{(vf - 1) * 4 + 1}"], extra[:1]))
        vfc.append(_comp("tap", "forward", 5, [f"vhost:{(vf - 1) * 4 + 2}"], extra[1:]))
        mirror_in += extra
        comps[("vf", vf)] = vfc
    out_rings: dict[int, list[str]] = {8: [], 9: []}
    for index, mirror in enumerate((6, 7)):
        mc = []
        for k, src in enumerate(mirror_in[index * 5:(index + 1) * 5]):
            dst = [f"ring:{ring}", f"ring:{ring + 1}"]
            ring += 2
            out_rings[8].append(dst[0])
            out_rings[9].append(dst[1])
            mc.append(_comp(f"mir{k}", "mirror", 2 + k, [src], dst))
        comps[("mirror", mirror)] = mc
    tap = 0
    for vf in (8, 9):
        vfc = []
        for k, src in enumerate(out_rings[vf]):
            vfc.append(_comp(f"out{k}", "forward", 2 + k % 3, [src], [f"tap:{tap}"]))
            tap += 1
        comps[("vf", vf)] = vfc
    readings: list[Reading] = []
    primary_info: dict[str, Any] = {
        "file_prefix": "big", "lcores": [0], "pool": {"n_bufs": 65536, "free": 60000, "in_use": 5536},
        "phy_ports": [], "ring_ports": [], "ports": [], "processes": [],
    }
    readings.append(Reading("primary", None, status=primary_info))
    for (kind, cid), cl in comps.items():
        readings.append(Reading(kind, cid, status={"client-id": cid, "ports": [], "master-lcore": 1, "components": cl}))
    readings.append(Reading("nfv", 10, status={"status": "running", "ports": ["pcap:0", "pcap:1", "pcap:2", "pcap:3"],
                                               "patches": [{"src": "pcap:0", "dst": "pcap:1"},
                                                           {"src": "pcap:2", "dst": "pcap:3"}]}))
    uids: set[str] = set()
    for cl in comps.values():
        for c in cl:
            uids.update(p["port"] for p in c["rx_port"] + c["tx_port"])
    uids.update(f"pcap:{i}" for i in range(4))
    uids.update(f"ring:{ring + i}" for i in range(4))  # idle rings
    for n, uid in enumerate(sorted(uids), start=1):
        entry: dict[str, Any] = {"port": uid, "stats": _stats(n * scale)}
        if uid.startswith("ring:"):
            entry.update(count=n % 64, size=512)
            primary_info["ring_ports"].append(entry)
        elif uid.startswith("phy:"):
            entry["iface"] = f"ens{n}f0"
            primary_info["phy_ports"].append(entry)
        else:
            primary_info["ports"].append(entry)
    mirrors = [{"name": "tap-vm1", "source": "phy:0", "destination": "tap:0", "direction": "both",
                "stats": {"packets": 10 * scale, "filtered": 0, "nombuf": 0, "full": 0, "errors": 0}}]
    return readings, primary_info, mirrors


def big_snapshot() -> dict[str, Any]:
    """Two builds a second apart, so rates are not zero."""
    rates = RateMemory()
    result: dict[str, Any] = {}
    for step in (1, 2):
        readings, primary, mirrors = big_stack(step)
        result = build_snapshot(readings, primary=primary, port_mirrors=mirrors, rates=rates, now=float(step),
                                wall=1_765_000_000.0 + step, seq=step, streams=1)
    return result
