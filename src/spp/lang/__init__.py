"""The one command layer of every spp process: commands and replies as data, parsed and rendered here.

Every command is a frozen dataclass.  :func:`parse` turns the wire text a process
receives into one, or raises :class:`CommandError` whose message is the text every
front end shows (the process's error reply, spp-ctl's ``400 invalid body: field 'x':
<reason>`` / ``command error: ...``, the CLI's ``error: ...``); ``render`` turns a
command back into the wire text SPP's spp-ctl sends.  The grammars:

* :mod:`spp.lang.panel`: spp-nfv, spp-pcap and the primary's forwarder and launcher;
* :mod:`spp.lang.vf`: spp-vf and spp-mirror (components, ports with VLAN options,
  the classifier table);
* :mod:`spp.lang.base`: the field validators all share (ports, MACs, VLAN ids,
  names, core lists) and :class:`CommandError`;
* :mod:`spp.lang.wire`: what one command and one reply are on the socket.
"""

from __future__ import annotations

from spp.lang import vf
from spp.lang.base import (
    COMPONENT_TYPES,
    MAX_CORES,
    CommandError,
    Exit,
    Status,
    integer,
    mac,
    name,
    parse_cores,
    port_id,
    tokenize,
    wire_port,
    wire_res,
)
from spp.lang.panel import (
    COMMANDS,
    LAUNCH_KINDS,
    USAGE,
    AddPort,
    Clear,
    Command,
    DelPort,
    Forward,
    Launch,
    Patch,
    PatchReset,
    ProcessKind,
    Start,
    Stop,
    parse,
    parse_words,
    render,
)

__all__ = [
    "COMMANDS", "COMPONENT_TYPES", "LAUNCH_KINDS", "MAX_CORES", "USAGE", "AddPort", "Clear", "Command",
    "CommandError", "DelPort", "Exit", "Forward", "Launch", "Patch", "PatchReset", "ProcessKind", "Start",
    "Status", "Stop", "integer", "mac", "name", "parse", "parse_cores", "parse_words", "port_id", "render",
    "tokenize", "vf", "wire_port", "wire_res",
]
