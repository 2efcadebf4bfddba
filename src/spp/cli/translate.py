"""SPP's CLI syntax → REST requests of SPEC section 5 (pure functions, no I/O).

``vf 1; port add ring:0 rx fwd1`` becomes
``PUT /v1/vfs/1/components/fwd1/ports {"action":"attach","port":"ring:0","dir":"rx","vlan":{}}``
exactly as SPP's own CLI sends it (``"vlan":{}`` on every vf port body without a
VLAN option, the VLAN of ``classifier_table`` as a string).  Bad input raises
:class:`~spp.cli.client.CliError` with the usage of the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from spp import lang
from spp.cli.client import CliError

SECONDARY_KINDS: Final = {"vf": "vfs", "mirror": "mirrors", "nfv": "nfvs", "pcap": "pcaps"}
VF_COMPONENT_TYPES: Final = ("forward", "merge", "classifier")
MIRROR_COMPONENT_TYPES: Final = ("mirror",)

USAGE: Final[dict[str, str]] = {
    "component": "component start NAME CORE_ID TYPE | component stop NAME",
    "port": "port add RES_UID [nq Q] {rx|tx} NAME [add_vlantag VID PCP | del_vlantag] | "
    "port del RES_UID [nq Q] {rx|tx} NAME",
    "mirror_port": "port {add|del} RES_UID {rx|tx} NAME",
    "classifier_table": "classifier_table {add|del} mac {MAC|default} RES_UID | "
    "classifier_table {add|del} vlan VID {MAC|default} RES_UID",
    "pri": "pri; status | pri; clear | pri; [port] {add|del} PORT | pri; patch SRC DST | pri; patch reset | "
    "pri; forward | pri; stop | "
    "pri; launch {nfv|vf|mirror|pcap} CLIENT_ID [-l CORES] [-s HOST:PORT] [--copy shallow|deep] "
    "[-c PORT --out-dir DIR --fsize BYTES] | pri; exit | "
    "pri; port_mirror {list | add ... | del NAME}",
    "port_mirror": "port_mirror list | port_mirror del NAME | port_mirror add NAME SOURCE {rx|tx|both} DESTINATION "
    "[vlan 9,18-27] [src_mac MAC] [dst_mac MAC] [flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep]",
}
SECONDARY_SUBCOMMANDS: Final = ("status", "component", "port", "classifier_table", "exit")
PRIMARY_SUBCOMMANDS: Final = ("status", "clear", "port", "add", "del", "patch", "forward", "stop", "launch",
                              "port_mirror", "exit")

_RES_RE: Final = re.compile(r"^[a-z]+:\d+(nq\d+)?$")


@dataclass(frozen=True)
class Request:
    """One REST request: ``method``, path below ``/v1``, optional JSON body."""

    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    """The process a command line addresses: ``pri``, ``vf N`` or ``mirror N``."""

    kind: str
    client_id: int | None
    words: list[str]


def split_target(line: str) -> Target | None:
    """Split ``vf 1; port add ...`` into its target and words; None if there is no ``;``."""
    head, sep, rest = line.partition(";")
    if not sep:
        return None
    words = head.split()
    if words == ["pri"]:
        return Target("pri", None, rest.split())
    if len(words) == 2 and words[0] in SECONDARY_KINDS:
        if not words[1].isdigit():
            raise CliError(f"invalid client id {words[1]!r} in {head.strip()!r}: expected e.g. 'vf 1;'")
        return Target(words[0], int(words[1]), rest.split())
    if len(words) == 1 and words[0] in SECONDARY_KINDS:
        raise CliError(f"{words[0]}: a client id is required, e.g. '{words[0]} 1; status'")
    raise CliError(f"unknown process {head.strip()!r}: expected 'pri;', 'nfv N;', 'vf N;', 'mirror N;' or 'pcap N;'")


def _resource(words: list[str], i: int, usage: str) -> tuple[str, int]:
    """Read ``RES_UID [nq Q]`` at ``words[i]``; return ``(wire id, next index)``."""
    if i >= len(words):
        raise CliError(f"missing port; usage: {usage}")
    res = words[i]
    if not _RES_RE.fullmatch(res):
        raise CliError(f"invalid port {res!r}: expected TYPE:N such as ring:0 or phy:0; usage: {usage}")
    if i + 1 < len(words) and words[i + 1] == "nq":
        if i + 2 >= len(words) or not words[i + 2].isdigit():
            raise CliError(f"'nq' needs a queue number, e.g. {res} nq 1")
        return f"{res}nq{words[i + 2]}", i + 3
    return res, i + 1


def translate_secondary(kind: str, client_id: int, words: list[str]) -> Request:
    """A ``vf N;`` / ``mirror N;`` / ``nfv N;`` / ``pcap N;`` subcommand as a REST request."""
    base = f"/{SECONDARY_KINDS[kind]}/{client_id}"
    if kind in ("nfv", "pcap"):
        try:
            parsed = lang.parse_words(words, "nfv" if kind == "nfv" else "pcap")
        except lang.CommandError as e:
            raise CliError(str(e)) from None
        return lang_request(parsed, base, kind)
    if not words:
        raise CliError(f"empty command for {kind} {client_id}; subcommands: {', '.join(SECONDARY_SUBCOMMANDS)}")
    cmd = words[0]
    if cmd == "status" and len(words) == 1:
        return Request("GET", base)
    if cmd == "exit" and len(words) == 1:
        return Request("DELETE", base)
    if cmd == "component":
        return _component(kind, base, words)
    if cmd == "port":
        return _port(kind, base, words)
    if cmd == "classifier_table":
        if kind != "vf":
            raise CliError("classifier_table is a spp_vf command; spp_mirror has no classifier")
        return _classifier(base, words)
    raise CliError(f"unknown {kind} command {' '.join(words)!r}; subcommands: {', '.join(SECONDARY_SUBCOMMANDS)}")


def _component(kind: str, base: str, words: list[str]) -> Request:
    usage = USAGE["component"]
    types = VF_COMPONENT_TYPES if kind == "vf" else MIRROR_COMPONENT_TYPES
    if len(words) == 5 and words[1] == "start":
        _, _, name, core, ctype = words
        if not core.isdigit():
            raise CliError(f"invalid core {core!r}: expected a core id such as 2; usage: {usage}")
        if ctype not in types:
            raise CliError(f"invalid component type {ctype!r}: {kind} runs {', '.join(types)}")
        return Request("POST", f"{base}/components", {"name": name, "core": int(core), "type": ctype})
    if len(words) == 3 and words[1] == "stop":
        return Request("DELETE", f"{base}/components/{words[2]}")
    raise CliError(f"usage: {usage}")


def _port(kind: str, base: str, words: list[str]) -> Request:
    usage = USAGE["port"] if kind == "vf" else USAGE["mirror_port"]
    if len(words) < 2 or words[1] not in ("add", "del"):
        raise CliError(f"usage: {usage}")
    action = "attach" if words[1] == "add" else "detach"
    port, i = _resource(words, 2, usage)
    if i + 1 >= len(words):
        raise CliError(f"missing direction or component name; usage: {usage}")
    direction, name = words[i], words[i + 1]
    if direction not in ("rx", "tx"):
        raise CliError(f"invalid direction {direction!r}: expected rx or tx; usage: {usage}")
    rest = words[i + 2 :]
    body: dict[str, Any] = {"action": action, "port": port, "dir": direction}
    if action == "detach":
        if rest:
            raise CliError(f"unexpected {' '.join(rest)!r}; usage: {usage}")
        return Request("PUT", f"{base}/components/{name}/ports", body)
    if kind == "vf":
        body["vlan"] = _vlan_option(rest, usage)
    elif rest:
        raise CliError(f"spp_mirror ports take no VLAN option; usage: {usage}")
    return Request("PUT", f"{base}/components/{name}/ports", body)


def _vlan_option(rest: list[str], usage: str) -> dict[str, Any]:
    if not rest:
        return {}
    if rest[0] == "add_vlantag" and len(rest) == 3:
        vid, pcp = rest[1], rest[2]
        if not vid.isdigit() or not 0 <= int(vid) <= 4095:
            raise CliError(f"invalid VLAN id {vid!r}: expected 0-4095")
        if not pcp.isdigit() or not 0 <= int(pcp) <= 7:
            raise CliError(f"invalid PCP {pcp!r}: expected 0-7")
        return {"operation": "add", "id": int(vid), "pcp": int(pcp)}
    if rest == ["del_vlantag"]:
        return {"operation": "del", "id": 0, "pcp": 0}
    raise CliError(f"invalid VLAN option {' '.join(rest)!r}; usage: {usage}")


def _classifier(base: str, words: list[str]) -> Request:
    usage = USAGE["classifier_table"]
    if len(words) < 2 or words[1] not in ("add", "del"):
        raise CliError(f"usage: {usage}")
    action = words[1]
    if len(words) == 5 and words[2] == "mac":
        mac, port = words[3], words[4]
        body: dict[str, Any] = {"action": action, "type": "mac", "mac_address": _mac(mac, usage), "port": port}
    elif len(words) == 6 and words[2] == "vlan":
        vid, mac, port = words[3], words[4], words[5]
        if not vid.isdigit() or not 0 <= int(vid) <= 4095:
            raise CliError(f"invalid VLAN id {vid!r}: expected 0-4095")
        body = {"action": action, "type": "vlan", "vlan": vid, "mac_address": _mac(mac, usage), "port": port}
    else:
        raise CliError(f"usage: {usage}")
    if not _RES_RE.fullmatch(port):
        raise CliError(f"invalid port {port!r}: expected TYPE:N such as ring:0; usage: {usage}")
    return Request("PUT", f"{base}/classifier_table", body)


def _mac(mac: str, usage: str) -> str:
    try:
        lang.mac(mac, allow_default=True)
    except lang.CommandError:
        raise CliError(f"invalid MAC address {mac!r}: expected XX:XX:XX:XX:XX:XX or 'default'; "
                       f"usage: {usage}") from None
    return mac


def lang_request(cmd: lang.Command, base: str, kind: str) -> Request:
    """The REST request of SPP's spp-ctl for a command of :mod:`spp.lang` sent to ``base``."""
    if isinstance(cmd, lang.Status):
        return Request("GET", base if kind != "primary" else f"{base}/status")
    if isinstance(cmd, lang.Exit):
        return Request("DELETE", base)
    if isinstance(cmd, lang.Clear):
        return Request("DELETE", f"{base}/status")
    if isinstance(cmd, lang.Start):
        return Request("PUT", f"{base}/capture", {"action": "start"})
    if isinstance(cmd, lang.Stop):
        if kind == "pcap":
            return Request("PUT", f"{base}/capture", {"action": "stop"})
        return Request("PUT", f"{base}/forward", {"action": "stop"})
    if isinstance(cmd, lang.Forward):
        return Request("PUT", f"{base}/forward", {"action": "start"})
    if isinstance(cmd, lang.AddPort | lang.DelPort):
        action = "add" if isinstance(cmd, lang.AddPort) else "del"
        return Request("PUT", f"{base}/ports", {"action": action, "port": str(cmd.port)})
    if isinstance(cmd, lang.Patch):
        return Request("PUT", f"{base}/patches", {"src": str(cmd.src), "dst": str(cmd.dst)})
    if isinstance(cmd, lang.PatchReset):
        return Request("DELETE", f"{base}/patches")
    raise CliError(f"{lang.render(cmd)!r} has no REST request here")


def translate_primary(words: list[str], secondary_addr: str) -> Request:
    """A ``pri;`` subcommand as a REST request (``launch`` fills the secondary address)."""
    usage = USAGE["pri"]
    if words and words[0] in ("add", "del", "patch", "forward", "stop"):
        try:
            return lang_request(lang.parse_words(words, "primary"), "/primary", "primary")
        except lang.CommandError as e:
            raise CliError(str(e)) from None
    if words == ["status"]:
        return Request("GET", "/primary/status")
    if words == ["clear"]:
        return Request("DELETE", "/primary/status")
    if words == ["exit"]:
        return Request("DELETE", "/primary")
    if len(words) == 3 and words[0] == "port" and words[1] in ("add", "del"):
        return Request("PUT", "/primary/ports", {"action": words[1], "port": words[2]})
    if words and words[0] == "launch":
        return _launch(words[1:], secondary_addr, usage)
    if words and words[0] == "port_mirror":
        return _port_mirror(words[1:])
    raise CliError(f"usage: {usage}")


def _port_mirror(args: list[str]) -> Request:
    """``port_mirror list|del NAME|add NAME SOURCE DIR DEST [options]`` → ``/v1/port_mirrors``."""
    usage = USAGE["port_mirror"]
    if args == ["list"]:
        return Request("GET", "/port_mirrors")
    if len(args) == 2 and args[0] == "del":
        return Request("DELETE", f"/port_mirrors/{args[1]}")
    if len(args) < 5 or args[0] != "add":
        raise CliError(f"usage: {usage}")
    _, name, source, direction, destination, *rest = args
    if direction not in ("rx", "tx", "both"):
        raise CliError(f"invalid direction {direction!r}: expected rx, tx or both; usage: {usage}")
    body: dict[str, Any] = {"name": name, "source": source, "direction": direction, "destination": destination}
    i = 0
    while i < len(rest):
        opt = rest[i]
        if opt == "flow":
            if len(rest) - i - 1 < 5:
                raise CliError("flow needs 5 words: PROTO SIP SPORT DIP DPORT (each may be '*')")
            proto, sip, sport, dip, dport = rest[i + 1 : i + 6]
            flow: dict[str, Any] = {}
            for key, value in (("proto", proto), ("src", sip), ("sport", sport), ("dst", dip), ("dport", dport)):
                if value != "*":
                    flow[key] = int(value) if key in ("sport", "dport") and value.isdigit() else value
            body["flow"] = flow
            i += 6
            continue
        if i + 1 >= len(rest):
            raise CliError(f"option {opt!r} needs a value; usage: {usage}")
        value = rest[i + 1]
        if opt == "vlan":
            body["vlan_filter"] = value
        elif opt in ("src_mac", "dst_mac"):
            body[opt] = _mac(value, usage)
        elif opt == "snaplen":
            if not value.isdigit():
                raise CliError(f"invalid snaplen {value!r}: expected a number of bytes")
            body["snaplen"] = int(value)
        elif opt == "copy":
            if value not in ("shallow", "deep"):
                raise CliError(f"invalid copy {value!r}: expected shallow or deep")
            body["copy"] = value
        else:
            raise CliError(f"unknown port_mirror option {opt!r}; usage: {usage}")
        i += 2
    return Request("POST", "/port_mirrors", body)


def _launch(args: list[str], secondary_addr: str, usage: str) -> Request:
    if len(args) < 2 or args[0] not in SECONDARY_KINDS or not args[1].isdigit():
        raise CliError(f"usage: {usage}")
    kind, cid = args[0], int(args[1])
    eal: dict[str, Any] = {}
    app: dict[str, Any] = {"-s": secondary_addr, "--client-id": cid}
    rest = [a for a in args[2:] if a not in ("--", "--vhost-client")]
    if "-n" in rest and kind == "nfv":  # SPP's nfv app option: the client id (given already)
        i = rest.index("-n")
        del rest[i : i + 2]
    if len(rest) % 2:
        raise CliError(f"options come in pairs (option value); usage: {usage}")
    for opt, value in zip(rest[::2], rest[1::2], strict=True):
        if opt == "-l":
            eal["-l"] = value
        elif opt == "-m":
            eal["-m"] = value
        elif opt == "-s":
            app["-s"] = value
        elif opt == "--copy" and kind == "mirror":
            if value not in ("shallow", "deep"):
                raise CliError(f"invalid --copy {value!r}: expected shallow or deep")
            app["--copy"] = value
        elif opt == "--client-id":
            continue
        elif kind == "pcap" and opt in ("-c", "--out-dir", "--fsize", "--snaplen", "--count"):
            app[opt] = value
        else:
            raise CliError(f"unknown launch option {opt!r}; usage: {usage}")
    return Request("PUT", "/primary/launch", {"proc_name": f"spp_{kind}", "client_id": cid, "eal": eal, "app": app})
