"""``vhost:N`` — registers the vhost-user backend driver (:mod:`spp.ports.vhost_port`).

Options of :func:`spp.ports.base.open_port` for ``vhost:N``:

* ``path`` — the unix socket (default ``/tmp/sockN``, as in SPP);
* ``client`` — ``True`` to connect to a frontend that listens (SPP's ``--vhost-client``;
  QEMU ``server=on``, virtio-user ``server=1``) instead of listening ourselves.
"""

from __future__ import annotations

from typing import Any

from spp.ports.base import Port, PortId, register_driver
from spp.ports.vhost_port import VhostPort, make_vhost_port
from spp.runtime.dataplane import Dataplane

__all__ = ["VhostPort"]


@register_driver("vhost")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    return make_vhost_port(dp, pid, opts)
