"""The CLI's command interpreter: one line of SPP syntax in, REST calls and output out.

:class:`Session` is shared by the interactive shell, ``-e`` commands, standard
input and ``playback``.  :meth:`Session.execute` never raises for a bad command:
it prints ``error: <message>`` and returns False.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final, TextIO

from rich.console import Console
from rich.text import Text

from spp.cli import render, topo
from spp.cli.client import CliError, RestClient, normalize_server
from spp.cli.translate import (
    PRIMARY_SUBCOMMANDS,
    SECONDARY_KINDS,
    SECONDARY_SUBCOMMANDS,
    Request,
    split_target,
    translate_primary,
    translate_secondary,
)

TOP_COMMANDS: Final = ("status", "pri;", "vf", "mirror", "server", "record", "playback", "topo", "history",
                       "help", "bye", "exit")
HELP: Final = """\
status                              processes connected to spp-ctl
pri; status | clear | exit          the primary (counters, pool, launched processes)
pri; port {add|del} ring:N          create / drain a ring
pri; launch {vf|mirror} ID [-l CORES] [--copy shallow|deep]
pri; port_mirror list | del NAME
pri; port_mirror add NAME SOURCE {rx|tx|both} DEST [vlan 9,18-27] [src_mac MAC] [dst_mac MAC]
                 [flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep]
vf N; status                        components, ports with counters, classifier table
vf N; component start NAME CORE {forward|merge|classifier} | component stop NAME
vf N; port {add|del} RES_UID [nq Q] {rx|tx} NAME [add_vlantag VID PCP | del_vlantag]
vf N; classifier_table {add|del} mac {MAC|default} RES_UID
vf N; classifier_table {add|del} vlan VID {MAC|default} RES_UID
vf N; exit
mirror N; status | component start NAME CORE mirror | port {add|del} RES_UID {rx|tx} NAME | exit
server [N | HOST:PORT]              list the spp-ctl nodes (-b), or switch to one
record FILE | record stop           record the commands that follow into FILE
playback FILE                       run the commands of FILE (stops at the first failure; a shipped
                                    example may be named alone: taas.txt, classify-icmp.txt, ...)
topo [FILE.svg | FILE.dot]          draw the live topology (text, or a picture file)
history                             commands entered so far
... status --json                   any status command (and 'pri; port_mirror list') as JSON
bye | exit                          leave"""
COMPLETION_TTL: Final = 2.0


def _console(*, stderr: bool) -> Console:
    """A console that does not wrap messages; 160 columns when not a terminal (tables stay readable)."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, soft_wrap=True, width=160)
    return console


def error_message(exc: BaseException) -> str:
    """One line for a failed command: the message of a :class:`CliError`, what a file
    operation could not do, or (for a bug) the exception's type and text."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot access{where}: {exc.strerror or exc}"
    return f"internal error ({type(exc).__name__}): {exc}"


class Session:
    """State of one CLI run: spp-ctl nodes, the current one, recording, history."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        token: str | None = None,
        console: Console | None = None,
        err_console: Console | None = None,
        secondary: str | None = None,
        json_output: bool = False,
    ) -> None:
        if not servers:
            servers = ["127.0.0.1:7777"]
        self.token = token
        self.clients = [RestClient(s, token) for s in servers]
        self.current = 0
        self.console = console or _console(stderr=False)
        self.err = err_console or _console(stderr=True)
        self.secondary = secondary
        #: Status commands print their REST reply as JSON (``spp --json``; ``... status --json`` per command).
        self.json_output = json_output
        self.recording: TextIO | None = None
        self.history: list[str] = []
        self.done = False
        self._completion: tuple[float, dict[str, Any]] | None = None
        #: The interactive prompt (a ``PromptSession``) while the shell runs.
        self.prompt: Any = None

    @property
    def client(self) -> RestClient:
        """The client of the current spp-ctl node."""
        return self.clients[self.current]

    def close(self) -> None:
        """Stop recording and close every connection."""
        if self.recording is not None:
            self.recording.close()
            self.recording = None
        for client in self.clients:
            client.close()

    def secondary_addr(self) -> str:
        """Address secondaries launched through ``pri; launch`` connect to."""
        if self.secondary:
            return self.secondary
        host = self.client.server.rpartition(":")[0]
        return f"{host}:6666"

    # -- execution ------------------------------------------------------------------

    def execute(self, line: str) -> bool:
        """Run one command line; print its output or its error; True on success."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        self.history.append(line)
        try:
            self._run(line)
            if self.recording is not None and line.split()[0] not in ("record", "playback", "history", "bye",
                                                                       "exit"):
                self.recording.write(line + "\n")
                self.recording.flush()
        except Exception as exc:  # a command's failure never ends the session
            self.err.print(Text.assemble(("error: ", "bold red"), error_message(exc)), soft_wrap=True)
            return False
        return True

    def run_lines(self, lines: Sequence[str], *, stop_on_error: bool = False) -> bool:
        """Run several lines; True if all succeeded."""
        ok = True
        for line in lines:
            if self.done:
                break
            if not self.execute(line):
                ok = False
                if stop_on_error:
                    break
        return ok

    def _run(self, line: str) -> None:
        words = line.split()
        as_json = self.json_output
        if len(words) > 1 and words[-1] == "--json":
            as_json, line = True, " ".join(words[:-1])
        if as_json and self._status_json(line):
            return
        target = split_target(line)
        if target is not None:
            if target.kind == "pri":
                self._primary(target.words)
            else:
                assert target.client_id is not None
                self._secondary(target.kind, target.client_id, target.words)
            return
        words = line.split()
        cmd, args = words[0], words[1:]
        if cmd == "status" and not args:
            self.console.print(render.processes(self.client.get("/processes"), self.client.server))
        elif cmd in ("bye", "exit", "quit") and not args:
            self.done = True
        elif cmd == "help":
            self.console.print(Text(HELP))
        elif cmd == "history":
            for i, entry in enumerate(self.history, 1):
                self.console.print(Text(f"{i:4}  {entry}"))
        elif cmd == "server":
            self._server(args)
        elif cmd == "record":
            self._record(args)
        elif cmd == "playback" and len(args) == 1:
            self._playback(Path(args[0]))
        elif cmd == "topo" and len(args) <= 1:
            snap = topo.snapshot(self.client)
            if args:
                self.console.print(Text(topo.write_picture(snap, Path(args[0]))))
            else:
                self.console.print(topo.tree(snap))
        elif cmd in SECONDARY_KINDS or cmd == "pri":
            raise CliError(f"'{cmd}' needs a ';' after the process, e.g. '{cmd} 1; status'" if cmd != "pri"
                           else "'pri' needs a ';', e.g. 'pri; status'")
        else:
            raise CliError(f"unknown command {line!r}; type 'help' for the list")

    def _status_json(self, line: str) -> bool:
        """Print a status command's REST reply as JSON; False if ``line`` is not a status command."""
        target = split_target(line)
        if target is None:
            if line.split() != ["status"]:
                return False
            result = self.client.get("/processes")
        elif target.kind == "pri" and target.words in (["status"], ["port_mirror", "list"]):
            result = self._send(translate_primary(target.words, self.secondary_addr()))
        elif target.kind != "pri" and target.words == ["status"] and target.client_id is not None:
            result = self._send(translate_secondary(target.kind, target.client_id, target.words))
        else:
            return False
        self.console.file.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
        self.console.file.flush()
        return True

    def _send(self, request: Request) -> Any:
        return self.client.request(request.method, request.path, request.body)

    def _primary(self, words: list[str]) -> None:
        request = translate_primary(words, self.secondary_addr())
        result = self._send(request)
        if words == ["status"]:
            self.console.print(render.primary(result))
        elif words == ["port_mirror", "list"]:
            self.console.print(render.port_mirrors(result))

    def _secondary(self, kind: str, client_id: int, words: list[str]) -> None:
        request = translate_secondary(kind, client_id, words)
        result = self._send(request)
        if words == ["status"] and kind in ("nfv", "pcap"):
            self.console.print(render.patch_panel(kind, client_id, result))
        elif words == ["status"]:
            self.console.print(render.secondary(kind, client_id, result))

    def _server(self, args: list[str]) -> None:
        if not args:
            for i, client in enumerate(self.clients, 1):
                mark = "*" if i - 1 == self.current else " "
                self.console.print(Text(f"{mark} {i}  {client.server}"))
            return
        if len(args) != 1:
            raise CliError("usage: server [N | HOST:PORT]")
        arg = args[0]
        if arg.isdigit():
            index = int(arg) - 1
            if not 0 <= index < len(self.clients):
                raise CliError(f"no server {arg}: there are {len(self.clients)} (see 'server')")
        else:
            server = normalize_server(arg)
            known = [c.server for c in self.clients]
            if server in known:
                index = known.index(server)
            else:
                self.clients.append(RestClient(server, self.token))
                index = len(self.clients) - 1
        self.current = index
        self._completion = None
        self.console.print(Text(f"switched to {self.client.server}"))

    def _record(self, args: list[str]) -> None:
        if args in (["stop"], ["off"]):
            if self.recording is None:
                raise CliError("not recording")
            name = self.recording.name
            self.recording.close()
            self.recording = None
            self.console.print(Text(f"recording to {name} stopped"))
            return
        if len(args) != 1:
            raise CliError("usage: record FILE | record stop")
        if self.recording is not None:
            self.recording.close()
        try:
            self.recording = Path(args[0]).open("w")  # noqa: SIM115 - open until "record stop"
        except OSError as exc:
            raise CliError(f"record: cannot write {args[0]}: {exc.strerror}") from None
        self.console.print(Text(f"recording commands to {args[0]} ('record stop' to end)"))

    def _playback(self, path: Path) -> None:
        shipped = resources.files("spp") / "examples" / path.name
        if not path.exists() and path.name == str(path) and shipped.is_file():
            self.console.print(Text(f"using the shipped example {path.name}"))
            path = Path(str(shipped))
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise CliError(f"playback: cannot read {path}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            if self.done:
                return
            if line.strip() and not line.strip().startswith("#"):
                self.console.print(Text(f"> {line.strip()}", style="dim"))
            if not self.execute(line):
                raise CliError(f"playback {path} stopped at line {number}: {line.strip()!r}")

    # -- completion data ------------------------------------------------------------------

    def live_names(self) -> dict[str, Any]:
        """Targets, component names and ports of the live stack (cached a moment).

        ``{"targets": ["pri;", "vf 1;", ...], "components": {"vf 1": [...]},
        "ports": [...]}``; empty lists if spp-ctl cannot be reached.
        """
        now = time.monotonic()
        if self._completion is not None and now - self._completion[0] < COMPLETION_TTL:
            return self._completion[1]
        data: dict[str, Any] = {"targets": [], "components": {}, "ports": set()}
        try:
            snap = topo.snapshot(self.client)
        except CliError:
            snap = None
        if snap is not None:
            for proc in snap.processes:
                if proc.get("type") == "primary":
                    data["targets"].append("pri;")
                elif "client-id" in proc:
                    data["targets"].append(f"{proc['type']} {proc['client-id']};")
            if snap.primary:
                for key in ("phy_ports", "ring_ports"):
                    data["ports"].update(str(p.get("port")) for p in snap.primary.get(key, []) or [])
            for (kind, cid), status in snap.secondaries.items():
                comps = [str(c["name"]) for c in status.get("components", []) or [] if "name" in c]
                data["components"][f"{kind} {cid}"] = comps
                data["ports"].update(str(p) for p in status.get("ports", []) or [])
        data["ports"] = sorted(data["ports"])
        self._completion = (now, data)
        return data


__all__ = ["PRIMARY_SUBCOMMANDS", "SECONDARY_SUBCOMMANDS", "TOP_COMMANDS", "Session"]
