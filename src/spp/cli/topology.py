"""Declarative topologies: ``spp up FILE.yaml`` / ``spp down [FILE.yaml]``.

A topology file names the secondaries, their components (with cores and ports,
VLAN options per port) and the classifier entries::

    secondary: 127.0.0.1:6666        # optional: where launched secondaries connect
    processes:
      - kind: vf                     # vf or mirror
        client_id: 1
        cores: "1,3-6"               # optional: -l of the process
        components:
          - {name: cls, type: classifier, core: 3, rx: [phy:0], tx: [ring:0, ring:1]}
          - name: fwd1
            type: forward
            core: 4
            rx: [ring:0]
            tx: [{port: ring:2, vlan: {operation: add, id: 101, pcp: 3}}]
        classifier:
          - {mac: "52:54:00:12:34:56", port: ring:0}
          - {vlan: 101, mac: default, port: ring:1}
      - kind: mirror
        client_id: 2
        copy: shallow                # shallow (default) or deep
        components:
          - {name: mir, type: mirror, core: 7, rx: [ring:0], tx: [ring:4, ring:5]}
      - kind: nfv                    # SPP's patch panel
        client_id: 3
        cores: "0,2"
        ports: [ring:6]              # added (phy ports need no add)
        patches: [{src: phy:1, dst: ring:6}]
        forward: true                # default: forward once patched

``up`` plans first (:mod:`spp.cli.plan`): it reads the live stack, validates the
whole file against it (cores, phy ports, names, what already exists; every problem
named by file and line, nothing changed), prints the plan (only what is missing:
"up to date" when nothing is) and, unless ``--dry-run``, applies it: it launches
every process not yet connected through the primary (``PUT /v1/primary/launch``),
waits for it, then configures it through REST in file order: components, their rx
ports, their tx ports (for a mirror, the first tx is the original, the second the
copy), classifier entries, port mirrors.  A failing step rolls back the steps done
before it, newest first (launched processes stopped, commands reversed).  ``down`` asks the
processes of the file (without a file: every vf and mirror) to exit.  Validation
errors name the YAML path of the bad field, e.g. ``processes[0].components[1].core``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spp import lang, ops
from spp.cli.client import CliError, RestClient, normalize_server
from spp.cli.plan import Step, Where, apply, describe, line_map, make_plan, read_live, read_text
from spp.lang import port_mirror, vf
from spp.lang.base import CORE_MAX, PCP_MAX, VID_MAX

#: A launched secondary connects within seconds (it compiles its data path in the
#: background, also on a first run); the margin is for a busy machine.
LAUNCH_TIMEOUT = 30.0


def _mac_text(value: object, *, allow_default: bool = False) -> str:
    """A MAC from YAML: YAML 1.1 reads an unquoted 52:54:00:12:34:56 as a base-60 integer, so say so."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"MAC read as the number {value}: quote MACs in the topology file, e.g. "
                         "mac: \"52:54:00:12:34:56\"")
    lang.mac(value, allow_default=allow_default)
    assert isinstance(value, str)
    return value


def _port(value: str) -> str:
    lang.port_id(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vlan(_Model):
    """A VLAN option of a vf port: ``add`` (push/rewrite a tag) or ``del`` (strip)."""

    operation: Literal["add", "del"]
    id: Annotated[int, Field(ge=0, le=VID_MAX)] = 0
    pcp: Annotated[int, Field(ge=0, le=PCP_MAX)] = 0


class PortRef(_Model):
    """A port of a component, optionally with a VLAN option (vf only)."""

    port: str
    vlan: Vlan | None = None

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: str) -> str:
        return _port(value)

    def add(self, process: vf.ProcessType, direction: str, name: str) -> vf.PortAdd:
        """``port add`` of this port to component ``name``."""
        vlan = None if self.vlan is None else vf.vlan_op(self.vlan.operation, self.vlan.id, self.vlan.pcp)
        return vf.port_add(process, self.port, direction, name, vlan)

    def delete(self, direction: str, name: str) -> vf.PortDel:
        """``port del`` of this port from component ``name``."""
        return vf.port_del(self.port, direction, name)


def _port_ref(value: Any) -> Any:
    return {"port": value} if isinstance(value, str) else value


class Component(_Model):
    """A component: name, type, core, rx and tx ports."""

    name: str
    type: str
    core: Annotated[int, Field(ge=0, le=CORE_MAX)]
    rx: list[PortRef] = Field(default_factory=list)
    tx: list[PortRef] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return lang.name(value)

    @field_validator("rx", "tx", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_port_ref(v) for v in value]
        return value


class ClassifierEntry(_Model):
    """A classifier table entry: ``mac`` (or ``default``) → ``port``, in ``vlan`` if given."""

    mac: str
    port: str
    vlan: Annotated[int, Field(ge=0, le=VID_MAX)] | None = None

    @field_validator("mac", mode="before")
    @classmethod
    def _mac(cls, value: object) -> str:
        return _mac_text(value, allow_default=True)

    def command(self, action: str) -> vf.ClassifierTable:
        """``classifier_table add|del`` of this entry."""
        return vf.classifier_table(action, "mac" if self.vlan is None else "vlan", self.mac, self.port, self.vlan)

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: str) -> str:
        return _port(value)


class NfvPatch(_Model):
    """A patch of an nfv: frames received on ``src`` go to ``dst``."""

    src: str
    dst: str

    @field_validator("src", "dst")
    @classmethod
    def _check_port(cls, value: str) -> str:
        return _port(value)


class Capture(_Model):
    """What an spp-pcap captures: ``port`` into ``out_dir`` (rotating at ``fsize``, keeping ``count`` files)."""

    port: str
    out_dir: str
    fsize: Annotated[int, Field(ge=1)] | None = None
    snaplen: Annotated[int, Field(ge=0)] | None = None
    count: Annotated[int, Field(ge=0)] | None = None

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: str) -> str:
        return _port(value)

    def options(self) -> list[str]:
        """spp-pcap's options (``-c PORT --out-dir DIR ...``) as ``pri; launch pcap`` takes them."""
        words = ["-c", self.port, "--out-dir", self.out_dir]
        for name, value in (("--fsize", self.fsize), ("--snaplen", self.snaplen), ("--count", self.count)):
            if value is not None:
                words += [name, str(value)]
        return words


class Process(_Model):
    """A secondary: kind, client id, cores, copy mode (mirror), components, classifier; an nfv's ports and patches;
    a pcap's capture (started unless ``start: false``)."""

    kind: Literal["vf", "mirror", "nfv", "pcap"]
    client_id: Annotated[int, Field(ge=0)]
    cores: str | None = None
    copy_mode: Literal["shallow", "deep"] | None = Field(default=None, alias="copy")
    components: list[Component] = Field(default_factory=list)
    classifier: list[ClassifierEntry] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    patches: list[NfvPatch] = Field(default_factory=list)
    forward: bool = True
    capture: Capture | None = None
    start: bool = True

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, value: list[str]) -> list[str]:
        return [_port(v) for v in value]

    def commands(self) -> list[str]:
        """This process's commands as :mod:`spp.lang` renders them (without the ``vf N;`` target)."""
        if self.kind == "pcap":
            return [lang.render(lang.Start())] if self.start else []
        if self.kind == "nfv":
            cmds: list[lang.Command] = [lang.AddPort(lang.port_id(p)) for p in self.ports if not p.startswith("phy:")]
            cmds += [lang.Patch(lang.port_id(p.src), lang.port_id(p.dst)) for p in self.patches]
            if self.forward and self.patches:
                cmds.append(lang.Forward())
            return [lang.render(c) for c in cmds]
        process: vf.ProcessType = "vf" if self.kind == "vf" else "mirror"
        steps: list[vf.Command] = [vf.component_start(process, c.name, c.core, c.type) for c in self.components]
        for comp in self.components:
            for direction, refs in (("rx", comp.rx), ("tx", comp.tx)):
                steps += [ref.add(process, direction, comp.name) for ref in refs]
        steps += [e.command("add") for e in self.classifier]
        return [vf.render(c) for c in steps]

    @model_validator(mode="after")
    def _consistent(self) -> Process:
        if self.kind == "pcap":
            if self.capture is None:
                raise ValueError("capture: a pcap needs one, e.g. capture: {port: phy:0, out_dir: /tmp/cap}")
            if self.components or self.classifier or self.ports or self.patches or self.copy_mode is not None:
                raise ValueError("a pcap has a capture, not components, classifier, ports, patches or copy")
            return self
        if self.capture is not None:
            raise ValueError(f"capture: only a pcap has one (a {self.kind} has "
                             f"{'ports and patches' if self.kind == 'nfv' else 'components'})")
        if self.kind == "nfv":
            if self.components or self.classifier or self.copy_mode is not None:
                raise ValueError("an nfv has ports and patches, not components, classifier or copy")
            return self
        if self.ports or self.patches:
            raise ValueError(f"ports/patches: only an nfv has them (a {self.kind} has components)")
        allowed = lang.COMPONENT_TYPES[self.kind]
        names: set[str] = set()
        for i, comp in enumerate(self.components):
            if comp.type not in allowed:
                raise ValueError(f"components[{i}].type: a {self.kind} runs {', '.join(allowed)}, not {comp.type!r}")
            if comp.name in names:
                raise ValueError(f"components[{i}].name: {comp.name!r} is used twice")
            names.add(comp.name)
            if self.kind == "mirror" and any(p.vlan for p in (*comp.rx, *comp.tx)):
                raise ValueError(f"components[{i}]: mirror ports take no vlan option")
        if self.kind == "mirror" and self.classifier:
            raise ValueError("classifier: only a vf has a classifier table")
        if self.kind == "vf" and self.copy_mode is not None:
            raise ValueError("copy: only a mirror has a copy mode")
        return self


class Flow(_Model):
    """An IPv4 5-tuple filter of a port mirror; a missing field matches anything."""

    proto: str | int | None = None
    src: str | None = None
    sport: Annotated[int, Field(ge=0, le=65535)] | None = None
    dst: str | None = None
    dport: Annotated[int, Field(ge=0, le=65535)] | None = None

    def words(self) -> str:
        return " ".join("*" if v is None else str(v) for v in (self.proto, self.src, self.sport, self.dst, self.dport))


class PortMirror(_Model):
    """A port mirror (docs/mirroring.md): copy ``source``'s traffic in ``direction`` to ``destination``."""

    name: str
    source: str
    destination: str
    direction: Literal["rx", "tx", "both"] = "both"
    vlan_filter: str | None = None
    src_mac: str | None = None
    dst_mac: str | None = None
    flow: Flow | None = None
    snaplen: Annotated[int, Field(ge=0)] = 0
    copy_mode: Literal["shallow", "deep"] = Field(default="shallow", alias="copy")

    @field_validator("source", "destination")
    @classmethod
    def _check_port(cls, value: str) -> str:
        return _port(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return port_mirror.mirror_name(value)

    @field_validator("vlan_filter")
    @classmethod
    def _check_vlan(cls, value: str | None) -> str | None:
        return None if value is None else port_mirror.vlan_ranges(value)

    @field_validator("src_mac", "dst_mac", mode="before")
    @classmethod
    def _mac(cls, value: object) -> str | None:
        return None if value is None else _mac_text(value)

    @model_validator(mode="after")
    def _not_itself(self) -> PortMirror:
        if self.source == self.destination:
            raise ValueError("destination: a port cannot be mirrored to itself (packet storm)")
        return self

    def command(self) -> str:
        """The ``pri; port_mirror add ...`` line (:mod:`spp.lang.port_mirror` renders it)."""
        flow = None if self.flow is None else self.flow.words().split()
        return "pri; " + port_mirror.render(port_mirror.port_mirror_add(
            self.name, self.source, self.direction, self.destination, vlan=self.vlan_filter, src_mac=self.src_mac,
            dst_mac=self.dst_mac, snaplen=self.snaplen, copy=self.copy_mode,
            flow=None if flow is None else (flow[0], flow[1], flow[2], flow[3], flow[4])))


class Topology(_Model):
    """A whole topology file."""

    secondary: str | None = None
    processes: list[Process] = Field(default_factory=list)
    port_mirrors: list[PortMirror] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Topology:
        seen: set[tuple[str, int]] = set()
        for i, proc in enumerate(self.processes):
            key = (proc.kind, proc.client_id)
            if key in seen:
                raise ValueError(f"processes[{i}]: {proc.kind} {proc.client_id} is listed twice")
            seen.add(key)
        names: set[str] = set()
        for i, mirror in enumerate(self.port_mirrors):
            if mirror.name in names:
                raise ValueError(f"port_mirrors[{i}].name: {mirror.name!r} is used twice")
            names.add(mirror.name)
        if not self.processes and not self.port_mirrors:
            raise ValueError("processes: nothing to do (no processes and no port_mirrors)")
        return self

    def commands(self) -> list[str]:
        """The topology as CLI command lines (what a ``playback`` recipe holds), launches excluded."""
        lines: list[str] = []
        for proc in self.processes:
            lines += [f"{proc.kind} {proc.client_id}; {text}" for text in proc.commands()]
        lines += [mirror.command() for mirror in self.port_mirrors]
        return lines


class TopologyError(CliError):
    """A topology file is unreadable or invalid; the message names the place."""


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def load(path: Path) -> Topology:
    """Read and validate a topology file; :class:`TopologyError` says what and where."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, str(path), text=path.read_text())


_PATTERN_WORDS = {
    "name": "must be 1 to 32 letters, digits, '_', '.' or '-'",
    "vlan_filter": "must be VLAN ids and ranges, e.g. 9,18-27",
}


def parse(data: Any, source: str = "topology", *, text: str | None = None) -> Topology:
    """Validate already-loaded YAML data; with the file's ``text``, problems name their line."""
    if not isinstance(data, dict):
        raise TopologyError(f"{source}: expected a mapping with a 'processes' list at the top")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        lines = line_map(text) if text is not None else {}
        problems = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field (check the spelling)"
            elif err["type"] == "string_pattern_mismatch":
                message = _PATTERN_WORDS.get(str(loc[-1]) if loc else "", "is not in an accepted form")
            line = lines.get(tuple(loc)) or lines.get(tuple(loc[:-1])) if lines else None
            problems.append((f"line {line}: " if line else "") + f"{_path(loc)}: {message}")
        raise TopologyError(f"{source}: " + "; ".join(problems)) from None


# -- applying -------------------------------------------------------------------------


def up(topology: Topology, client: RestClient, *, secondary: str | None = None,
       log: Any = print, launch_timeout: float = LAUNCH_TIMEOUT, where: Where | None = None,
       dry_run: bool = False) -> list[Step]:
    """Plan against the live stack, print the plan, then apply it (:mod:`spp.cli.plan`).

    Returns the plan.  :class:`CliError` if the file does not fit the live stack (nothing
    changed) or a step fails (what was done is rolled back).
    """
    host = client.server.rpartition(":")[0]
    sec = secondary or topology.secondary or f"{host}:6666"
    where = where or Where("topology", None)
    steps = make_plan(topology, read_live(client), where, sec)
    log(describe(steps, where.source))
    if not dry_run and steps:
        apply(steps, client, sec, log=log, launch_timeout=launch_timeout)
    return steps


def down(client: RestClient, topology: Topology | None = None, *, log: Any = print) -> None:
    """Remove the topology's port mirrors and ask its processes to exit.

    Without a topology: every port mirror, every vf and every mirror process.
    A port mirror that cannot be removed is reported and skipped.
    """
    if topology is not None:
        mirrors = [m.name for m in topology.port_mirrors]
    else:
        mirrors = [str(m.get("name")) for m in client.get("/port_mirrors")] if _has_primary(client) else []
    for name in mirrors:
        try:
            client.delete(f"/port_mirrors/{name}")
            log(f"port mirror {name}: removed")
        except CliError as exc:
            log(f"port mirror {name}: not removed: {exc}")
    keys: list[tuple[str, int]]
    if topology is not None:
        keys = [(p.kind, p.client_id) for p in topology.processes]
    else:
        keys = [(str(p["type"]), int(p["client-id"])) for p in client.get("/processes")
                if p.get("type") in ("vf", "mirror", "nfv", "pcap") and not p.get("error")]
    for kind, cid in keys:
        try:
            client.delete(f"/{kind}s/{cid}")
        except CliError as exc:
            if "no such process" in str(exc):
                log(f"{kind} {cid}: not running")
                continue
            raise
        log(f"{kind} {cid}: stopped")


def _has_primary(client: RestClient) -> bool:
    return {"type": "primary"} in client.get("/processes")


def main(argv: Sequence[str]) -> int:
    """``spp up FILE [-b HOST:PORT] [-s HOST:PORT]`` / ``spp down [FILE] [-b HOST:PORT]``."""
    # $SPP_CTL / $SPP_TOKEN come first, so -b / --token on the command line win (the last one counts)
    env_args = [*(["-b", ctl] if (ctl := ops.env(ops.ENV_CTL)) else []),
                *(["--token", token] if (token := ops.env(ops.ENV_TOKEN)) else [])]
    argv = [argv[0], *env_args, *argv[1:]]
    parser = argparse.ArgumentParser(prog=f"spp {argv[0]}", epilog="$SPP_CTL and $SPP_TOKEN stand in for -b and "
                                     "--token.")
    ops.add_version(parser)
    parser.add_argument("file", type=Path, nargs="?" if argv[0] == "down" else None,
                        help="topology YAML; a shipped example may be named alone (classify-icmp.yaml, taas.yaml, "
                        "port-mirror.yaml)")
    parser.add_argument("-b", "--bind-addr", default="127.0.0.1:7777", help="spp-ctl REST address")
    parser.add_argument("-s", "--secondary", default=None, help="spp-ctl address for launched secondaries")
    parser.add_argument("--token", default=None)
    if argv[0] == "up":
        parser.add_argument("--dry-run", action="store_true", help="print the plan against the live stack, change "
                            "nothing")
    args = parser.parse_args(argv[1:])
    if args.file is not None and not args.file.exists():
        shipped = resources.files("spp") / "examples" / args.file.name
        if shipped.is_file():
            print(f"using the shipped example {args.file.name}")
            args.file = Path(str(shipped))
    try:
        topology = load(args.file) if args.file is not None else None
        client = RestClient(normalize_server(args.bind_addr), args.token)
    except CliError as exc:
        print(f"spp {argv[0]}: {exc}", file=sys.stderr)
        return 2
    try:
        if argv[0] == "up":
            assert topology is not None and args.file is not None
            up(topology, client, secondary=args.secondary, dry_run=args.dry_run,
               where=Where(str(args.file), read_text(args.file)))
        else:
            down(client, topology)
    except CliError as exc:
        print(f"spp {argv[0]}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0
