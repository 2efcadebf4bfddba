"""The topology page's server side: /ui, /ui/snapshot, /ui/events (SSE), with fake processes."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from typing import Any

import httpx
from ctl_helpers import Ctl, running_ctl
from hypothesis import given, settings
from hypothesis import strategies as st
from ui_samples import big_snapshot

from spp.ctl.ui.hub import UiHub
from spp.ctl.ui.snapshot import RateMemory, Reading, build_snapshot
from spp.testing.fake_secondary import FakeSecondary, error_reply, wait_until


def _snapshot(ctl: Ctl) -> dict[str, Any]:
    response = ctl.http.get("/ui/snapshot")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


def _hub(ctl: Ctl) -> UiHub:
    hub: UiHub = ctl.service.app.state.ui_hub
    return hub


def _by_id(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in snap["processes"]}


# -- the model -----------------------------------------------------------------------


def test_rates_are_per_second_and_a_cleared_counter_starts_over() -> None:
    rates = RateMemory()

    def build(now: float, rx: int) -> dict[str, Any]:
        primary = {"ring_ports": [{"port": "ring:0", "count": 3, "size": 512,
                                   "stats": {"rx_packets": rx, "rx_bytes": rx * 64, "tx_packets": rx,
                                             "drops": {"ring_full": rx // 10}}}]}
        return build_snapshot([Reading("primary", None, status=primary)], primary=primary, port_mirrors=[],
                              rates=rates, now=now, wall=0.0)

    first = build(10.0, 1000)
    assert first["ports"][0]["rates"]["rx_pps"] == 0.0  # nothing to compare with yet
    port = build(10.5, 2000)["ports"][0]
    assert port["uid"] == "ring:0" and port["type"] == "ring" and port["ring"] == {"count": 3, "size": 512}
    assert port["rates"] == {"rx_pps": 2000.0, "tx_pps": 2000.0, "rx_bps": 1_024_000.0, "tx_bps": 0.0,
                             "drop_pps": 200.0}
    assert port["stats"]["errors"] == 0 and port["stats"]["drops"] == {"ring_full": 200}
    assert build(11.5, 10)["ports"][0]["rates"]["rx_pps"] == 0.0  # cleared: no negative rate


def test_every_process_kind_gives_components_and_ports() -> None:
    snap = big_snapshot()
    procs = _by_id(snap)
    assert len(procs) == 11 and len(snap["ports"]) >= 100
    assert procs["vf:1"]["components"][0] == {
        "id": "vf:1/cls", "name": "cls", "type": "classifier", "core": 2, "rx": ["phy:0"],
        "tx": ["ring:0", "ring:1", "ring:2", "ring:3"], "drops": {"no_route": 2}, "drop_rate": 0.0}
    nfv = procs["nfv:10"]
    assert [c["type"] for c in nfv["components"]] == ["patch", "patch"]
    assert nfv["components"][0]["rx"] == ["pcap:0"] and nfv["components"][0]["tx"] == ["pcap:1"]
    assert snap["port_mirrors"][0]["rates"]["pps"] == 10.0
    phy = next(p for p in snap["ports"] if p["uid"] == "phy:0")
    assert phy["iface"] == "ens5f0" and phy["rates"]["rx_pps"] > 0
    json.dumps(snap)  # JSON-ready


def test_a_launched_secondary_that_never_connected_is_down() -> None:
    primary = {"processes": [{"proc_name": "vf", "client_id": 3, "pid": 42, "alive": True},
                             {"proc_name": "mirror", "client_id": 4, "pid": 43, "alive": False, "returncode": 1}]}
    snap = build_snapshot([Reading("primary", None, status=primary)], primary=primary, port_mirrors=None,
                          rates=RateMemory(), now=0.0, wall=0.0)
    procs = _by_id(snap)
    assert procs["vf:3"]["up"] is False and "not connected" in procs["vf:3"]["error"]
    assert procs["mirror:4"]["error"] == "exited with status 1"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["port", "stats", "drops", "rx_port", "tx_port", "core", "name", "type", "role", "patches",
                         "src", "dst", "components", "ports", "count", "size", "rx_packets", "processes",
                         "proc_name", "client_id", "alive", "pool", "phy_ports", "ring_ports", "iface", "x"]),
        inner, max_size=5),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(statuses=st.lists(st.dictionaries(st.sampled_from(["components", "core", "patches", "ports", "phy", "ring",
                                                           "forwarder", "status"]), _json, max_size=4), max_size=3),
       primary=st.dictionaries(st.sampled_from(["phy_ports", "ring_ports", "ports", "pool", "processes"]), _json,
                               max_size=5),
       mirrors=st.lists(_json, max_size=3))
def test_any_status_reply_gives_a_snapshot_never_an_error(statuses: list[dict[str, Any]], primary: dict[str, Any],
                                                          mirrors: list[Any]) -> None:
    readings = [Reading("primary", None, status=primary)]
    readings += [Reading("nfv", i, status=status) for i, status in enumerate(statuses)]
    rates = RateMemory()
    for now in (1.0, 2.0):
        snap = build_snapshot(readings, primary=primary, port_mirrors=mirrors, rates=rates, now=now, wall=now)
        json.dumps(snap)
        for port in snap["ports"]:
            assert isinstance(port["uid"], str) and all(isinstance(v, float) for v in port["rates"].values())


# -- routes, with fake processes ------------------------------------------------------------


def test_page_is_one_self_contained_document(ctl: Ctl) -> None:
    response = ctl.http.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "window.sppTopology" in page and "/*SCRIPT*/" not in page and "/*STYLE*/" not in page
    # nothing is fetched from elsewhere: no external script, style, font or image
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert not re.search(r"url\((?!#)|@import|https?://(?!www\.w3\.org/2000/svg)", page)


def test_snapshot_shows_processes_components_and_ports(ctl: Ctl) -> None:
    ctl.primary()
    ctl.secondary(1, "vf")
    ctl.secondary(2, "mirror")
    snap = _snapshot(ctl)
    procs = _by_id(snap)
    assert procs["primary"]["up"] and procs["vf:1"]["up"] and procs["mirror:2"]["up"]
    assert [c["id"] for c in procs["vf:1"]["components"]] == ["vf:1/cls"]  # "unuse" cores are left out
    assert procs["vf:1"]["details"]["classifier_table"][0]["port"] == "ring:0"
    assert procs["mirror:2"]["components"][0]["tx"] == ["ring:4", "ring:5"]
    uids = {p["uid"] for p in snap["ports"]}
    assert {"phy:0", "phy:1", "ring:0", "ring:1", "ring:4", "ring:5"} <= uids
    phy0 = next(p for p in snap["ports"] if p["uid"] == "phy:0")
    assert phy0["known"] and set(phy0["stats"]) == {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "errors",
                                                   "drops"}


def test_a_process_that_does_not_answer_is_down_never_a_500(ctl: Ctl) -> None:
    ctl.primary()
    vf = ctl.secondary(1, "vf")
    bad = ctl.secondary(3, "vf")
    bad.on("status", error_reply("status is broken"))
    fresh = ctl.secondary(4, "vf")
    fresh.hang_on("status")
    assert _by_id(_snapshot(ctl))["vf:1"]["up"]
    vf.hang_on("status")
    snap = _snapshot(ctl)
    procs = _by_id(snap)
    assert procs["primary"]["up"]
    assert procs["vf:1"]["up"] is False and procs["vf:1"]["state"] == "down"
    # (not 'disconnected': the page did not wait for spp-ctl's 2 s timeout, which drops the process)
    assert procs["vf:1"]["error"].startswith("no answer for")
    assert procs["vf:1"]["components"][0]["id"] == "vf:1/cls"  # drawn greyed, as last known
    assert procs["vf:3"]["state"] == "down" and "status is broken" in procs["vf:3"]["error"]
    # a process that never answered yet (it may be compiling) is 'waiting' for a while, then down
    assert procs["vf:4"]["up"] is False and procs["vf:4"]["state"] == "waiting"
    assert ctl.http.get("/v1/processes").status_code == 200
    # once spp-ctl gives up on it (timeout 2 s), the process is shown as disconnected, still no error
    wait_until(lambda: _by_id(_snapshot(ctl))["vf:1"]["error"] == "disconnected from spp-ctl", timeout=6)


def test_token_is_required_and_may_come_as_a_query_for_the_page() -> None:
    with running_ctl(token="s3cret") as ctl:
        plain = httpx.Client(base_url=ctl.url, timeout=5)
        try:
            assert plain.get("/ui").status_code == 401
            assert plain.get("/ui/snapshot").status_code == 401
            assert plain.get("/ui?token=wrong").status_code == 401
            assert plain.get("/ui/events?token=wr%C3%B6ng").status_code == 401
            assert plain.get("/ui?token=s3cret").status_code == 200
            assert plain.get("/ui/snapshot?token=s3cret").status_code == 200
            assert plain.get("/v1/processes?token=s3cret").status_code == 401  # only the page's routes
            assert ctl.http.get("/ui/snapshot").status_code == 200  # the header works too
            with plain.stream("GET", "/ui/events?token=s3cret") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
        finally:
            plain.close()


def _first_event(lines: Any) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data: "):
            result: dict[str, Any] = json.loads(line[len("data: "):])
            return result
    raise AssertionError("stream ended without an event")


def test_stream_sends_snapshots_and_a_closed_stream_is_freed(ctl: Ctl) -> None:
    ctl.primary()
    ctl.secondary(1, "vf")
    with httpx.Client(base_url=ctl.url, timeout=10) as client, client.stream("GET", "/ui/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = _first_event(lines)
        second = _first_event(lines)
        assert second["seq"] > first["seq"]
        assert second["time"] - first["time"] < 3  # once a second (with slack for a loaded CI host)
        assert second["streams"] == 1
        assert "vf:1" in _by_id(second)
    hub = _hub(ctl)
    wait_until(lambda: hub.streams == 0, timeout=5)
    wait_until(lambda: hub._task is None, timeout=5)  # the poller stops with the last stream


def test_fifty_streams_share_one_poller_and_rest_stays_responsive(ctl: Ctl) -> None:
    """50 page streams at once: one poll per interval in all, REST answers meanwhile (latency printed)."""
    ctl.primary()
    vf = ctl.secondary(1, "vf")

    async def scenario() -> tuple[list[float], int, float]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=ctl.url, timeout=15, limits=limits) as client:
            opened = asyncio.Event()
            count = 0
            stop = asyncio.Event()

            async def viewer() -> None:
                nonlocal count
                seen = False
                async with client.stream("GET", "/ui/events") as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and not seen:
                            seen = True
                            count += 1
                            if count >= 50:
                                opened.set()
                        if stop.is_set():
                            break

            tasks = [asyncio.create_task(viewer()) for _ in range(50)]
            await asyncio.wait_for(opened.wait(), 20)
            vf.reset()
            started = time.monotonic()
            latencies = []
            async with httpx.AsyncClient(base_url=ctl.url, timeout=15) as rest:
                for i in range(40):
                    t0 = time.perf_counter()
                    response = await rest.get("/v1/processes" if i % 2 else "/v1/vfs/1")
                    latencies.append(time.perf_counter() - t0)
                    assert response.status_code == 200
                    await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            streams = _hub(ctl).streams
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return latencies, streams, elapsed

    latencies, streams, elapsed = asyncio.run(scenario())
    assert streams == 50
    polls = [c for c in vf.commands if c == "status"]
    # one shared poller: ~1 status per second in all (plus the 20 REST GET /v1/vfs/1), never 50 per second
    assert len(polls) - 20 <= elapsed / _hub(ctl).interval + 2, (len(polls), elapsed)
    q = statistics.quantiles(latencies, n=20)
    print(f"\nREST latency during 50 streams: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {q[18] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms over {len(latencies)} requests")
    assert max(latencies) < 2.0  # responsive (speed goals live in spp bench)
    wait_until(lambda: _hub(ctl).streams == 0, timeout=10)


def test_status_reply_of_an_unknown_kind_is_shown(ctl: Ctl) -> None:
    nfv = FakeSecondary("127.0.0.1", ctl.secondary_port, 5, "nfv")
    nfv.status_info = {"status": "running", "ports": ["phy:0", "ring:0"], "patches": [{"src": "phy:0",
                                                                                       "dst": "ring:0"}]}
    ctl._fakes.append(nfv)
    nfv.connect()
    ctl.wait_listed({"type": "nfv", "client-id": 5})
    proc = _by_id(_snapshot(ctl))["nfv:5"]
    assert proc["up"] and proc["details"]["status"] == "running"
    assert proc["components"][0]["rx"] == ["phy:0"] and proc["components"][0]["tx"] == ["ring:0"]


def test_spp_ctl_stops_promptly_with_a_page_open() -> None:
    client = httpx.Client(timeout=10)
    try:
        with running_ctl() as ctl:
            response = client.send(client.build_request("GET", f"{ctl.url}/ui/events"), stream=True)
            assert response.status_code == 200
            next(response.iter_lines())
            started = time.monotonic()
        assert time.monotonic() - started < 5  # running_ctl also checks that the server thread ended
        response.close()
    finally:
        client.close()
