"""Rich tables for status replies: processes, the primary, spp_vf and spp_mirror.

Every renderer takes the JSON spp-ctl returned and tolerates missing keys (an
older or foreign process may omit counters): absent numbers show as ``-``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _num(stats: Mapping[str, Any] | None, key: str) -> str:
    if not isinstance(stats, Mapping) or key not in stats:
        return "-"
    return f"{stats[key]:,}" if isinstance(stats[key], int) else str(stats[key])


def drops_text(stats: Mapping[str, Any] | None) -> str:
    """``ring_full=3 no_route=1`` (or ``0`` / ``-``)."""
    if not isinstance(stats, Mapping) or "drops" not in stats:
        return "-"
    drops = stats["drops"]
    if not isinstance(drops, Mapping):
        return str(drops)
    parts = [f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in drops.items() if v]
    return " ".join(parts) if parts else "0"


def counters_table(title: str, rows: Sequence[tuple[str, str, Mapping[str, Any] | None]]) -> Table:
    """A table of ``(port, where, stats)`` rows with the counter columns."""
    table = Table(title=title, title_justify="left")
    for col in ("port", "where"):
        table.add_column(col)
    for col in ("rx pkts", "rx bytes", "tx pkts", "tx bytes"):
        table.add_column(col, justify="right")
    table.add_column("drops")
    for port, where, stats in rows:
        table.add_row(
            port, where, _num(stats, "rx_packets"), _num(stats, "rx_bytes"),
            _num(stats, "tx_packets"), _num(stats, "tx_bytes"), drops_text(stats),
        )
    return table


def processes(entries: Sequence[Mapping[str, Any]], server: str) -> RenderableType:
    """``status``: the processes connected to spp-ctl at ``server``."""
    table = Table(title=f"spp-ctl {server}", title_justify="left")
    table.add_column("process")
    table.add_column("client id", justify="right")
    table.add_column("state")
    for entry in entries:
        cid = entry.get("client-id")
        state = f"error: {entry['error']}" if entry.get("error") else "connected"
        table.add_row(str(entry.get("type", "?")), "" if cid is None else str(cid), state)
    if not entries:
        return Text(f"spp-ctl {server}: no process connected")
    return table


def primary(info: Mapping[str, Any]) -> RenderableType:
    """``pri; status``: pool, ports with counters, launched processes."""
    parts: list[RenderableType] = []
    pool = info.get("pool")
    if isinstance(pool, Mapping):
        parts.append(Text(
            f"stack {info.get('file_prefix', '?')}: pool {pool.get('in_use', '?')} of "
            f"{pool.get('n_bufs', '?')} buffers in use ({pool.get('free', '?')} free); "
            f"lcores {info.get('lcores', '?')}"
        ))
    rows: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for entry in info.get("phy_ports", []) or []:
        rows.append((str(entry.get("port")), str(entry.get("iface", "")), entry.get("stats")))
    for entry in info.get("ring_ports", []) or []:
        where = f"{entry.get('count', '?')}/{entry.get('size', '?')} queued"
        rows.append((str(entry.get("port")), where, entry.get("stats")))
    for entry in info.get("ports", []) or []:
        if isinstance(entry, Mapping):
            rows.append((str(entry.get("port")), "", entry.get("stats")))
    parts.append(counters_table("ports", rows))
    procs = info.get("processes") or []
    if procs:
        table = Table(title="launched", title_justify="left")
        for col in ("process", "client id", "pid", "state"):
            table.add_column(col)
        for proc in procs:
            state = "running" if proc.get("alive") else proc.get("error") or f"exited ({proc.get('returncode')})"
            table.add_row(str(proc.get("proc_name")), str(proc.get("client_id")), str(proc.get("pid")), state)
        parts.append(table)
    fwd = info.get("forwarder")
    if isinstance(fwd, Mapping) and (fwd.get("patches") or fwd.get("status") == "running"):
        patches = ", ".join(f"{p.get('src')} → {p.get('dst')}" for p in fwd.get("patches", []) or []) or "none"
        parts.append(Text(f"forwarder ({fwd.get('status')}, core {fwd.get('core')}): {patches}"))
    return Group(*parts)


def _port_label(entry: Mapping[str, Any]) -> str:
    port = str(entry.get("port", "?"))
    vlan = entry.get("vlan")
    if isinstance(vlan, Mapping) and vlan.get("operation") == "add":
        return f"{port} (+vlan {vlan.get('id')}/{vlan.get('pcp')})"
    if isinstance(vlan, Mapping) and vlan.get("operation") == "del":
        return f"{port} (-vlan)"
    return port


def secondary(kind: str, client_id: int, status: Mapping[str, Any]) -> RenderableType:
    """``vf N; status`` / ``mirror N; status``: components, port counters, classifier table."""
    parts: list[RenderableType] = [Text(
        f"{kind} {client_id}: master lcore {status.get('master-lcore')}, ports {', '.join(status.get('ports', []))}"
        + (" (compiling the data path: commands take effect when it is ready)"
           if status.get("state") == "compiling" else "")
    )]
    if status.get("error"):
        parts.append(Text(f"error: {status['error']}", style="bold red"))
    comps = Table(title="components", title_justify="left")
    for col in ("core", "name", "type", "rx", "tx", "drops"):
        comps.add_column(col)
    rows: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for comp in status.get("components", []) or []:
        name = str(comp.get("name", ""))
        rx = comp.get("rx_port", []) or []
        tx = comp.get("tx_port", []) or []
        comps.add_row(
            str(comp.get("core")), name, str(comp.get("type", "")),
            "\n".join(_port_label(p) for p in rx), "\n".join(_port_label(p) for p in tx),
            drops_text(comp.get("stats")) if comp.get("type") != "unuse" else "",
        )
        rows += [(str(p.get("port")), f"rx of {name}", p.get("stats")) for p in rx]
        rows += [(str(p.get("port")), f"tx of {name}", p.get("stats")) for p in tx]
    parts.append(comps)
    if rows:
        parts.append(counters_table("port counters", rows))
    if "classifier_table" in status:
        table = Table(title="classifier_table", title_justify="left")
        for col in ("type", "value", "port"):
            table.add_column(col)
        for entry in status.get("classifier_table", []) or []:
            table.add_row(str(entry.get("type")), str(entry.get("value")), str(entry.get("port")))
        parts.append(table)
    return Group(*parts)


def port_mirrors(entries: Sequence[Mapping[str, Any]]) -> RenderableType:
    """``pri; port_mirror list``: each mirror with its statistics."""
    if not entries:
        return Text("no port mirror")
    table = Table(title="port mirrors", title_justify="left")
    for col in ("name", "source", "dir", "destination", "filters"):
        table.add_column(col)
    for col in ("packets", "filtered", "nombuf", "full", "errors"):
        table.add_column(col, justify="right")
    for entry in entries:
        stats = entry.get("stats") if isinstance(entry.get("stats"), Mapping) else {}
        assert isinstance(stats, Mapping)
        known = {"name", "source", "direction", "destination", "stats"}
        filters = " ".join(f"{k}={v}" for k, v in entry.items() if k not in known and v not in (None, "", 0))
        table.add_row(
            str(entry.get("name")), str(entry.get("source")), str(entry.get("direction")),
            str(entry.get("destination")), filters,
            *(_num(stats, k) for k in ("packets", "filtered", "nombuf", "full", "errors")),
        )
    return table


def patch_panel(kind: str, client_id: int, status: Mapping[str, Any]) -> RenderableType:
    """``nfv N; status`` / ``pcap N; status``: running state, ports, patches (or capture cores)."""
    head = Text(f"{kind} {client_id}: {status.get('status', '?')}, ports {', '.join(status.get('ports', []) or [])}")
    table = Table(title="patches" if kind == "nfv" else "cores", title_justify="left")
    if kind == "nfv":
        table.add_column("src")
        table.add_column("dst")
        for patch in status.get("patches", []) or []:
            table.add_row(str(patch.get("src")), str(patch.get("dst")))
    else:
        for col in ("core", "role", "port / file"):
            table.add_column(col)
        for core in status.get("core", []) or []:
            what = core.get("filename") or ", ".join(str(p.get("port")) for p in core.get("rx_port", []) or [])
            table.add_row(str(core.get("core")), str(core.get("role")), str(what))
    return Group(head, table)
