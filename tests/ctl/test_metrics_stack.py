"""``GET /metrics`` on a real stack (spp-ctl, spp-primary, a launched spp-vf) with traffic flowing.

The exposition parses with prometheus_client's parser, counters move while frames
flow, and once the traffic stops every figure equals what the REST status routes say.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.testing import wait_for

TOPOLOGY = """
processes:
  - kind: vf
    client_id: 1
    cores: "0,1"
    components:
      - {name: gen, type: forward, core: 1, rx: [nullpmd:0], tx: [ring:0]}
      - {name: out, type: forward, core: 1, rx: [ring:0], tx: [nullpmd:1]}
port_mirrors:
  - {name: tap1, source: nullpmd:1, direction: tx, destination: nullpmd:2}
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def port_figures(samples: Samples, process: str) -> dict[str, dict[str, Any]]:
    """``{port: {rx_packets, ..., drops: {...}}}`` of ``process`` rebuilt from the samples."""
    keys = {"spp_port_receive_packets_total": "rx_packets", "spp_port_receive_bytes_total": "rx_bytes",
            "spp_port_transmit_packets_total": "tx_packets", "spp_port_transmit_bytes_total": "tx_bytes",
            "spp_port_errors_total": "errors"}
    ports: dict[str, dict[str, Any]] = {}
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if lab.get("process") != process or "port" not in lab:
            continue
        entry = ports.setdefault(lab["port"], {"drops": {}})
        if name in keys:
            entry[keys[name]] = int(value)
        elif name == "spp_port_drops_total":
            entry["drops"][lab["reason"]] = int(value)
    return ports


def rest_ports(vf_status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ports: dict[str, dict[str, Any]] = {}
    for comp in vf_status["components"]:
        for entry in (*comp.get("rx_port", []), *comp.get("tx_port", [])):
            ports[entry["port"]] = entry["stats"]
    return ports


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["--pool-size", "2048", "--rings", "8", "--ring-size", "256"])
        yield local


@pytest.mark.timeout(600)
def test_metrics_follow_a_real_stack(stack: LocalStack, tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(TOPOLOGY)
    assert main(["up", str(topo), "-b", stack.server, "-s", stack.secondary_addr]) == 0
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        # a cold numba cache compiles the data path first (minutes on a busy 2-core machine)
        wait_for(lambda: http.get("/v1/port_mirrors").json()[0]["stats"]["packets"] > 0, timeout=400, interval=0.2)
        first = scrape(http)
        assert first[("spp_process_up", (("process", "vf:1"),))] == 1
        assert first[("spp_process_up", (("process", "primary"),))] == 1
        assert first[("spp_pool_buffers", (("process", "primary"),))] == 2048
        rx = ("spp_port_receive_packets_total", (("port", "nullpmd:0"), ("process", "vf:1")))
        assert first[rx] > 0
        wait_for(lambda: scrape(http)[rx] > first[rx], timeout=10, message="rx counter to move")
        # stop the traffic, let the ring drain, then the figures equal REST's
        assert http.delete("/v1/vfs/1/components/gen").status_code == 204

        def settled() -> bool:
            a = http.get("/v1/vfs/1").json()
            b = http.get("/v1/vfs/1").json()
            return bool(a == b)

        wait_for(settled, timeout=20, message="counters to settle")
        samples = scrape(http)
        vf = http.get("/v1/vfs/1").json()
        primary = http.get("/v1/primary/status").json()
        mirrors = http.get("/v1/port_mirrors").json()
        assert port_figures(samples, "vf:1") == rest_ports(vf)
        for ring in primary["ring_ports"]:
            assert port_figures(samples, "primary")[ring["port"]] == ring["stats"]
        assert samples[("spp_pool_buffers_in_use", (("process", "primary"),))] == primary["pool"]["in_use"]
        labels = (("destination", "nullpmd:2"), ("direction", "tx"), ("mirror", "tap1"), ("source", "nullpmd:1"))
        for key in ("packets", "filtered", "nombuf", "full", "errors"):
            assert samples[(f"spp_port_mirror_{key}_total", labels)] == mirrors[0]["stats"][key]
        for comp in vf["components"]:
            for reason, count in comp["stats"]["drops"].items():
                assert samples[("spp_component_drops_total", (("component", comp["name"]), ("process", "vf:1"),
                                                              ("reason", reason), ("type", comp["type"])))] == count
        assert main(["down", "-b", stack.server]) == 0
        wait_for(lambda: http.get("/v1/processes").json() == [{"type": "primary"}], timeout=20)
        after = scrape(http)
        assert ("spp_process_up", (("process", "vf:1"),)) not in after
