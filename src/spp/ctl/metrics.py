"""``GET /metrics``: the stack's counters in Prometheus' text format (docs/metrics.md).

A scrape asks every connected process for its ``status`` (the same wire command
the REST status routes send, so the figures are the ones ``GET /v1/vfs/N``,
``/v1/mirrors/N`` and ``/v1/primary/status`` show at that instant) and the
primary for ``port_mirror list``, all at once, then turns the replies into metric
families with ``prometheus_client``.  Workers are never stopped: a status reads
the shared counters.

A process that does not answer within spp-ctl's ``--timeout`` (or answers with an
error) is ``spp_process_up 0`` and contributes nothing else; a scrape never fails
because of a process.  Concurrent scrapes share one round of status requests.
spp-ctl's own REST requests are counted in ``spp_ctl_http_requests_total``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spp.ctl import commands
from spp.ctl.controller import PRIMARY, Controller, ProcessKey
from spp.ctl.errors import CtlError

METRICS_PATH: Final = "/metrics"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: they double the output and nobody graphs them

#: Port counters of a ``stats`` object: key → (metric name without ``_total``, help).
PORT_COUNTERS: Final = (
    ("rx_packets", "spp_port_receive_packets", "Frames received on the port."),
    ("rx_bytes", "spp_port_receive_bytes", "Bytes received on the port."),
    ("tx_packets", "spp_port_transmit_packets", "Frames transmitted on the port."),
    ("tx_bytes", "spp_port_transmit_bytes", "Bytes transmitted on the port."),
    ("errors", "spp_port_errors", "Errors on the port (frames not counted as a drop reason)."),
)
#: Counters of a port mirror's ``stats`` object.
MIRROR_COUNTERS: Final = (
    ("packets", "spp_port_mirror_packets", "Frames copied to the mirror's destination."),
    ("filtered", "spp_port_mirror_filtered", "Frames the mirror's filters did not select."),
    ("nombuf", "spp_port_mirror_nombuf", "Copies lost because the pool had no free buffer."),
    ("full", "spp_port_mirror_full", "Copies lost because the destination had no room."),
    ("errors", "spp_port_mirror_errors", "Copies lost for another reason."),
)


def process_label(key: ProcessKey) -> str:
    """``primary``, ``vf:1``, ``mirror:2``, ..."""
    return key.kind if key.client_id is None else f"{key.kind}:{key.client_id}"


@dataclass
class Snapshot:
    """What one scrape learnt: each process's status ``info`` (None: no answer)."""

    infos: dict[ProcessKey, dict[str, Any] | None] = field(default_factory=dict)
    port_mirrors: list[dict[str, Any]] | None = None
    seconds: float = 0.0
    #: The stack's part of the exposition, rendered once for every scrape sharing this snapshot.
    rendered: bytes | None = None


Inflight = dict[tuple[ProcessKey, str], "asyncio.Task[dict[str, Any]]"]


async def _ask(ctl: Controller, key: ProcessKey, command: str, budget: float,
               inflight: Inflight) -> dict[str, Any] | None:
    """``command``'s reply to process ``key``, or None if none came properly within ``budget`` s.

    The request is shielded: a scrape that gives up on a busy process never cancels
    it in flight (that would drop the connection); the next scrape waits for that
    same request instead of queueing another one behind it.
    """
    task = inflight.get((key, command))
    if task is None or task.done():
        task = asyncio.ensure_future(ctl.send(key.kind, key.client_id, command))
        task.add_done_callback(_consume)
        inflight[(key, command)] = task
        task.add_done_callback(lambda t: inflight.pop((key, command), None) if inflight.get((key, command)) is t
                               else None)
    try:
        return await asyncio.wait_for(asyncio.shield(task), budget)
    except (CtlError, TimeoutError):
        return None


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def collect(ctl: Controller, budget: float | None = None, inflight: Inflight | None = None) -> Snapshot:
    """Ask every connected process for its status (and the primary for its port mirrors).

    A process gets ``budget`` seconds (default: spp-ctl's ``--timeout``) to answer.
    """
    start = time.monotonic()
    budget = ctl.timeout if budget is None else min(budget, ctl.timeout)
    inflight = {} if inflight is None else inflight
    keys = ctl.processes()
    status = commands.status()
    calls = [_ask(ctl, key, status, budget, inflight) for key in keys]
    has_primary = any(k.kind == PRIMARY for k in keys)
    if has_primary:
        calls.append(_ask(ctl, ProcessKey(PRIMARY), "port_mirror list", budget, inflight))
    replies = await asyncio.gather(*calls)
    snap = Snapshot()
    for key, reply in zip(keys, replies, strict=False):
        snap.infos[key] = _info(reply)
    if has_primary:
        reply = replies[-1]
        info = reply.get("info") if reply is not None else None
        mirrors = info.get("port_mirrors") if isinstance(info, dict) else None
        snap.port_mirrors = [m for m in mirrors if isinstance(m, dict)] if isinstance(mirrors, list) else None
    snap.seconds = time.monotonic() - start
    return snap


def _info(reply: dict[str, Any] | None) -> dict[str, Any] | None:
    """A status reply's ``info`` object; SPP's spp_nfv puts its fields beside ``results`` instead."""
    if reply is None:
        return None
    if "info" in reply:
        info = reply["info"]
        return info if isinstance(info, dict) else None
    return {k: v for k, v in reply.items() if k != "results"}


# -- turning a snapshot into metric families -----------------------------------------------


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _port_entries(info: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every ``{"port": ..., "stats": {...}}`` the status names, once per port.

    Primary: ``phy_ports``, ``ring_ports``, ``ports``; secondaries: the
    ``rx_port``/``tx_port`` lists of each component (``core``), and any other
    top-level list of such entries.
    """
    seen: set[str] = set()

    def entries(items: object) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if not isinstance(items, list):
            return
        for item in items:
            if (isinstance(item, dict) and isinstance(item.get("port"), str)
                    and isinstance(item.get("stats"), dict) and item["port"] not in seen):
                seen.add(item["port"])
                yield item["port"], item["stats"]

    for value in info.values():
        yield from entries(value)
    for comp in _components(info):
        yield from entries(comp.get("rx_port"))
        yield from entries(comp.get("tx_port"))


def _components(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    comps = info.get("core", info.get("components"))
    if not isinstance(comps, list):
        return []
    return [c for c in comps if isinstance(c, dict) and isinstance(c.get("name"), str)]


def _compiled_flags(info: Mapping[str, Any]) -> list[bool]:
    """Compiled-path flags the status carries (``native`` of workers or components), if any."""
    flags: list[bool] = []
    workers = info.get("workers")
    if isinstance(workers, list):
        flags += [bool(w["native"]) for w in workers if isinstance(w, dict) and isinstance(w.get("native"), bool)]
    flags += [bool(c["native"]) for c in _components(info) if isinstance(c.get("native"), bool)]
    return flags


class _Families:
    """Metric families of one scrape, created on first use, in a stable order."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}

    def counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = CounterMetricFamily(name, doc, labels=labels)
        assert isinstance(family, CounterMetricFamily)
        return family

    def gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = GaugeMetricFamily(name, doc, labels=labels)
        assert isinstance(family, GaugeMetricFamily)
        return family


def families(snap: Snapshot) -> list[Metric]:
    """The stack's metric families for ``snap`` (see docs/metrics.md for the list)."""
    out = _Families()
    up = out.gauge("spp_process_up", "1 if the process answered this scrape's status request, else 0.",
                   ["process"])
    out.gauge("spp_scrape_duration_seconds", "Seconds this scrape waited for the processes' replies.", []
              ).add_metric([], snap.seconds)
    for key, info in snap.infos.items():
        proc = process_label(key)
        up.add_metric([proc], 0 if info is None else 1)
        if info is None:
            continue
        if isinstance(info.get("state"), str):
            out.gauge("spp_process_compiling",
                      "1 while the process is still compiling its data path (status state 'compiling').",
                      ["process"]).add_metric([proc], int(info["state"] == "compiling"))
        flags = _compiled_flags(info)
        if flags:
            out.gauge("spp_process_compiled_path",
                      "1 if every worker of the process runs the compiled (numba) loop, else 0.",
                      ["process"]).add_metric([proc], int(all(flags)))
        for port, stats in _port_entries(info):
            for key_name, name, doc in PORT_COUNTERS:
                value = _int(stats.get(key_name))
                if value is not None:
                    out.counter(name, doc, ["process", "port"]).add_metric([proc, port], value)
            _drops(out.counter("spp_port_drops", "Frames dropped at the port, by reason.",
                               ["process", "port", "reason"]), [proc, port], stats)
        for comp in _components(info):
            comp_stats = comp.get("stats")
            if isinstance(comp_stats, dict):
                _drops(out.counter("spp_component_drops", "Frames dropped by the component, by reason.",
                                   ["process", "component", "type", "reason"]),
                       [proc, str(comp["name"]), str(comp.get("type", ""))], comp_stats)
            if isinstance(comp.get("native"), bool):
                out.gauge("spp_component_compiled_path", "1 if the component runs in the compiled loop.",
                          ["process", "component"]).add_metric([proc, str(comp["name"])], int(comp["native"]))
        _pool(out, proc, info.get("pool"))
        _rings(out, proc, info.get("ring_ports"))
    for mirror in snap.port_mirrors or ():
        mstats = mirror.get("stats")
        if not isinstance(mstats, dict):
            continue
        labels = [str(mirror.get(k, "")) for k in ("name", "source", "direction", "destination")]
        for key_name, name, doc in MIRROR_COUNTERS:
            value = _int(mstats.get(key_name))
            if value is not None:
                out.counter(name, doc, ["mirror", "source", "direction", "destination"]).add_metric(labels, value)
    return list(out.families.values())


def _drops(family: CounterMetricFamily, labels: list[str], stats: Mapping[str, Any]) -> None:
    drops = stats.get("drops")
    if not isinstance(drops, dict):
        return
    for reason, count in sorted(drops.items()):
        value = _int(count)
        if value is not None:
            family.add_metric([*labels, str(reason)], value)


def _pool(out: _Families, proc: str, pool: object) -> None:
    if not isinstance(pool, dict):
        return
    total = _int(pool.get("n_bufs"))
    in_use = _int(pool.get("in_use"))
    if total is not None:
        out.gauge("spp_pool_buffers", "Packet buffers in the stack's shared pool.", ["process"]
                  ).add_metric([proc], total)
    if in_use is not None:
        out.gauge("spp_pool_buffers_in_use", "Packet buffers of the pool currently held (not free).", ["process"]
                  ).add_metric([proc], in_use)


def _rings(out: _Families, proc: str, rings: object) -> None:
    if not isinstance(rings, list):
        return
    for ring in rings:
        if isinstance(ring, dict) and isinstance(ring.get("port"), str):
            count, size = _int(ring.get("count")), _int(ring.get("size"))
            if count is not None:
                out.gauge("spp_ring_frames", "Frames waiting in the ring.", ["process", "port"]
                          ).add_metric([proc, ring["port"]], count)
            if size is not None:
                out.gauge("spp_ring_size_frames", "Capacity of the ring.", ["process", "port"]
                          ).add_metric([proc, ring["port"]], size)


# -- the route and the request counter ---------------------------------------------------


class _SnapshotCollector:
    def __init__(self, items: Iterable[Metric]) -> None:
        self.items = list(items)

    def collect(self) -> Iterable[Metric]:
        return self.items


class MetricsState:
    """Per-app state: the request counter, and the scrape in progress (shared by concurrent scrapes)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("spp_ctl_http_requests", "REST requests spp-ctl answered, by route and status.",
                                ["method", "route", "code"], registry=self.registry)
        self._pending: asyncio.Task[Snapshot] | None = None
        self._inflight: Inflight = {}

    async def snapshot(self, ctl: Controller, budget: float | None = None) -> Snapshot:
        """A fresh snapshot; a scrape arriving while one is being taken shares it."""
        task = self._pending
        if task is None or task.done():
            task = self._pending = asyncio.ensure_future(collect(ctl, budget, self._inflight))
        return await asyncio.shield(task)

    def render(self, snap: Snapshot) -> bytes:
        """The exposition: the snapshot's families (rendered once per snapshot), then spp-ctl's own."""
        if snap.rendered is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_SnapshotCollector(families(snap)))  # type: ignore[arg-type]
            snap.rendered = generate_latest(registry)
        return snap.rendered + generate_latest(self.registry)


class RequestCounter:
    """ASGI middleware counting every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, state: MetricsState, routes_of: FastAPI) -> None:
        self.app = app
        self.state = state
        self.routes_of = routes_of
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"  # bounded, even before the token
            self.state.requests.labels(method, self._route(scope), str(status[0])).inc()

    def _route(self, scope: Scope) -> str:
        """The path template of the route serving ``scope`` (``/v1/vfs/{client_id}``), or ``unmatched``."""
        if self._templates is None:
            self._templates = _templates(self.routes_of)
        path = str(scope.get("path", ""))
        for pattern, template in self._templates:
            if pattern.fullmatch(path):
                return template
        return "unmatched"


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], str]]:
    """Every path template of ``app`` (the documented ones, the pages, mounts as prefixes)."""
    paths = list(app.openapi().get("paths", {}))
    extra: list[tuple[re.Pattern[str], str]] = []
    for route in app.routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path or path in paths:
            continue
        if isinstance(route, Mount):
            extra.append((re.compile(re.escape(path) + "/.*"), path + "/*"))
        else:
            paths.append(path)
    out = [(re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p))), p) for p in paths]
    return out + extra


SCRAPE_TIMEOUT_HEADER: Final = "X-Prometheus-Scrape-Timeout-Seconds"


def _scrape_budget(header: str | None) -> float | None:
    """Seconds a process may take, from Prometheus' scrape timeout header (answer before it gives up)."""
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None
    if seconds is None or not seconds > 0:
        return None
    return max(0.1, seconds * 0.8 - 0.2)


def install(app: FastAPI) -> None:
    """Add ``GET /metrics`` and the request counter to spp-ctl's ``app``."""
    state = MetricsState()
    app.state.metrics = state

    @app.get(METRICS_PATH, tags=["metrics"], response_class=Response, responses={
        200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {"schema": {"type": "string"}}},
              "description": "Prometheus text exposition format 0.0.4."}})
    async def metrics(request: Request) -> Response:
        """The stack's counters in Prometheus' text format (see docs/metrics.md)."""
        controller: Controller = request.app.state.controller
        snap = await state.snapshot(controller, _scrape_budget(request.headers.get(SCRAPE_TIMEOUT_HEADER)))
        return Response(state.render(snap), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    app.add_middleware(RequestCounter, state=state, routes_of=app)
