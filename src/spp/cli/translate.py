"""SPP's CLI syntax → REST requests of SPEC section 5 (pure functions, no I/O).

``vf 1; port add ring:0 rx fwd1`` becomes
``PUT /v1/vfs/1/components/fwd1/ports {"action":"attach","port":"ring:0","dir":"rx","vlan":{}}``
exactly as SPP's own CLI sends it (``"vlan":{}`` on every vf port body without a
VLAN option, the VLAN of ``classifier_table`` as a string).  Bad input raises
:class:`~spp.cli.client.CliError` with the usage of the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from spp import lang
from spp.cli.client import CliError
from spp.lang import port_mirror, vf
from spp.lang.base import merge_nq

SECONDARY_KINDS: Final = {"vf": "vfs", "mirror": "mirrors", "nfv": "nfvs", "pcap": "pcaps"}
USAGE: Final[dict[str, str]] = {
    "pri": "pri; status | pri; clear | pri; [port] {add|del} PORT | pri; patch SRC DST | pri; patch reset | "
    "pri; forward | pri; stop | "
    "pri; launch {nfv|vf|mirror|pcap} CLIENT_ID [-l CORES] [-s HOST:PORT] [--copy shallow|deep] "
    "[-c PORT --out-dir DIR --fsize BYTES] | pri; exit | "
    "pri; port_mirror {list | add ... | del NAME}",
}
#: The commands of ``vf N;`` (``mirror N;`` has all but classifier_table) and of ``pri;`` (spp.lang's lists).
SECONDARY_SUBCOMMANDS: Final = vf.COMMANDS["vf"]
PRIMARY_SUBCOMMANDS: Final = (*lang.COMMANDS["primary"][:-1], "port_mirror", "exit")


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


def translate_secondary(kind: str, client_id: int, words: list[str]) -> Request:
    """A ``vf N;`` / ``mirror N;`` / ``nfv N;`` / ``pcap N;`` subcommand as a REST request."""
    base = f"/{SECONDARY_KINDS[kind]}/{client_id}"
    if kind in ("nfv", "pcap"):
        try:
            parsed = lang.parse_words(words, "nfv" if kind == "nfv" else "pcap")
        except lang.CommandError as e:
            raise CliError(str(e)) from None
        return lang_request(parsed, base, kind)
    try:
        cmd = vf.parse_words(merge_nq(words), "vf" if kind == "vf" else "mirror")
    except lang.CommandError as e:
        raise CliError(str(e)) from None
    return vf_request(cmd, base, kind)


def vf_request(cmd: vf.Command, base: str, kind: str) -> Request:
    """The REST request of SPP's CLI for a command of :mod:`spp.lang.vf` sent to ``base``."""
    if isinstance(cmd, lang.Status):
        return Request("GET", base)
    if isinstance(cmd, lang.Exit):
        return Request("DELETE", base)
    if isinstance(cmd, vf.ComponentStart):
        return Request("POST", f"{base}/components", {"name": cmd.name, "core": cmd.core, "type": cmd.ctype})
    if isinstance(cmd, vf.ComponentStop):
        return Request("DELETE", f"{base}/components/{cmd.name}")
    if isinstance(cmd, vf.PortAdd | vf.PortDel):
        body: dict[str, Any] = {"action": "attach" if isinstance(cmd, vf.PortAdd) else "detach",
                                "port": str(cmd.port), "dir": cmd.direction}
        if isinstance(cmd, vf.PortAdd) and kind == "vf":  # SPP's CLI sends "vlan": {} without an option
            vlan = cmd.vlan
            body["vlan"] = {} if vlan is None else {"operation": vlan.operation, "id": vlan.vid, "pcp": vlan.pcp}
        return Request("PUT", f"{base}/components/{cmd.name}/ports", body)
    if cmd.vlan is None:
        body = {"action": cmd.action, "type": "mac", "mac_address": cmd.spelled, "port": str(cmd.port)}
    else:  # SPP's CLI sends the VLAN id as a string
        body = {"action": cmd.action, "type": "vlan", "vlan": str(cmd.vlan), "mac_address": cmd.spelled,
                "port": str(cmd.port)}
    return Request("PUT", f"{base}/classifier_table", body)


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
    if words and words[0] == "launch":
        return _launch(words[1:], secondary_addr, USAGE["pri"])
    try:
        if words and words[0] == "port_mirror":
            return port_mirror_request(port_mirror.parse_words(merge_nq(words[1:])))
        return lang_request(lang.parse_words(words, "primary"), "/primary", "primary")
    except lang.CommandError as e:
        raise CliError(str(e)) from None


def port_mirror_request(cmd: port_mirror.Command) -> Request:
    """``port_mirror list|del NAME|add ...`` → ``/v1/port_mirrors`` (the body of spp-ctl's REST API)."""
    if isinstance(cmd, port_mirror.PortMirrorList):
        return Request("GET", "/port_mirrors")
    if isinstance(cmd, port_mirror.PortMirrorDel):
        return Request("DELETE", f"/port_mirrors/{cmd.name}")
    body: dict[str, Any] = {"name": cmd.name, "source": str(cmd.source), "direction": cmd.direction,
                            "destination": str(cmd.destination)}
    for key, value in (("vlan_filter", cmd.vlan), ("src_mac", cmd.src_mac), ("dst_mac", cmd.dst_mac)):
        if value is not None:
            body[key] = value
    if cmd.flow is not None:
        body["flow"] = {key: int(value) if key in ("sport", "dport") and value.isdigit() else value
                        for key, value in zip(port_mirror.FLOW_FIELDS, cmd.flow, strict=True) if value != "*"}
    if cmd.snaplen:
        body["snaplen"] = cmd.snaplen
    if cmd.copy != "shallow":
        body["copy"] = cmd.copy
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
