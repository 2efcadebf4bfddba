"""spp-ctl: the controller of a Soft Patch Panel node.

spp-ctl listens on three TCP ports: one for the primary process, one for
secondary processes (spp_vf, spp_mirror, ...), and one for its REST API.  It
holds no state of its own besides the set of connected processes: every REST
request is translated into one plain-text command, relayed to one process, and
the process's JSON reply is translated back.

Layers (each one knows nothing of the layers above it):

- :mod:`spp.ctl.commands`   -- typed arguments to the wire command strings, through
  :mod:`spp.lang` (the one command layer: its checks, its rendering).
- :mod:`spp.ctl.protocol`   -- reply results; the framing is :mod:`spp.lang.wire`'s.
- :mod:`spp.ctl.connection` -- one TCP connection to one process, one command
  in flight at a time, with a timeout.
- :mod:`spp.ctl.controller` -- the process registry and the typed operations
  (``Controller``); raises :mod:`spp.ctl.errors`, knows nothing of HTTP.
- :mod:`spp.ctl.server`     -- the two TCP listeners (primary, secondaries).
- :mod:`spp.ctl.api`        -- the FastAPI application; the only place where
  errors become HTTP status codes.
- :mod:`spp.ctl.main`       -- the ``spp-ctl`` command line entry point.
"""

from spp.ctl.controller import Controller, ProcessKey
from spp.ctl.errors import (
    BadReply,
    CommandError,
    CtlError,
    InvalidArgument,
    NoSuchProcess,
    ProcessUnavailable,
)

__all__ = [
    "BadReply",
    "CommandError",
    "Controller",
    "CtlError",
    "InvalidArgument",
    "NoSuchProcess",
    "ProcessKey",
    "ProcessUnavailable",
]
