"""``GET /v1/processes``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from spp.ctl.routes.deps import ControllerDep

router = APIRouter(tags=["processes"])


@router.get("/processes")
async def get_processes(ctl: ControllerDep) -> list[dict[str, Any]]:
    """Connected processes: ``[{"type":"primary"},{"type":"vf","client-id":1},...]``.

    The primary comes first, then secondaries ordered by type and client id, then
    the secondaries the primary launched that exited with an error and are not
    connected: ``{"type":"vf","client-id":9,"error":"vf 9 exited with status 2: ..."}``.
    A connected process whose last status (read through any route, the metrics
    scrape or the topology page) reported an ``error`` carries it too.
    """
    result: list[dict[str, Any]] = []
    for key in ctl.processes():
        entry: dict[str, Any] = {"type": key.kind}
        if key.client_id is not None:
            entry["client-id"] = key.client_id
        error = ctl.error_of(key)
        if error:
            entry["error"] = error
        result.append(entry)
    result += await ctl.failed_launches()
    return result
