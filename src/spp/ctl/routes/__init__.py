"""REST routers of spp-ctl, one module per resource family.

Each module exposes ``router`` (a :class:`fastapi.APIRouter` with paths
relative to ``/v1``).  To add a family (e.g. port mirrors), write a module
here and list it in :func:`default_routers`; get the core with the
:data:`~spp.ctl.routes.deps.ControllerDep` dependency and raise
:mod:`spp.ctl.errors` exceptions: :mod:`spp.ctl.api` maps them to HTTP.
"""

from __future__ import annotations

from fastapi import APIRouter


def default_routers() -> list[APIRouter]:
    """The routers every spp-ctl serves under ``/v1``."""
    from spp.ctl import port_mirrors
    from spp.ctl.routes import host, nfv, primary, processes, secondaries

    return [processes.router, secondaries.vf_router, secondaries.mirror_router, primary.router, host.router,
            port_mirrors.router, nfv.nfv_router, nfv.pcap_router, nfv.primary_router]
