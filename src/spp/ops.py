"""Operator conventions shared by every command (docs/operations.md).

* ``--version`` on every parser (:func:`add_version`);
* ``--log-format text|json`` on the daemons (:func:`add_log_options`,
  :func:`setup_logging`): JSON logs are one object per line
  (``{"time","level","logger","message"[,"exc"]}``) for journald/Loki/ELK;
* environment variables for what should not be on a command line
  (:data:`ENV_TOKEN`, :data:`ENV_CTL`, read through :func:`env`);
* systemd readiness (:func:`sd_notify`): with ``Type=notify``, systemd starts the
  next unit only once the daemon said ``READY=1`` over ``$NOTIFY_SOCKET``.

No numba here: spp-ctl and the CLI import this module.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from typing import Final

from spp import __version__

#: Bearer token of spp-ctl's REST API (spp-ctl, spp, spp up/down).
ENV_TOKEN: Final = "SPP_TOKEN"
#: spp-ctl's REST address HOST[:PORT] (spp, spp up/down, spp top).
ENV_CTL: Final = "SPP_CTL"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def version_text(prog: str) -> str:
    """``spp-ctl 0.1.0 (Python 3.11.7)``."""
    return f"{prog} {__version__} (Python {sys.version.split()[0]})"


def add_version(parser: argparse.ArgumentParser) -> None:
    """Add ``--version`` (prints :func:`version_text` of the parser's prog and exits 0)."""
    parser.add_argument("--version", action="version", version=version_text(parser.prog.split(" (")[0]))


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-format {text,json}`` (default text)."""
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as text (default) or one JSON object per line")


def env(name: str) -> str | None:
    """Environment variable ``name``, or None when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (RFC 3339, UTC), level, logger, message, exc."""

    def __init__(self, static: dict[str, object] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def setup_logging(level: str, log_format: str = "text", *, text_format: str = TEXT_FORMAT,
                  static: dict[str, object] | None = None) -> None:
    """Configure the root logger on stderr; ``static`` fields go into every JSON line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(static) if log_format == "json" else logging.Formatter(text_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd's ``$NOTIFY_SOCKET``; False when not under systemd.

    A datagram on a Unix socket, as ``sd_notify(3)`` does (``@`` means the
    abstract namespace).  Errors are ignored: readiness is advice, never a reason to fail.
    """
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        logging.getLogger(__name__).debug("sd_notify(%r) failed: %s", state, exc)
        return False
    return True


def notify_ready() -> None:
    """``sd_notify("READY=1")`` once, then forget ``$NOTIFY_SOCKET`` (as ``sd_notify(3)``'s
    ``unset_environment``), so that processes this one starts (spp-primary launching
    secondaries) do not speak for it.  A no-op outside systemd.
    """
    if sd_notify("READY=1"):
        os.environ.pop("NOTIFY_SOCKET", None)
