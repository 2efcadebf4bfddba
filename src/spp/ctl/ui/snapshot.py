"""The topology page's data: one JSON snapshot of the whole stack, with rates.

:func:`build_snapshot` turns what spp-ctl read from its processes (the same
status replies its REST routes return) into the page's model::

    {"seq": 7, "time": 1765130000.5, "interval": 1.0, "streams": 2,
     "processes": [{"id": "vf:1", "kind": "vf", "client_id": 1, "up": true,
                    "state": "up", "error": null, "pid": 1234,
                    "components": [{"id": "vf:1/fwd1", "name": "fwd1", "type": "forward",
                                    "core": 2, "rx": ["ring:0"], "tx": ["phy:1"],
                                    "drops": {"no_route": 3}, "drop_rate": 0.0}],
                    "ports": ["ring:0", "phy:1"], "details": {...}}, ...],
     "ports": [{"uid": "ring:0", "type": "ring", "stats": {"rx_packets": ..., "drops": {...}},
                "rates": {"rx_pps", "tx_pps", "rx_bps", "tx_bps", "drop_pps"},
                "ring": {"count": 0, "size": 512}, "iface": null}, ...],
     "port_mirrors": [{..., "stats": {...}, "rates": {"pps": ...}}],
     "pool": {"n_bufs": 8192, "in_use": 0, ...}, "errors": []}

Everything here is pure (no I/O, time passed in), so a generated snapshot of any
size can be built in a test.  A process that did not answer is ``"up": false``
with the reason in ``error``; it keeps its last known components, drawn greyed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

SCHEMA_VERSION: Final = 1

COUNTERS: Final = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "errors")
"""The numeric counters of a port (``drops`` is a dict of reason → count)."""

FIRST_ANSWER_WAIT: Final = 10.0
"""Seconds a process that never answered yet is shown as ``waiting`` rather than ``down``
(a fresh process may be compiling its loops)."""

_PORT_RE: Final = re.compile(r"^([a-z]+):(\d+)")


def process_id(kind: str, client_id: int | None) -> str:
    """``primary`` or ``KIND:ID`` (e.g. ``vf:1``): a process's id on the page."""
    return kind if client_id is None else f"{kind}:{client_id}"


@dataclass
class Reading:
    """What the poller knows of one process: its last status and its state.

    ``status`` is the last good status (for vf/mirror the REST object of
    ``GET /v1/vfs/N``, for other kinds the reply's ``info``); ``error`` the
    reason the last request failed; ``waiting_since`` the (monotonic) time a
    request still in flight was sent; ``gone_since`` when the process left.
    """

    kind: str
    client_id: int | None
    status: dict[str, Any] | None = None
    error: str | None = None
    answered_at: float | None = None
    waiting_since: float | None = None
    gone_since: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RateMemory:
    """Previous counter values, to turn counters into per-second rates.

    A counter that went down (``DELETE /v1/primary/status`` cleared it) starts
    over: its rate is 0 for that interval.  A previous value older than
    ``max_age`` seconds (the page was closed for a while) is not used.
    """

    def __init__(self, max_age: float = 10.0) -> None:
        self.max_age = max_age
        self._last: dict[str, tuple[float, dict[str, float]]] = {}
        self._seen: set[str] = set()

    def rates(self, key: str, values: Mapping[str, float], now: float) -> dict[str, float]:
        """Per-second rate of each of ``values`` since the last call for ``key``."""
        self._seen.add(key)
        previous = self._last.get(key)
        self._last[key] = (now, dict(values))
        result = dict.fromkeys(values, 0.0)
        if previous is None:
            return result
        then, old = previous
        dt = now - then
        if dt <= 0 or dt > self.max_age:
            return result
        for name, value in values.items():
            delta = value - old.get(name, value)
            result[name] = round(delta / dt, 3) if delta > 0 else 0.0
        return result

    def sweep(self) -> None:
        """Forget keys not used since the previous sweep."""
        for key in list(self._last):
            if key not in self._seen:
                del self._last[key]
        self._seen.clear()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def normalize_stats(stats: Any) -> dict[str, Any]:
    """A port's counters with every field present: ints and a ``drops`` dict."""
    stats = stats if isinstance(stats, Mapping) else {}
    drops = stats.get("drops")
    result: dict[str, Any] = {name: _int(stats.get(name)) for name in COUNTERS}
    result["drops"] = {str(k): _int(v) for k, v in drops.items()} if isinstance(drops, Mapping) else {}
    return result


def port_type(uid: str) -> str:
    """``ring`` for ``ring:3``; ``port`` when the uid has no type."""
    match = _PORT_RE.match(uid)
    return match.group(1) if match else "port"


def port_sort_key(uid: str) -> tuple[str, int, str]:
    """``phy:2`` before ``phy:10``."""
    match = _PORT_RE.match(uid)
    return (match.group(1), int(match.group(2)), uid) if match else (uid, 0, uid)


def _port_uid(entry: Any) -> str | None:
    if isinstance(entry, Mapping):
        port = entry.get("port")
        return str(port) if port is not None else None
    if isinstance(entry, str):
        return entry
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def components_of(pid: str, status: Mapping[str, Any], found_ports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's components of one process status (any kind).

    vf/mirror ``components`` (or ``core``) entries give name, type, core, rx/tx
    ports; pcap's ``role`` is its type; spp_nfv's and the primary forwarder's
    ``patches`` become one ``patch`` component each.  Port counters seen in the
    entries are added to ``found_ports`` (the primary's, when it answered, win).
    """
    result: list[dict[str, Any]] = []
    entries = status.get("components", status.get("core"))
    for index, entry in enumerate(_list(entries)):
        if not isinstance(entry, Mapping):
            continue
        ctype = str(entry.get("type") or entry.get("role") or "component")
        if ctype == "unuse":
            continue
        name = str(entry.get("name") or entry.get("role") or f"core{entry.get('core', index)}")
        sides: dict[str, list[str]] = {"rx": [], "tx": []}
        for side in ("rx", "tx"):
            for port in _list(entry.get(f"{side}_port")):
                uid = _port_uid(port)
                if uid is None:
                    continue
                sides[side].append(uid)
                if isinstance(port, Mapping) and "stats" in port:
                    found_ports.setdefault(uid, {"stats": port["stats"]})
        stats = entry.get("stats")
        drops = stats.get("drops") if isinstance(stats, Mapping) else None
        component: dict[str, Any] = {
            "id": f"{pid}/{name}",
            "name": name,
            "type": ctype,
            "core": entry.get("core"),
            "rx": sides["rx"],
            "tx": sides["tx"],
            "drops": {str(k): _int(v) for k, v in drops.items()} if isinstance(drops, Mapping) else {},
        }
        if "filename" in entry:
            component["filename"] = entry["filename"]
        result.append(component)
    patches = status.get("patches")
    if patches is None and isinstance(status.get("forwarder"), Mapping):
        patches = status["forwarder"].get("patches")
    for patch in _list(patches):
        if isinstance(patch, Mapping) and patch.get("src") is not None and patch.get("dst") is not None:
            src, dst = str(patch["src"]), str(patch["dst"])
            result.append({"id": f"{pid}/{src}>{dst}", "name": f"{src} → {dst}", "type": "patch", "core": None,
                           "rx": [src], "tx": [dst], "drops": {}})
    return result


def _process_ports(status: Mapping[str, Any]) -> list[str]:
    ports = [str(p) for p in _list(status.get("ports")) if isinstance(p, str)]
    if not ports:
        for ptype in ("phy", "ring", "vhost", "pcap", "nullpmd", "tap", "memif"):
            for item in _list(status.get(ptype)):
                text = str(item)
                ports.append(text if ":" in text else f"{ptype}:{text}")
    return ports


def _state(reading: Reading, now: float, grace: float) -> tuple[bool, str, str | None]:
    """``(up, state, error)`` of a process."""
    if reading.gone_since is not None:
        return False, "down", "disconnected from spp-ctl"
    if reading.waiting_since is not None and now - reading.waiting_since > grace:
        waited = now - reading.waiting_since
        if reading.status is None and reading.error is None and waited < FIRST_ANSWER_WAIT:
            return False, "waiting", f"waiting for its first answer ({waited:.0f} s)"
        return False, "down", f"no answer for {waited:.0f} s"
    if reading.error is not None:
        return False, "down", reading.error
    if reading.status is None:
        return False, "down", "no status yet"
    return True, "up", None


def build_snapshot(
    readings: Iterable[Reading],
    *,
    primary: Mapping[str, Any] | None,
    port_mirrors: list[Any] | None,
    rates: RateMemory,
    now: float,
    wall: float,
    interval: float = 1.0,
    grace: float = 1.0,
    seq: int = 0,
    streams: int = 0,
    errors: Iterable[str] = (),
) -> dict[str, Any]:
    """The page's snapshot; see the module docstring.

    ``readings`` are the processes (the primary's among them, with its status
    info as ``status``); ``primary`` is that info again when it answered (its
    port counters are the shared, authoritative ones); ``port_mirrors`` the
    ``GET /v1/port_mirrors`` list or None.  ``now`` is monotonic (for rates and
    waits), ``wall`` the epoch time shown on the page.  ``grace`` is how long a
    request may be in flight before its process is shown as down.
    """
    found_ports: dict[str, dict[str, Any]] = {}
    if primary is not None:
        for key in ("phy_ports", "ring_ports", "ports"):
            for entry in _list(primary.get(key)):
                uid = _port_uid(entry)
                if uid is not None and isinstance(entry, Mapping):
                    found_ports[uid] = dict(entry)
    processes: list[dict[str, Any]] = []
    connected: set[tuple[str, int | None]] = set()
    for reading in readings:
        pid = process_id(reading.kind, reading.client_id)
        up, state, error = _state(reading, now, grace)
        if reading.gone_since is None:
            connected.add((reading.kind, reading.client_id))
        status = reading.status or {}
        components = components_of(pid, status, found_ports)
        proc_ports = _process_ports(status) if reading.kind != "primary" else []
        details: dict[str, Any] = {}
        for key in ("master-lcore", "lcores", "classifier_table", "status", "file_prefix"):
            if key in status:
                details[key] = status[key]
        processes.append({
            "id": pid, "kind": reading.kind, "client_id": reading.client_id, "up": up, "state": state,
            "error": error, "pid": reading.extra.get("pid"), "components": components, "ports": proc_ports,
            "details": details,
        })
    # secondaries the primary launched that are not (or no longer) connected
    if primary is not None:
        for entry in _list(primary.get("processes")):
            if not isinstance(entry, Mapping):
                continue
            kind, client_id = str(entry.get("proc_name", "?")), entry.get("client_id")
            cid = client_id if isinstance(client_id, int) else None
            pid_text = process_id(kind, cid)
            match = next((p for p in processes if p["id"] == pid_text), None)
            if match is not None:
                match["pid"] = entry.get("pid")
                continue
            if entry.get("alive"):
                error = "launched, not connected to spp-ctl yet"
            else:
                error = f"exited with status {entry.get('returncode')}"
            processes.append({
                "id": pid_text, "kind": kind, "client_id": cid, "up": False, "state": "down", "error": error,
                "pid": entry.get("pid"), "components": [], "ports": [], "details": {},
            })
    # every port anyone mentions
    uids: set[str] = set(found_ports)
    for proc in processes:
        uids.update(proc["ports"])
        for comp in proc["components"]:
            uids.update(comp["rx"])
            uids.update(comp["tx"])
    mirrors: list[dict[str, Any]] = []
    for entry in port_mirrors or []:
        if not isinstance(entry, Mapping):
            continue
        mirror = dict(entry)
        stats = mirror.get("stats") if isinstance(mirror.get("stats"), Mapping) else {}
        assert isinstance(stats, Mapping)
        mirror["rates"] = {"pps": rates.rates(f"mirror {mirror.get('name')}",
                                              {"pps": float(_int(stats.get("packets")))}, now)["pps"]}
        for end in ("source", "destination"):
            if isinstance(mirror.get(end), str):
                uids.add(mirror[end])
        mirrors.append(mirror)
    ports: list[dict[str, Any]] = []
    for uid in sorted(uids, key=port_sort_key):
        entry = found_ports.get(uid, {})
        stats = normalize_stats(entry.get("stats"))
        drops = sum(stats["drops"].values())
        rate = rates.rates(f"port {uid}", {
            "rx_pps": stats["rx_packets"], "tx_pps": stats["tx_packets"],
            "rx_bps": stats["rx_bytes"] * 8, "tx_bps": stats["tx_bytes"] * 8, "drop_pps": drops,
        }, now)
        port: dict[str, Any] = {"uid": uid, "type": port_type(uid), "stats": stats, "rates": rate,
                                "known": uid in found_ports}
        if "size" in entry:
            port["ring"] = {"count": _int(entry.get("count")), "size": _int(entry.get("size"))}
        if entry.get("iface") is not None:
            port["iface"] = str(entry["iface"])
        ports.append(port)
    for proc in processes:
        for comp in proc["components"]:
            comp["drop_rate"] = rates.rates(f"comp {comp['id']}", {"d": float(sum(comp["drops"].values()))},
                                            now)["d"]
    rates.sweep()
    pool = primary.get("pool") if primary is not None and isinstance(primary.get("pool"), Mapping) else None
    return {
        "version": SCHEMA_VERSION,
        "seq": seq,
        "time": wall,
        "interval": interval,
        "streams": streams,
        "processes": processes,
        "ports": ports,
        "port_mirrors": mirrors,
        "pool": dict(pool) if pool is not None else None,
        "errors": list(errors),
    }
