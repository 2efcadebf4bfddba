"""``vhost:N`` — registers the vhost-user backend driver (:mod:`spp.ports.vhost_port`).

Options of :func:`spp.ports.base.open_port` for ``vhost:N``:

* ``path`` — the unix socket (default ``/tmp/sockN``, as in SPP);
* ``client`` — ``True`` to connect to a frontend that listens (SPP's ``--vhost-client``;
  QEMU ``server=on``, virtio-user ``server=1``) instead of listening ourselves.  When
  not given, the process-wide default set by :func:`set_client_default` applies (a
  secondary started with ``--vhost-client`` calls ``set_client_default(True)``).
"""

from __future__ import annotations

from typing import Any

from spp.ports.base import Port, PortId, register_driver
from spp.ports.vhost_port import VhostPort, make_vhost_port
from spp.runtime.dataplane import Dataplane

__all__ = ["VhostPort", "set_client_default"]

_client_default = False


def set_client_default(client: bool) -> None:
    """Make ``vhost:N`` ports opened without a ``client`` option connect (True) or listen (False)."""
    global _client_default
    _client_default = bool(client)


@register_driver("vhost")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    if "client" not in opts:
        opts = {**opts, "client": _client_default}
    return make_vhost_port(dp, pid, opts)
