"""The real thing: spp-ctl, spp-primary and a spp-vf the primary launches, driven by the CLI and `spp up`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.runtime.shm import segment_path
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


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["--pool-size", "2048", "--rings", "8", "--ring-size", "256"])
        yield local
    assert not segment_path(local.prefix, "dataplane").exists()


def test_up_status_topo_down(stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(TOPOLOGY)
    assert main(["up", str(topo), "-b", stack.server, "-s", stack.secondary_addr]) == 0
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        status = http.get("/v1/primary/status").json()
        assert [(p["proc_name"], p["client_id"], p["alive"]) for p in status["processes"]] == [("vf", 1, True)]
        # frames flow (the first run may compile the data path) and the port mirror copies them
        wait_for(lambda: http.get("/v1/port_mirrors").json()[0]["stats"]["packets"] > 0, timeout=60)
        capsys.readouterr()
        assert main(["-b", stack.server, "-e", "vf 1; status", "-e", "pri; status", "-e", "pri; port_mirror list",
                     "-e", "topo", "-e", f"topo {tmp_path / 't.svg'}"]) == 0
        out = capsys.readouterr().out
        assert "gen (forward, core 1): nullpmd:0 → ring:0" in out
        assert "port mirror tap1: nullpmd:1 (tx) ⇒ nullpmd:2" in out
        assert "stroke-dasharray" in (tmp_path / "t.svg").read_text()
        assert main(["down", "-b", stack.server]) == 0
        wait_for(lambda: http.get("/v1/processes").json() == [{"type": "primary"}], timeout=20)
        assert http.get("/v1/port_mirrors").json() == []
        # what the vf left queued goes back to the pool when the ring is deleted
        for ring in http.get("/v1/primary/status").json()["ring_ports"]:
            assert http.put("/v1/primary/ports", json={"action": "del", "port": ring["port"]}).status_code == 204
        wait_for(lambda: not http.get("/v1/primary/status").json()["processes"][0]["alive"], timeout=20)
        final = http.get("/v1/primary/status").json()
        assert final["pool"]["in_use"] == 0
        assert final["processes"][0]["returncode"] == 0
