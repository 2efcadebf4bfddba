"""The interactive shell: prompt_toolkit with completion from the live stack and a persistent history.

Completion knows the commands, the processes connected to spp-ctl (``vf 1;``), their
component names, the ports in use and file names for ``record``/``playback``/``topo``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from spp import lang
from spp.cli.session import TOP_COMMANDS, Session
from spp.cli.translate import PRIMARY_SUBCOMMANDS
from spp.lang import vf
from spp.runtime.dataplane import PORT_TYPES

DEFAULT_HISTORY = Path.home() / ".spp_history"
FILE_COMMANDS = ("record", "playback", "topo")


def candidates(session: Session, text: str) -> list[str]:
    """Words that may complete the last (partial) word of ``text``.

    The caller filters by the partial word; this returns every word that fits
    the position, from the live stack where that applies.
    """
    live = session.live_names()
    head, sep, tail = text.partition(";")
    if not sep:
        words = text.split()
        partial = not text.endswith(" ") and bool(words)
        done = words[:-1] if partial else words
        if not done:
            return [*TOP_COMMANDS, *live["targets"]]
        if len(done) == 1 and done[0] in ("vf", "mirror", "nfv", "pcap"):
            return [t.split()[1] for t in live["targets"] if t.startswith(done[0] + " ")]
        if done[0] == "server":
            return [str(i) for i in range(1, len(session.clients) + 1)]
        return []
    target = head.split()
    words = tail.split()
    partial = not tail.endswith(" ") and bool(words)
    done = words[:-1] if partial else words
    if target == ["pri"]:
        return _primary(done, live)
    if len(target) == 2 and target[0] in ("vf", "mirror"):
        comps: list[str] = live["components"].get(" ".join(target), [])
        return _secondary(target[0], done, comps, live["ports"])
    if len(target) == 2 and target[0] in ("nfv", "pcap"):
        return _patch_panel(target[0], done, live["ports"])
    return []


def _patch_panel(kind: str, done: list[str], ports: list[str]) -> list[str]:
    """``nfv N;`` / ``pcap N;`` / the primary's forwarder words (the grammar of :mod:`spp.lang`)."""
    if not done:
        return list(lang.COMMANDS["nfv" if kind == "nfv" else "pcap" if kind == "pcap" else "primary"])
    if kind == "pcap":
        return []
    cmd, n = done[0], len(done)
    if cmd == "add" and n == 1:
        return [f"{t}:0" for t in PORT_TYPES if t != "phy"]
    if cmd == "del" and n == 1:
        return [p for p in ports if not p.startswith("phy:")] or ["ring:0"]
    if cmd == "patch" and n == 1:
        return ["reset", *(ports or ["phy:0", "ring:0"])]
    if cmd == "patch" and n == 2 and done[1] != "reset":
        return ports or ["phy:1", "ring:0"]
    return []


def _primary(done: list[str], live: dict[str, Any]) -> list[str]:
    if not done:
        return list(PRIMARY_SUBCOMMANDS)
    if done[0] == "port":
        if len(done) == 1:
            return ["add", "del"]
        if len(done) == 2:
            return [p for p in live["ports"] if p.startswith("ring:")] or ["ring:0"]
    if done[0] == "launch" and len(done) == 1:
        return ["nfv", "vf", "mirror", "pcap"]
    if done[0] in ("add", "del", "patch"):
        return _patch_panel("primary", done, live["ports"])
    return []


def _secondary(kind: str, done: list[str], comps: list[str], ports: list[str]) -> list[str]:
    if not done:
        return list(vf.COMMANDS[kind])
    cmd, n = done[0], len(done)
    types = lang.COMPONENT_TYPES[kind]
    if cmd == "component":
        if n == 1:
            return ["start", "stop"]
        if done[1] == "stop" and n == 2:
            return comps
        if done[1] == "start" and n == 4:
            return list(types)
        return []
    if cmd == "port":
        if n == 1:
            return ["add", "del"]
        if n == 2:
            return ports or ["ring:0", "phy:0"]
        if n == 3:
            return ["rx", "tx", "nq"]
        if n == 4 and done[3] != "nq":
            return comps
        if kind == "vf" and n == 5 and done[1] == "add":
            return list(vf.VLAN_OPTIONS)
        return []
    if cmd == "classifier_table":
        if n == 1:
            return ["add", "del"]
        if n == 2:
            return ["mac", "vlan"]
        if (done[2] == "mac" and n == 3) or (done[2] == "vlan" and n == 4):
            return ["default"]
        if (done[2] == "mac" and n == 4) or (done[2] == "vlan" and n == 5):
            return ports
    return []


class SppCompleter(Completer):
    """prompt_toolkit completer over :func:`candidates` (file names for file commands)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        if words and words[0] in FILE_COMMANDS and (len(words) > 1 or text.endswith(" ")):
            partial = "" if text.endswith(" ") else words[-1]
            yield from self.paths.get_completions(Document(partial, len(partial)), complete_event)
            return
        partial = "" if not words or text.endswith(" ") else words[-1]
        if ";" in partial:
            partial = partial.rsplit(";", 1)[1]
        if not words or (len(words) == 1 and not text.endswith(" ")):
            # the first word may be "vf 1;" (two words): complete against whole targets
            for word in candidates(self.session, text):
                if word.startswith(partial):
                    yield Completion(word, start_position=-len(partial))
            return
        if ";" not in text and words[0] in ("vf", "mirror", "nfv", "pcap") and len(words) <= 2:
            for word in candidates(self.session, text):
                if word.startswith(partial):
                    yield Completion(word, start_position=-len(partial))
            return
        for word in candidates(self.session, text):
            if word.startswith(partial):
                yield Completion(word, start_position=-len(partial))


def run_shell(
    session: Session,
    *,
    history_file: Path | None = DEFAULT_HISTORY,
    input: Input | None = None,
    output: Output | None = None,
) -> bool:
    """Read and run commands until ``bye``/``exit`` or end of input; True if all succeeded.

    Ctrl-C abandons the current line; Ctrl-D leaves.  Lines go to
    ``history_file`` (shared across runs, shown by ``history``).
    """
    history = FileHistory(str(history_file)) if history_file is not None else None
    if history is not None:
        session.history = list(reversed(list(history.load_history_strings())))
    prompt: PromptSession[str] = PromptSession(
        history=history, completer=SppCompleter(session), complete_while_typing=False, complete_in_thread=True,
        input=input, output=output,
    )
    session.prompt = prompt
    ok = True
    session.console.print(f"spp CLI, spp-ctl {session.client.server}; 'help' lists the commands")
    while not session.done:
        try:
            line = prompt.prompt("spp > ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        try:
            ok = session.execute(line) and ok
        except KeyboardInterrupt:  # Ctrl-C during a command abandons it, not the shell
            session.err.print("interrupted")
            ok = False
    return ok
