#!/usr/bin/env python3
"""REST latency of a running spp-ctl with and without N open topology-page streams.

    python3 scripts/ui_load.py http://127.0.0.1:7777 [--streams 50] [--requests 60] [--token T]

Opens N ``GET /ui/events`` streams (each reads every snapshot, like a browser), then times
``GET /v1/processes``, ``/v1/primary/status`` and the first secondary's status in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx


async def _timed(client: httpx.AsyncClient, paths: list[str], count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = await client.get(paths[i % len(paths)])
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        await asyncio.sleep(0.05)
    return latencies


def _line(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=20)
    return (f"{name:>18}: median {statistics.median(values) * 1e3:6.1f} ms  p95 {q[18] * 1e3:6.1f} ms  "
            f"max {max(values) * 1e3:6.1f} ms  ({len(values)} requests)")


async def main(url: str, streams: int, requests: int, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers, limits=limits) as client:
        procs = (await client.get("/v1/processes")).json()
        paths = ["/v1/processes"]
        paths += ["/v1/primary/status"] if any(p["type"] == "primary" for p in procs) else []
        paths += [f"/v1/{p['type']}s/{p['client-id']}" for p in procs if p["type"] in ("vf", "mirror")][:1]
        print(f"{url}: {len(procs)} processes; timing {', '.join(paths)}")
        print(_line("no stream", await _timed(client, paths, requests)))
        events = 0
        opened = asyncio.Event()

        async def viewer() -> None:
            nonlocal events
            async with client.stream("GET", "/ui/events") as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        events += 1
                        if events >= streams:
                            opened.set()

        tasks = [asyncio.create_task(viewer()) for _ in range(streams)]
        await asyncio.wait_for(opened.wait(), 30)
        started, before = time.monotonic(), events
        result = await _timed(client, paths, requests)
        rate = (events - before) / (time.monotonic() - started) / streams
        print(_line(f"{streams} streams", result) + f"; each stream got {rate:.2f} snapshots/s")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="spp-ctl's REST base URL, e.g. http://127.0.0.1:7777")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.streams, args.requests, args.token))
