"""The ``port_mirror`` wire command (modelled on OpenStack TaaS), served by any process.

::

    port_mirror add NAME SRC_PORT {rx|tx|both} DST_PORT [vlan RANGES] [src_mac MAC] [dst_mac MAC]
                    [flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep]
    port_mirror del NAME
    port_mirror list

The registry is shared by every process of a stack, so the primary and every
secondary can answer it: :func:`handle_port_mirror_command` edits the registry and
returns SPP's JSON reply; the agents of the processes that own the source port attach
the mirror within a few milliseconds.  ``list`` answers
``{"results":[{"result":"success"}],"info":{"port_mirrors":[{...,"stats":{...}}]}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from spp.control.validate import check_port
from spp.mirror.filters import FilterError, FlowMatch
from spp.mirror.registry import MirrorError, MirrorSpec, add_mirror, list_mirrors, remove_mirror
from spp.ports.base import PortError, PortId
from spp.runtime.dataplane import Dataplane

USAGE: Final = ("port_mirror add NAME SRC_PORT {rx|tx|both} DST_PORT [vlan RANGES] [src_mac MAC] [dst_mac MAC] "
                "[flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep] | port_mirror del NAME | "
                "port_mirror list")

#: Options of ``add`` and how many values each takes.
_OPTIONS: Final[dict[str, int]] = {"vlan": 1, "src_mac": 1, "dst_mac": 1, "flow": 5, "snaplen": 1, "copy": 1}


def _success(**extra: Any) -> dict[str, Any]:
    return {"results": [{"result": "success"}], **extra}


def _error(message: str) -> dict[str, Any]:
    return {"results": [{"result": "error", "error_details": {"message": message}}]}


def parse_add(dp: Dataplane, args: Sequence[str]) -> MirrorSpec:
    """``NAME SRC DIR DST [options]`` → a validated :class:`MirrorSpec` (:class:`MirrorError` otherwise)."""
    if len(args) < 4:
        raise MirrorError(f"port_mirror add: expected NAME SRC_PORT {{rx|tx|both}} DST_PORT; usage: {USAGE}")
    name, src, direction, dst = args[:4]
    opts: dict[str, list[str]] = {}
    i = 4
    while i < len(args):
        key = args[i]
        if key not in _OPTIONS:
            raise MirrorError(f"port_mirror add: unknown option {key!r}; options: {', '.join(_OPTIONS)}")
        if key in opts:
            raise MirrorError(f"port_mirror add: option {key!r} given twice")
        n = _OPTIONS[key]
        values = list(args[i + 1 : i + 1 + n])
        if len(values) < n:
            what = "PROTO SIP SPORT DIP DPORT" if key == "flow" else "a value"
            raise MirrorError(f"port_mirror add: option {key!r} needs {what}")
        opts[key] = values
        i += 1 + n
    snaplen = 0
    if "snaplen" in opts:
        try:
            snaplen = int(opts["snaplen"][0])
        except ValueError:
            raise MirrorError(f"port_mirror add: snaplen {opts['snaplen'][0]!r} is not a number") from None
    flow: FlowMatch | None = None
    if "flow" in opts:
        try:
            flow = FlowMatch.parse(opts["flow"])
        except FilterError as e:
            raise MirrorError(f"port_mirror add: {e}") from None
    for role, text in (("source", src), ("destination", dst)):
        try:
            check_port(dp, PortId.parse(text))
        except PortError:
            pass  # MirrorSpec.create explains a malformed id
        except ValueError as e:
            raise MirrorError(f"port_mirror add: {role} {e}") from None
    return MirrorSpec.create(dp, name, src, dst, direction, vlan=opts.get("vlan", [None])[0],
                             src_mac=opts.get("src_mac", [None])[0], dst_mac=opts.get("dst_mac", [None])[0],
                             flow=flow, snaplen=snaplen, copy=opts.get("copy", ["shallow"])[0])


def handle_port_mirror_command(dp: Dataplane, tokens: Sequence[str]) -> dict[str, Any]:
    """Answer one ``port_mirror`` command (with or without the leading word); never raises.

    Returns SPP's JSON reply: success, success with ``info.port_mirrors`` for ``list``,
    or an error with a message saying what was wrong.
    """
    args = list(tokens)
    if args and args[0] == "port_mirror":
        args = args[1:]
    try:
        if not args:
            raise MirrorError(f"port_mirror: missing subcommand; usage: {USAGE}")
        sub, rest = args[0], args[1:]
        if sub == "add":
            add_mirror(dp, parse_add(dp, rest))
            return _success()
        if sub == "del":
            if len(rest) != 1:
                raise MirrorError("port_mirror del: expected exactly one NAME")
            remove_mirror(dp, rest[0])
            return _success()
        if sub == "list":
            if rest:
                raise MirrorError("port_mirror list: takes no arguments")
            return _success(info={"port_mirrors": list_mirrors(dp)})
        raise MirrorError(f"port_mirror: unknown subcommand {sub!r}; usage: {USAGE}")
    except (MirrorError, TimeoutError) as e:
        return _error(str(e))
