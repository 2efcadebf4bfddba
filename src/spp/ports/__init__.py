"""Port drivers: one burst interface (:mod:`spp.ports.base`), many drivers."""

from spp.ports.base import Port, PortError, PortId, PortTable, open_port, register_driver

__all__ = ["Port", "PortError", "PortId", "PortTable", "open_port", "register_driver"]
