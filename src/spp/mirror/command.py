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
from spp.lang import port_mirror as lang
from spp.lang.base import CommandError
from spp.lang.wire import error, success
from spp.mirror.filters import FilterError, FlowMatch
from spp.mirror.registry import MirrorError, MirrorSpec, add_mirror, list_mirrors, remove_mirror
from spp.runtime.dataplane import Dataplane

USAGE: Final = lang.USAGE


def spec_of(dp: Dataplane, cmd: lang.PortMirrorAdd) -> MirrorSpec:
    """A parsed ``port_mirror add`` → a validated :class:`MirrorSpec` (:class:`MirrorError` otherwise)."""
    flow: FlowMatch | None = None
    if cmd.flow is not None:
        try:
            flow = FlowMatch.parse(list(cmd.flow))
        except FilterError as e:
            raise MirrorError(f"port_mirror add: {e}") from None
    for role, pid in (("source", cmd.source), ("destination", cmd.destination)):
        try:
            check_port(dp, pid)
        except ValueError as e:
            raise MirrorError(f"port_mirror add: {role} {e}") from None
    return MirrorSpec.create(dp, cmd.name, str(cmd.source), str(cmd.destination), cmd.direction, vlan=cmd.vlan,
                             src_mac=cmd.src_mac, dst_mac=cmd.dst_mac, flow=flow, snaplen=cmd.snaplen,
                             copy=cmd.copy)


def parse_add(dp: Dataplane, args: Sequence[str]) -> MirrorSpec:
    """``NAME SRC DIR DST [options]`` → a validated :class:`MirrorSpec` (:class:`MirrorError` otherwise)."""
    try:
        cmd = lang.parse_words(["add", *args])
    except CommandError as e:
        raise MirrorError(str(e)) from None
    assert isinstance(cmd, lang.PortMirrorAdd)
    return spec_of(dp, cmd)


def handle_port_mirror_command(dp: Dataplane, tokens: Sequence[str]) -> dict[str, Any]:
    """Answer one ``port_mirror`` command (with or without the leading word); never raises.

    Returns SPP's JSON reply: success, success with ``info.port_mirrors`` for ``list``,
    or an error with a message saying what was wrong.
    """
    args = list(tokens)
    if args and args[0] == "port_mirror":
        args = args[1:]
    try:
        cmd = lang.parse_words(args)
        if isinstance(cmd, lang.PortMirrorAdd):
            add_mirror(dp, spec_of(dp, cmd))
        elif isinstance(cmd, lang.PortMirrorDel):
            remove_mirror(dp, cmd.name)
        else:
            return success(info={"port_mirrors": list_mirrors(dp)})
        return success()
    except (CommandError, MirrorError, TimeoutError) as e:
        return error(str(e))
