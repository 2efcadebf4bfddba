"""``GET /v1/cpu_layout`` and ``GET /v1/cpu_usage``: answered by spp-ctl itself."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from spp.ctl import hostinfo

router = APIRouter(tags=["host"])


@router.get("/cpu_layout")
async def get_cpu_layout() -> list[dict[str, Any]]:
    """``[{"socket_id":0,"cores":[{"core_id":0,"lcores":[0,4]},...]},...]``."""
    return await asyncio.to_thread(hostinfo.cpu_layout)


@router.get("/cpu_usage")
async def get_cpu_usage() -> dict[str, Any]:
    """Per-lcore busy percentage over 0.2 s.

    ``{"interval":0.2,"lcores":[{"lcore_id":0,"busy":12.5},...]}``
    """
    return await hostinfo.cpu_usage()
