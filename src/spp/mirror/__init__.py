"""Port mirroring: copy a port's rx and/or tx traffic to another port (SPEC §7).

The API, in the spirit of DPDK's ``rte_mirror_register``/``rte_eth_add_mirror`` and
OpenStack TaaS::

    from spp.mirror import MirrorAgent

    agent = MirrorAgent(dp, port_table)       # one per process; agent.start() to follow others
    agent.register("tap1", "ring:0", "ring:5", "both", vlan="9,18-27", snaplen=128)
    agent.mirrors()                           # [{"name": "tap1", ..., "stats": {"packets": ...}}]
    agent.unregister("tap1")

Without an agent (e.g. in spp-primary or spp-ctl's relay), :func:`add_mirror`,
:func:`remove_mirror` and :func:`list_mirrors` edit the shared registry directly, and
:func:`handle_port_mirror_command` serves the ``port_mirror`` wire command.
See ``docs/mirroring.md``.
"""

from spp.mirror.agent import MirrorAgent
from spp.mirror.command import handle_port_mirror_command
from spp.mirror.engine import DIRECTIONS, STAT_NAMES, BurstFilter, PortMirror
from spp.mirror.filters import FilterError, FlowMatch, MatchSpec, parse_mac, parse_vlan_ranges
from spp.mirror.registry import MirrorError, MirrorSpec, SharedMirror, add_mirror, list_mirrors, remove_mirror

__all__ = [
    "DIRECTIONS",
    "STAT_NAMES",
    "BurstFilter",
    "FilterError",
    "FlowMatch",
    "MatchSpec",
    "MirrorAgent",
    "MirrorError",
    "MirrorSpec",
    "PortMirror",
    "SharedMirror",
    "add_mirror",
    "handle_port_mirror_command",
    "list_mirrors",
    "parse_mac",
    "parse_vlan_ranges",
    "remove_mirror",
]
