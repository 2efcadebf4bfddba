"""Never fail silently, with real processes: launch errors, port mirrors to ports the stack lacks."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.testing import wait_for
from spp.testing.netns import unique_ifname, veth_pair


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    a, b = unique_ifname("nsa"), unique_ifname("nsb")
    with veth_pair(a, b), LocalStack() as local:
        local.start_ctl(reply_timeout=30)
        local.start_primary([a], extra=["--pool-size", "1024", "--rings", "4", "--ring-size", "64"])
        yield local


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.url}/v1", timeout=60) as client:
        yield client


def test_launch_with_a_nonsense_core_list_is_refused(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-b", stack.server, "-e", "pri; launch vf 9 -l abc"]) == 1
    err = capsys.readouterr().err
    assert "launch: -l: invalid core list 'abc'" in err
    assert main(["-b", stack.server, "-e", "pri; launch vf 9 -l 5-2"]) == 1
    assert "the range must go upwards" in capsys.readouterr().err


def test_launch_reports_the_childs_own_error(stack: LocalStack, http: httpx.Client,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-b", stack.server, "-e", "pri; launch vf 8 -s 127.0.0.1:99999"]) == 1
    err = capsys.readouterr().err
    assert "command error: launch spp_vf 8: vf 8 exited with status 2: " in err
    assert "invalid server '127.0.0.1:99999'" in err
    entry = {"type": "vf", "client-id": 8}
    listed = [p for p in http.get("/processes").json() if p.get("client-id") == 8]
    assert len(listed) == 1 and listed[0].items() >= entry.items()
    assert "invalid server" in listed[0]["error"]
    launched = [p for p in http.get("/primary/status").json()["processes"] if p["client_id"] == 8]
    assert "invalid server" in launched[-1]["error"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("phy:3", "source phy:3: the stack has no phy:3 (its phy ports: phy:0 ("),
        ("phy:0nq5", "source phy:0nq5: interface "),
    ],
)
def test_port_mirror_to_a_port_the_stack_lacks_is_refused(http: httpx.Client, source: str, message: str) -> None:
    body = {"name": "m1", "source": source, "destination": "nullpmd:0", "direction": "rx"}
    response = http.post("/port_mirrors", json=body)
    assert response.status_code == 400, response.text
    assert message in response.text
    assert http.get("/port_mirrors").json() == []
    body["source"], body["destination"] = "nullpmd:0", source
    response = http.post("/port_mirrors", json=body)
    assert response.status_code == 400
    assert "destination" in response.text


def test_port_mirror_on_an_existing_phy_is_accepted(http: httpx.Client) -> None:
    body = {"name": "ok", "source": "phy:0", "destination": "nullpmd:0", "direction": "rx"}
    assert http.post("/port_mirrors", json=body).status_code == 204
    assert http.delete("/port_mirrors/ok").status_code == 204
    wait_for(lambda: http.get("/port_mirrors").json() == [])


def test_a_port_mirror_that_cannot_attach_shows_in_the_process_status(
        stack: LocalStack, http: httpx.Client, tmp_path: Path) -> None:
    index = random.randrange(20, 64)  # PER_TYPE_SLOTS
    capture = Path(f"/tmp/spp-pcap-{index}.pcap")  # the default tx file of pcap:N
    capture.unlink(missing_ok=True)
    capture.symlink_to(tmp_path / "elsewhere")
    try:
        launch = {"proc_name": "spp_vf", "client_id": 5, "eal": {"-l": "0,1"}, "app": {"-s": stack.secondary_addr}}
        assert http.put("/primary/launch", json=launch).status_code == 204
        wait_for(lambda: {"type": "vf", "client-id": 5} in http.get("/processes").json(), timeout=300)
        assert http.post("/vfs/5/components", json={"name": "f", "core": 1, "type": "forward"}).status_code == 204
        for port, direction in (("nullpmd:0", "rx"), ("nullpmd:1", "tx")):
            body = {"action": "attach", "port": port, "dir": direction, "vlan": {}}
            assert http.put("/vfs/5/components/f/ports", json=body).status_code == 204
        for port, message in (("phy:0nq5", "receive queue"), ("phy:2", "the stack has no phy:2")):
            body = {"action": "attach", "port": port, "dir": "rx", "vlan": {}}
            response = http.put("/vfs/5/components/f/ports", json=body)
            assert response.status_code == 400 and message in response.text, response.text
        body = {"name": "cap", "source": "nullpmd:0", "destination": f"pcap:{index}", "direction": "rx"}
        assert http.post("/port_mirrors", json=body).status_code == 204
        wait_for(lambda: "error" in http.get("/vfs/5").json(), timeout=30)
        error = http.get("/vfs/5").json()["error"]
        assert error.startswith(f"port mirror cap: cannot open destination pcap:{index}: ")
        assert "symbolic link" in error
        assert not (tmp_path / "elsewhere").exists()
    finally:
        http.delete("/port_mirrors/cap")
        http.delete("/vfs/5")
        capture.unlink(missing_ok=True)


def test_a_port_whose_interface_goes_away_shows_in_the_process_status() -> None:
    a, b = unique_ifname("gna"), unique_ifname("gnb")
    with veth_pair(a, b), LocalStack() as stack:
        stack.start_ctl(reply_timeout=30)
        stack.start_primary([a], extra=["--pool-size", "1024", "--rings", "4", "--ring-size", "64"])
        with httpx.Client(base_url=f"{stack.url}/v1", timeout=60) as api:
            launch = {"proc_name": "spp_vf", "client_id": 6, "eal": {"-l": "0,1"}, "app": {"-s": stack.secondary_addr}}
            assert api.put("/primary/launch", json=launch).status_code == 204
            wait_for(lambda: {"type": "vf", "client-id": 6} in api.get("/processes").json(), timeout=300)
            assert api.post("/vfs/6/components", json={"name": "f", "core": 1, "type": "forward"}).status_code == 204
            for port, direction in (("nullpmd:0", "rx"), ("phy:0", "tx")):
                body = {"action": "attach", "port": port, "dir": direction, "vlan": {}}
                assert api.put("/vfs/6/components/f/ports", json=body).status_code == 204
            wait_for(lambda: api.get("/vfs/6").json().get("state") == "ready", timeout=300,
                     message="the data path to be compiled")
            assert "error" not in api.get("/vfs/6").json()
            subprocess.run(["ip", "link", "del", a], check=True)
            wait_for(lambda: "error" in api.get("/vfs/6").json(), timeout=30,
                     message=lambda: f"the link error in status: {api.get('/vfs/6').json()}")
            assert api.get("/vfs/6").json()["error"].startswith(f"phy:0: link gone (interface {a})")
            (entry,) = [p for p in api.get("/processes").json() if p.get("client-id") == 6]
            assert entry["error"].startswith(f"phy:0: link gone (interface {a})")  # GET /v1/processes says so too
