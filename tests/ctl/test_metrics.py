"""``GET /metrics`` against fake processes: names, figures, up 0 for a silent process, token."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest
from ctl_helpers import HOST, Ctl, running_ctl
from prometheus_client.parser import text_string_to_metric_families

from spp.testing.fake_secondary import FakeSecondary, error_reply, success, vf_status_info


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition (the parser checks its syntax)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(ctl: Ctl) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = ctl.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


def port_stats(rx: int, tx: int, **drops: int) -> dict[str, Any]:
    return {"rx_packets": rx, "rx_bytes": rx * 64, "tx_packets": tx, "tx_bytes": tx * 64, "errors": 1,
            "drops": drops}


def test_figures_names_and_help(ctl: Ctl) -> None:
    vf = ctl.secondary(1, "vf")
    info = vf_status_info(1)
    info["core"][0]["rx_port"][0]["stats"] = port_stats(100, 0, runt=2)
    info["core"][0]["tx_port"][0]["stats"] = port_stats(0, 90)
    info["core"][0]["stats"] = {"drops": {"no_route": 8}}
    vf.status_info = info
    primary = ctl.primary()
    primary.status_info = {"pool": {"n_bufs": 4096, "free": 4000, "in_use": 96},
                           "ring_ports": [{"port": "ring:0", "count": 3, "size": 512, "stats": port_stats(5, 2)}],
                           "phy_ports": [], "ports": []}
    primary.on("port_mirror list", success(info={"port_mirrors": [
        {"name": "tap1", "source": "phy:0", "direction": "rx", "destination": "ring:9",
         "stats": {"packets": 7, "filtered": 1, "nombuf": 0, "full": 2, "errors": 0}}]}))
    response = ctl.http.get("/metrics")
    text = response.text
    assert "# HELP spp_port_receive_packets_total Frames received on the port." in text
    assert "# TYPE spp_port_receive_packets_total counter" in text
    got = samples(text)
    assert got[("spp_process_up", (("process", "vf:1"),))] == 1
    assert got[("spp_process_up", (("process", "primary"),))] == 1
    assert got[("spp_port_receive_packets_total", (("port", "phy:0"), ("process", "vf:1")))] == 100
    assert got[("spp_port_receive_bytes_total", (("port", "phy:0"), ("process", "vf:1")))] == 6400
    assert got[("spp_port_transmit_packets_total", (("port", "ring:0"), ("process", "vf:1")))] == 90
    assert got[("spp_port_errors_total", (("port", "phy:0"), ("process", "vf:1")))] == 1
    assert got[("spp_port_drops_total", (("port", "phy:0"), ("process", "vf:1"), ("reason", "runt")))] == 2
    assert got[("spp_component_drops_total", (("component", "cls"), ("process", "vf:1"), ("reason", "no_route"),
                                              ("type", "classifier")))] == 8
    assert got[("spp_pool_buffers", (("process", "primary"),))] == 4096
    assert got[("spp_pool_buffers_in_use", (("process", "primary"),))] == 96
    assert got[("spp_ring_frames", (("port", "ring:0"), ("process", "primary")))] == 3
    mirror = (("destination", "ring:9"), ("direction", "rx"), ("mirror", "tap1"), ("source", "phy:0"))
    assert got[("spp_port_mirror_packets_total", mirror)] == 7
    assert got[("spp_port_mirror_full_total", mirror)] == 2
    # the scrape itself shows up in spp-ctl's request counter on the next one, a write by its route template
    assert ctl.http.put("/v1/vfs/1/components/cls/ports", json={"action": "x"}).status_code == 400
    again = scrape(ctl)
    assert again[("spp_ctl_http_requests_total", (("code", "200"), ("method", "GET"), ("route", "/metrics")))] >= 1
    assert again[("spp_ctl_http_requests_total", (("code", "400"), ("method", "PUT"),
                                                  ("route", "/v1/vfs/{client_id}/components/{name}/ports")))] == 1


def test_compiled_path_flag_when_the_status_has_one(ctl: Ctl) -> None:
    vf = ctl.secondary(2, "vf")
    info = vf_status_info(2)
    info["workers"] = [{"core": 3, "native": True}]
    info["core"][0]["native"] = True
    info["state"] = "compiling"
    vf.status_info = info
    got = scrape(ctl)
    assert got[("spp_process_compiled_path", (("process", "vf:2"),))] == 1
    assert got[("spp_process_compiling", (("process", "vf:2"),))] == 1
    plain = ctl.secondary(3, "vf")
    plain.status_info = vf_status_info(3)
    got = scrape(ctl)
    assert ("spp_process_compiled_path", (("process", "vf:3"),)) not in got


def test_silent_or_failing_process_is_up_0_never_500(ctl: Ctl) -> None:
    good = ctl.secondary(1, "vf")
    good.status_info = vf_status_info(1)
    silent = ctl.secondary(2, "vf")
    silent.hang_on("status")
    failing = ctl.secondary(3, "mirror")
    failing.on("status", error_reply("busy"))
    garbage = ctl.secondary(4, "vf")
    garbage.on("status", success(info=["not", "an", "object"]))
    got = scrape(ctl)
    assert got[("spp_process_up", (("process", "vf:1"),))] == 1
    assert got[("spp_process_up", (("process", "vf:2"),))] == 0
    assert got[("spp_process_up", (("process", "mirror:3"),))] == 0
    assert got[("spp_process_up", (("process", "vf:4"),))] == 0


def test_concurrent_scrapes_share_one_status_round(ctl: Ctl) -> None:
    vf = FakeSecondary(HOST, ctl.secondary_port, 5, "vf", reply_delay=0.3)
    vf.status_info = vf_status_info(5)
    vf.connect()
    try:
        ctl.wait_listed({"type": "vf", "client-id": 5})
        results: list[int] = []

        def one() -> None:
            with httpx.Client(base_url=ctl.url, timeout=10) as http:
                results.append(http.get("/metrics").status_code)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 8
        assert vf.overlaps == 0
        assert len(vf.commands) < 8  # shared rounds, not one status per scrape
    finally:
        vf.disconnect()


def test_scrapes_while_processes_come_and_go(ctl: Ctl) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                fake = FakeSecondary(HOST, ctl.secondary_port, 10 + n % 3, "vf")
                fake.status_info = vf_status_info(10 + n % 3)
                fake.connect()
                time.sleep(0.01)
                fake.disconnect()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        deadline = time.monotonic() + 3.0
        scrapes = 0
        while time.monotonic() < deadline:
            response = ctl.http.get("/metrics")
            assert response.status_code == 200, response.text
            samples(response.text)
            scrapes += 1
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors
    assert scrapes > 5


def test_token_applies_to_metrics() -> None:
    with running_ctl(token="s3cret") as ctl:
        assert httpx.get(f"{ctl.url}/metrics").status_code == 401
        got = scrape(ctl)
        assert got[("spp_ctl_http_requests_total", (("code", "401"), ("method", "GET"), ("route", "/metrics")))] == 1


def test_request_counter_labels_stay_bounded() -> None:
    with running_ctl(token="s3cret") as ctl:
        for i in range(5):
            httpx.request(f"WEIRD{i}", f"{ctl.url}/v1/x{i}")
        got = scrape(ctl)
        series = [labels for (name, labels) in got if name == "spp_ctl_http_requests_total"]
        assert (("code", "401"), ("method", "other"), ("route", "unmatched")) in series
        assert len(series) <= 2, series


def test_promtool_accepts_the_exposition(ctl: Ctl) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian 'prometheus') not installed; the parser tests above still check the format")
    vf = ctl.secondary(1, "vf")
    vf.status_info = vf_status_info(1)
    text = ctl.http.get("/metrics").text
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_scrape_timeout_bounds_the_wait(ctl: Ctl) -> None:
    silent = ctl.secondary(4, "vf")
    silent.hang_on("status")
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": "1"}
    for _ in range(2):
        start = time.monotonic()
        response = ctl.http.get("/metrics", headers=headers)
        assert response.status_code == 200
        assert time.monotonic() - start < 1.0
        assert samples(response.text)[("spp_process_up", (("process", "vf:4"),))] == 0
    # the second scrape waited for the first one's request instead of queueing another
    assert silent.commands == ["status"]


def test_nfv_style_status_beside_results_counts_as_up(ctl: Ctl) -> None:
    nfv = ctl.secondary(1, "nfv")
    nfv.on("status", {"results": [{"result": "success"}], "client-id": 1, "status": "running",
                      "ports": ["phy:0", "ring:0"], "patches": [{"src": "phy:0", "dst": "ring:0"}]})
    assert scrape(ctl)[("spp_process_up", (("process", "nfv:1"),))] == 1
