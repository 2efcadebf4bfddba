"""``spp up`` plans before it acts: diff a topology file against the live stack, apply, roll back.

:func:`make_plan` reads the live state from spp-ctl (processes, their status, the
primary's phy ports, the port mirrors), validates the *whole* file against it and
returns only the steps that are missing (a diff: what already exists is skipped, what
exists with other settings is an error).  Every problem is reported at once, each
naming the file and line.  :func:`apply` runs the steps in order; when one fails it
undoes the steps it ran, newest first (processes it launched are stopped, commands
reversed), and says so.  Nothing that existed before is ever removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spp import lang
from spp.cli.client import CliError, RestClient
from spp.cli.translate import Request, split_target, translate_primary, translate_secondary
from spp.lang import port_mirror, vf


@dataclass(frozen=True)
class Step:
    """One action of a plan: a CLI line, the line that undoes it, and where the file asks for it."""

    line: str
    undo: str | None
    where: str
    #: ``(kind, client_id)`` when the step launches that process.
    launch: tuple[str, int] | None = None
    #: The process the step configures (its undo is moot once that process is stopped).
    owner: tuple[str, int] | None = None


@dataclass
class Live:
    """What the stack has now."""

    processes: list[dict[str, Any]] = field(default_factory=list)
    status: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    phy_ports: int | None = None
    mirrors: dict[str, dict[str, Any]] = field(default_factory=dict)
    primary: bool = False


def read_live(client: RestClient) -> Live:
    """The live state, from spp-ctl."""
    live = Live(processes=[p for p in client.get("/processes") if not p.get("error")])
    for proc in live.processes:
        kind, cid = proc.get("type"), proc.get("client-id")
        if kind == "primary":
            live.primary = True
            info = client.get("/primary/status")
            phys = info.get("phy_ports") if isinstance(info, dict) else None
            live.phy_ports = len(phys) if isinstance(phys, list) else None
            try:
                live.mirrors = {str(m.get("name")): m for m in client.get("/port_mirrors")}
            except CliError:  # a primary without port mirrors (SPP's)
                live.mirrors = {}
        elif kind in ("vf", "mirror", "nfv", "pcap") and isinstance(cid, int):
            live.status[(kind, cid)] = client.get(f"/{kind}s/{cid}")
    return live


def line_map(text: str) -> dict[tuple[int | str, ...], int]:
    """YAML path (``("processes", 0, "components", 1)``) → 1-based line, from the file's text."""
    lines: dict[tuple[int | str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[int | str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


class Where:
    """Names a place of the file: ``FILE:LINE (processes[0].components[1])``."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.lines = line_map(text) if text is not None else {}

    def __call__(self, *path: int | str) -> str:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return f"{self.source}:{line} ({dotted})" if line else f"{self.source} ({dotted})"


def _cores(text: str) -> list[int] | None:
    cores: list[int] = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        if not low.isdigit() or (sep and not high.isdigit()) or (sep and int(high) < int(low)):
            return None
        cores += range(int(low), int(high if sep else low) + 1)
    return cores


def _phy_index(port: str) -> int | None:
    if not port.startswith("phy:"):
        return None
    digits = port[4:].split("nq", maxsplit=1)[0]
    return int(digits) if digits.isdigit() else None


def _live_ports(comp: Mapping[str, Any], key: str) -> set[str]:
    return {str(p.get("port")) for p in comp.get(key, []) or [] if isinstance(p, Mapping)}


def _classifier_live(status: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    entries = set()
    for e in status.get("classifier_table", []) or []:
        if isinstance(e, Mapping):
            entries.add((str(e.get("type")), str(e.get("value")), str(e.get("port"))))
    return entries


def make_plan(topology: Any, live: Live, where: Where, secondary: str) -> list[Step]:
    """The steps that bring ``live`` to ``topology``; :class:`CliError` lists every problem found."""
    problems: list[str] = []
    steps: list[Step] = []
    held = {int(p["client-id"]): str(p["type"]) for p in live.processes if isinstance(p.get("client-id"), int)}

    def check_port(port: str, *path: int | str) -> None:
        index = _phy_index(port)
        if index is not None and live.phy_ports is not None and index >= live.phy_ports:
            problems.append(f"{where(*path)}: {port}: the stack has {live.phy_ports} phy port"
                            f"{'s' if live.phy_ports != 1 else ''} (phy:0..{live.phy_ports - 1})")

    for i, proc in enumerate(topology.processes):
        key = (proc.kind, proc.client_id)
        target = f"{proc.kind} {proc.client_id};"
        holder = held.get(proc.client_id)
        if holder is not None and holder != proc.kind:
            problems.append(f"{where('processes', i, 'client_id')}: client id {proc.client_id} is held by "
                            f"{holder} {proc.client_id} (ids are unique across process types)")
            continue
        running = key in live.status
        cores = _cores(proc.cores) if proc.cores else None
        if proc.cores and cores is None:
            problems.append(f"{where('processes', i, 'cores')}: invalid core list {proc.cores!r}: "
                            "expected e.g. 0,1 or 2-6")
        if not running:
            if not live.primary:
                problems.append(f"{where('processes', i)}: {proc.kind} {proc.client_id} is not running and no "
                                "primary is connected to launch it")
            words = ["launch", proc.kind, str(proc.client_id), "-s", secondary]
            if proc.cores:
                words += ["-l", proc.cores]
            if proc.copy_mode:
                words += ["--copy", proc.copy_mode]
            if proc.capture is not None:
                words += ["--", *proc.capture.options()]
            steps.append(Step("pri; " + " ".join(words), f"{target} exit", where("processes", i), launch=key))
        status = live.status.get(key, {})
        live_comps = {str(c.get("name")): c for c in status.get("components", []) or []
                      if isinstance(c, Mapping) and c.get("name")}
        master = cores[0] if cores else status.get("master-lcore")
        for j, comp in enumerate(proc.components):
            at: tuple[int | str, ...] = ("processes", i, "components", j)
            if cores is not None and comp.core not in cores:
                problems.append(f"{where(*at, 'core')}: core {comp.core} is not in {proc.kind} "
                                f"{proc.client_id}'s cores {proc.cores!r}")
            elif comp.core == master:
                problems.append(f"{where(*at, 'core')}: core {comp.core} is the master lcore of {proc.kind} "
                                f"{proc.client_id}; components run on the other cores")
            current = live_comps.get(comp.name)
            if current is not None and (current.get("type") != comp.type or current.get("core") != comp.core):
                problems.append(f"{where(*at, 'name')}: {target[:-1]} already runs {comp.name!r} as "
                                f"{current.get('type')} on core {current.get('core')}; stop it first or rename it")
                continue
            if current is None:
                start = vf.component_start("vf" if proc.kind == "vf" else "mirror", comp.name, comp.core, comp.type)
                steps.append(Step(f"{target} {vf.render(start)}", f"{target} {vf.render(vf.ComponentStop(comp.name))}",
                                  where(*at), owner=key))
        for j, comp in enumerate(proc.components):
            current = live_comps.get(comp.name) or {}
            for direction, refs in (("rx", comp.rx), ("tx", comp.tx)):
                have = _live_ports(current, f"{direction}_port")
                for k, ref in enumerate(refs):
                    at = ("processes", i, "components", j, direction, k)
                    check_port(ref.port, *at)
                    if ref.port in have:
                        continue
                    process = "vf" if proc.kind == "vf" else "mirror"
                    steps.append(Step(f"{target} {vf.render(ref.add(process, direction, comp.name))}",
                                      f"{target} {vf.render(ref.delete(direction, comp.name))}",
                                      where(*at), owner=key))
        if proc.kind == "nfv":
            steps += _nfv_steps(proc, status, key, target, where, i, check_port)
        if proc.kind == "pcap" and proc.capture is not None:
            check_port(proc.capture.port, "processes", i, "capture", "port")
            if proc.start and status.get("status") != "running":
                steps.append(Step(f"{target} {lang.render(lang.Start())}", f"{target} {lang.render(lang.Stop())}",
                                  where("processes", i, "start"), owner=key))
        table = _classifier_live(status)
        for j, entry in enumerate(proc.classifier):
            at = ("processes", i, "classifier", j)
            check_port(entry.port, *at)
            kind, value = ("mac", entry.mac) if entry.vlan is None else ("vlan", f"{entry.vlan}/{entry.mac}")
            if (kind, value, entry.port) in table:
                continue
            steps.append(Step(f"{target} {vf.render(entry.command('add'))}",
                              f"{target} {vf.render(entry.command('del'))}", where(*at), owner=key))
    for i, mirror in enumerate(topology.port_mirrors):
        at = ("port_mirrors", i)
        check_port(mirror.source, *at, "source")
        check_port(mirror.destination, *at, "destination")
        if not live.primary:
            problems.append(f"{where(*at)}: port mirror {mirror.name!r} needs a primary; none is connected")
            continue
        current = live.mirrors.get(mirror.name)
        if current is not None:
            same = (current.get("source"), current.get("destination"), current.get("direction")) == (
                mirror.source, mirror.destination, mirror.direction)
            if not same:
                problems.append(f"{where(*at, 'name')}: port mirror {mirror.name!r} exists as "
                                f"{current.get('source')} ({current.get('direction')}) => "
                                f"{current.get('destination')}; delete it first or rename it")
            continue
        steps.append(Step(mirror.command(), f"pri; {port_mirror.render(port_mirror.PortMirrorDel(mirror.name))}",
                          where(*at)))
    if problems:
        raise CliError("the file does not fit the live stack; nothing was changed:\n  " + "\n  ".join(problems))
    return steps


def _nfv_steps(proc: Any, status: Mapping[str, Any], key: tuple[str, int], target: str, where: Where, i: int,
               check_port: Callable[..., None]) -> list[Step]:
    """An nfv's ports, patches and forwarding, minus what its live status already has."""
    steps: list[Step] = []
    have_ports = {str(p) for p in status.get("ports", []) or []}
    have_patches = {(str(p.get("src")), str(p.get("dst"))) for p in status.get("patches", []) or []
                    if isinstance(p, Mapping)}
    for k, port in enumerate(proc.ports):
        check_port(port, "processes", i, "ports", k)
        if port not in have_ports and not port.startswith("phy:"):  # phy ports need no add
            pid = lang.port_id(port)
            steps.append(Step(f"{target} {lang.render(lang.AddPort(pid))}",
                              f"{target} {lang.render(lang.DelPort(pid))}", where("processes", i, "ports", k),
                              owner=key))
    for k, patch in enumerate(proc.patches):
        check_port(patch.src, "processes", i, "patches", k)
        check_port(patch.dst, "processes", i, "patches", k)
        if (patch.src, patch.dst) not in have_patches:  # SPP has no single-patch delete: undo resets them all
            patch_cmd = lang.Patch(lang.port_id(patch.src), lang.port_id(patch.dst))
            steps.append(Step(f"{target} {lang.render(patch_cmd)}", f"{target} {lang.render(lang.PatchReset())}",
                              where("processes", i, "patches", k), owner=key))
    if proc.forward and proc.patches and status.get("status") != "running":
        steps.append(Step(f"{target} {lang.render(lang.Forward())}", f"{target} {lang.render(lang.Stop())}",
                          where("processes", i, "forward"), owner=key))
    return steps


def _request(line: str, secondary: str) -> Request:
    target = split_target(line)
    if target is None:
        raise CliError(f"not a command for a process: {line!r}")
    if target.client_id is None:
        return translate_primary(target.words, secondary)
    return translate_secondary(target.kind, target.client_id, target.words)


def _listed(client: RestClient, key: tuple[str, int]) -> bool:
    return {"type": key[0], "client-id": key[1]} in client.get("/processes")


def apply(steps: Sequence[Step], client: RestClient, secondary: str, *, log: Callable[[str], Any] = print,
          launch_timeout: float = 300.0) -> None:
    """Run ``steps`` in order; on a failure undo the ones done (newest first) and raise :class:`CliError`."""
    done: list[Step] = []
    for step in steps:
        try:
            request = _request(step.line, secondary)
            client.request(request.method, request.path, request.body)
            if step.launch is not None:
                log(f"{step.launch[0]} {step.launch[1]}: launched, waiting for it to connect "
                    "(a first run compiles first)")
                deadline = time.monotonic() + launch_timeout
                while not _listed(client, step.launch):
                    if time.monotonic() > deadline:
                        raise CliError(f"did not connect to spp-ctl within {launch_timeout:g} s")
                    time.sleep(0.1)
        except CliError as exc:
            if step.launch is not None:
                done.append(step)  # it may have started: stop it
            message = f"{step.where}: {step.line!r} failed: {exc}"
            log(message)
            rollback(done, client, secondary, log=log)
            raise CliError(f"{message}; rolled back {len(done)} step{'s' if len(done) != 1 else ''}, "
                           "the stack is as it was") from None
        done.append(step)
        log(step.line)


def rollback(done: Sequence[Step], client: RestClient, secondary: str, *, log: Callable[[str], Any] = print) -> None:
    """Undo ``done`` newest first; steps of a process that is stopped anyway are skipped."""
    stopped = {s.launch for s in done if s.launch is not None}
    for step in reversed(done):
        if step.undo is None or (step.owner is not None and step.owner in stopped):
            continue
        try:
            request = _request(step.undo, secondary)
            client.request(request.method, request.path, request.body)
            if step.launch is not None:
                _wait_exited(client, step.launch)
            log(f"undone: {step.undo}")
        except CliError as exc:
            if step.launch is not None and "no such process" in str(exc):
                continue
            log(f"could not undo {step.line!r} ({step.undo!r}: {exc})")


def _wait_exited(client: RestClient, key: tuple[str, int], timeout: float = 30.0) -> None:
    """Wait until the primary reports the process it launched as ``key`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = client.get("/primary/status").get("processes") or []
        if not any(c.get("client_id") == key[1] and c.get("alive") for c in children if isinstance(c, dict)):
            return
        time.sleep(0.1)
    raise CliError(f"{key[0]} {key[1]} did not exit within {timeout:g} s")


def describe(steps: Sequence[Step], source: str) -> str:
    """The plan as text."""
    if not steps:
        return f"{source}: up to date, nothing to do"
    lines = [f"plan for {source}: {len(steps)} step{'s' if len(steps) != 1 else ''}"]
    lines += [f"  + {s.line}    # {s.where}" for s in steps]
    return "\n".join(lines)


def read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read (the loader reports that)."""
    try:
        return path.read_text()
    except OSError:
        return None
