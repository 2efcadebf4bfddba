"""``topo``: the live topology as a text tree, Graphviz DOT, or an SVG picture.

The graph is built from REST status replies: every component of every vf and
mirror is a node (``vf1:cls``), every patch of an spp-nfv or of the primary's
forwarder is one (``nfv3:patch0``), every spp-pcap is one, and every port is a node
(``ring:0``); an rx port points at its component, a component at its tx ports.  Rings shared between
processes therefore chain the picture the way frames flow.

The SVG is drawn here (a left-to-right layered layout), so no Graphviz binary is
needed; with ``.dot``, the DOT text is written and rendered to SVG by ``dot`` if
it is installed.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.tree import Tree

from spp.cli.client import CliError, RestClient

PORT_COLOURS = {
    "phy": "#9ecae1", "ring": "#fdd0a2", "vhost": "#c7e9c0", "tap": "#dadaeb",
    "pcap": "#fcbba1", "nullpmd": "#d9d9d9", "memif": "#c6dbef",
}
COMPONENT_COLOUR = {"vf": "#ffffff", "mirror": "#fff7bc", "nfv": "#e5f5e0", "pri": "#f2f0f7", "pcap": "#fee6ce"}


@dataclass
class Graph:
    """Nodes (id → label, kind) and directed edges of the topology."""

    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    #: Port mirrors: ``(source, destination, label)``, drawn dashed.
    mirrors: list[tuple[str, str, str]] = field(default_factory=list)

    def add_port(self, port: str) -> str:
        """Add port node ``port`` (idempotent); return its id."""
        self.nodes.setdefault(port, (port, port.split(":", maxsplit=1)[0]))
        return port

    def add_component(self, kind: str, client_id: int, comp: Mapping[str, Any]) -> str:
        """Add a component node; return its id."""
        node = f"{kind}{client_id}:{comp.get('name')}"
        label = f"{kind} {client_id}: {comp.get('name')}\\n{comp.get('type')} @ core {comp.get('core')}"
        self.nodes[node] = (label, f"component-{kind}")
        return node

    def add_patches(self, title: str, prefix: str, kind: str, status: Mapping[str, Any]) -> None:
        """One node per patch of an spp-nfv or the primary's forwarder: ``src`` → patch → ``dst``."""
        for i, patch in enumerate(status.get("patches", []) or []):
            if not isinstance(patch, Mapping):
                continue
            node = f"{prefix}:patch{i}"
            self.nodes[node] = (f"{title}: patch\\n{status.get('status', '')}", f"component-{kind}")
            self.edges.append((self.add_port(str(patch.get("src"))), node))
            self.edges.append((node, self.add_port(str(patch.get("dst")))))


@dataclass
class Snapshot:
    """What ``topo`` draws: the processes and their status replies."""

    server: str
    processes: list[dict[str, Any]]
    primary: dict[str, Any] | None
    secondaries: dict[tuple[str, int], dict[str, Any]]
    port_mirrors: list[dict[str, Any]] = field(default_factory=list)

    def graph(self) -> Graph:
        """The frame-flow graph of the snapshot."""
        graph = Graph()
        if self.primary:
            for entry in self.primary.get("phy_ports", []) or []:
                graph.add_port(str(entry.get("port")))
        for (kind, cid), status in sorted(self.secondaries.items()):
            for comp in status.get("components", []) or []:
                if comp.get("type") == "unuse" or "name" not in comp:
                    continue
                node = graph.add_component(kind, cid, comp)
                for port in comp.get("rx_port", []) or []:
                    graph.edges.append((graph.add_port(str(port.get("port"))), node))
                for port in comp.get("tx_port", []) or []:
                    graph.edges.append((node, graph.add_port(str(port.get("port")))))
            if kind == "nfv":
                graph.add_patches(f"nfv {cid}", f"nfv{cid}", "nfv", status)
            if kind == "pcap":
                for core in status.get("core", []) or []:
                    ports = (core.get("rx_port", []) or []) if core.get("role") == "receive" else []
                    for port in ports:
                        node = f"pcap{cid}"
                        graph.nodes[node] = (f"pcap {cid}: capture\\n{status.get('status', '')}", "component-pcap")
                        graph.edges.append((graph.add_port(str(port.get("port"))), node))
        if self.primary and isinstance(self.primary.get("forwarder"), Mapping):
            graph.add_patches("pri", "pri", "pri", self.primary["forwarder"])
        for mirror in self.port_mirrors:
            src = graph.add_port(str(mirror.get("source")))
            dst = graph.add_port(str(mirror.get("destination")))
            graph.mirrors.append((src, dst, f"{mirror.get('name')} ({mirror.get('direction')})"))
        return graph


def snapshot(client: RestClient) -> Snapshot:
    """Read the live topology from spp-ctl."""
    procs = client.get("/processes")
    primary: dict[str, Any] | None = None
    secondaries: dict[tuple[str, int], dict[str, Any]] = {}
    for proc in procs:
        kind = proc.get("type")
        try:
            if proc.get("error"):  # launched, then exited: nothing to ask
                secondaries[(str(kind), int(proc.get("client-id", -1)))] = {"error": str(proc["error"])}
            elif kind == "primary":
                primary = client.get("/primary/status")
            elif kind in ("vf", "mirror", "nfv", "pcap"):
                cid = int(proc["client-id"])
                secondaries[(kind, cid)] = client.get(f"/{kind}s/{cid}")
        except CliError as exc:  # a process that vanished meanwhile is shown as such
            secondaries[(str(kind), int(proc.get("client-id", -1)))] = {"error": str(exc)}
    mirrors: list[dict[str, Any]] = []
    if primary is not None:
        try:
            mirrors = list(client.get("/port_mirrors"))
        except CliError:  # an spp-ctl or primary without port mirrors
            mirrors = []
    return Snapshot(client.server, procs, primary, secondaries, mirrors)


def tree(snap: Snapshot) -> Tree:
    """The topology as a rich tree: processes, components and their ports."""
    root = Tree(f"[bold]spp-ctl {snap.server}[/bold]")
    if snap.primary is not None:
        pri = root.add("[bold]primary[/bold]")
        phys = ", ".join(f"{p.get('port')}={p.get('iface')}" for p in snap.primary.get("phy_ports", []) or [])
        rings = ", ".join(str(r.get("port")) for r in snap.primary.get("ring_ports", []) or [])
        pool = snap.primary.get("pool", {})
        pri.add(f"phy: {phys or 'none'}")
        pri.add(f"rings in use: {rings or 'none'}")
        pri.add(f"pool: {pool.get('in_use', '?')} / {pool.get('n_bufs', '?')} in use")
        for mirror in snap.port_mirrors:
            pri.add(f"port mirror {mirror.get('name')}: {mirror.get('source')} ({mirror.get('direction')}) "
                    f"⇒ {mirror.get('destination')}")
    for (kind, cid), status in sorted(snap.secondaries.items()):
        node = root.add(f"[bold]{kind} {cid}[/bold]")
        if "error" in status:
            node.add(f"[red]{status['error']}[/red]")
            continue
        for comp in status.get("components", []) or []:
            if comp.get("type") == "unuse":
                continue
            rx = ", ".join(str(p.get("port")) for p in comp.get("rx_port", []) or []) or "-"
            tx = ", ".join(str(p.get("port")) for p in comp.get("tx_port", []) or []) or "-"
            node.add(f"{comp.get('name')} ({comp.get('type')}, core {comp.get('core')}): {rx} → {tx}")
        for entry in status.get("classifier_table", []) or []:
            node.add(f"classify {entry.get('type')} {entry.get('value')} → {entry.get('port')}")
        if kind == "nfv":  # SPP's patch panel: its status, then one line per patch
            node.add(f"{status.get('status', '?')}, ports {', '.join(status.get('ports', []) or []) or 'none'}")
            for patch in status.get("patches", []) or []:
                node.add(f"patch {patch.get('src')} → {patch.get('dst')}")
    if snap.primary is not None:
        fwd = snap.primary.get("forwarder") or {}
        for patch in fwd.get("patches", []) or []:
            pri.add(f"forwarder ({fwd.get('status')}): patch {patch.get('src')} → {patch.get('dst')}")
    return root


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text of ``graph`` (left to right)."""
    lines = ["digraph spp {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for node, (label, kind) in graph.nodes.items():
        if kind.startswith("component-"):
            colour = COMPONENT_COLOUR.get(kind.removeprefix("component-"), "#ffffff")
            lines.append(f'  "{node}" [label="{label}", shape=box, style="rounded,filled", fillcolor="{colour}"];')
        else:
            colour = PORT_COLOURS.get(kind, "#eeeeee")
            lines.append(f'  "{node}" [label="{label}", shape=ellipse, style=filled, fillcolor="{colour}"];')
    for src, dst in graph.edges:
        lines.append(f'  "{src}" -> "{dst}";')
    for src, dst, label in graph.mirrors:
        lines.append(f'  "{src}" -> "{dst}" [style=dashed, color="#d62728", label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(graph: Graph) -> dict[str, int]:
    """Column of each node: longest path from a source, cycles cut."""
    layer = dict.fromkeys(graph.nodes, 0)
    for _ in range(len(graph.nodes)):
        changed = False
        for src, dst in graph.edges:
            if layer[dst] < layer[src] + 1 and layer[src] + 1 < len(graph.nodes):
                layer[dst] = layer[src] + 1
                changed = True
        if not changed:
            break
    return layer


def to_svg(graph: Graph, title: str = "spp topology") -> str:
    """A self-made SVG of ``graph``: columns by flow order, arrows between boxes."""
    layer = _layers(graph)
    columns: dict[int, list[str]] = {}
    for node in graph.nodes:
        columns.setdefault(layer[node], []).append(node)
    box_w, box_h, gap_x, gap_y, margin = 150, 40, 60, 20, 30
    pos: dict[str, tuple[int, int]] = {}
    for col, nodes in sorted(columns.items()):
        for row, node in enumerate(nodes):
            pos[node] = (margin + col * (box_w + gap_x), margin + 20 + row * (box_h + gap_y))
    width = margin * 2 + (max(columns, default=0) + 1) * (box_w + gap_x)
    height = margin * 2 + 20 + max((len(v) for v in columns.values()), default=1) * (box_h + gap_y)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
        f'<text x="{margin}" y="{margin}" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for src, dst in graph.edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        out.append(
            f'<line x1="{x1 + box_w}" y1="{y1 + box_h // 2}" x2="{x2}" y2="{y2 + box_h // 2}" '
            'stroke="#444" stroke-width="1.3" marker-end="url(#arrow)"/>'
        )
    for src, dst, label in graph.mirrors:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        out.append(
            f'<path d="M{x1 + box_w // 2},{y1 + box_h} C{x1 + box_w // 2},{y1 + box_h + 40} '
            f'{x2 + box_w // 2},{y2 + box_h + 40} {x2 + box_w // 2},{y2 + box_h}" fill="none" stroke="#d62728" '
            f'stroke-dasharray="5,3" marker-end="url(#arrow)"><title>{html.escape(label)}</title></path>'
        )
    for node, (label, kind) in graph.nodes.items():
        x, y = pos[node]
        if kind.startswith("component-"):
            fill = COMPONENT_COLOUR.get(kind.removeprefix("component-"), "#ffffff")
            out.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="8" fill="{fill}" stroke="#333"/>')
        else:
            fill = PORT_COLOURS.get(kind, "#eeeeee")
            out.append(
                f'<ellipse cx="{x + box_w // 2}" cy="{y + box_h // 2}" rx="{box_w // 2}" ry="{box_h // 2}" '
                f'fill="{fill}" stroke="#333"/>'
            )
        lines = label.split("\\n")
        for i, text in enumerate(lines):
            ty = y + box_h // 2 + 4 + (i - (len(lines) - 1) / 2) * 13
            out.append(f'<text x="{x + box_w // 2}" y="{ty:.0f}" text-anchor="middle">{html.escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_picture(snap: Snapshot, path: Path) -> str:
    """Write ``path`` (``.svg`` or ``.dot``); return a line saying what was written."""
    graph = snap.graph()
    suffix = path.suffix.lower()
    if suffix == ".svg":
        path.write_text(to_svg(graph, f"spp topology ({snap.server})"))
        return f"wrote {path} ({len(graph.nodes)} nodes, {len(graph.edges)} links)"
    if suffix == ".dot":
        path.write_text(to_dot(graph))
        dot = shutil.which("dot")
        if dot is None:
            return f"wrote {path} (Graphviz 'dot' not installed: no picture rendered)"
        svg = path.with_suffix(".svg")
        result = subprocess.run([dot, "-Tsvg", str(path), "-o", str(svg)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CliError(f"dot failed on {path}: {result.stderr.strip()}")
        return f"wrote {path} and {svg}"
    raise CliError(f"topo: cannot write {path.name!r}: use a .svg or .dot file name")
