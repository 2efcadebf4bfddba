"""spp-nfv end to end: spp-ctl, spp-primary over two veth pairs and two spp-nfv processes, driven with SPP's
REST bodies and SPP's CLI lines (recipes/usecases/spp_nfv/dual_with_ring/uni_directional_l2fwd, then a
loop back); frames compared byte for byte."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.testing import wait_for
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, veth_in_netns
from spp.testing.packets import numbered

pytestmark = pytest.mark.root


@pytest.fixture
def world() -> Iterator[tuple[LocalStack, Veth, Veth]]:
    with veth_in_netns("nfa") as v0, veth_in_netns("nfb") as v1, LocalStack() as local:
        local.start_ctl()
        local.start_primary([v0.local, v1.local], extra=["--pool-size", "4096", "--rings", "8"])
        for cid in (1, 2):
            local.spawn(f"spp-nfv-{cid}", [sys.executable, "-m", "spp.control.nfv", "-n", str(cid), "-s",
                                           local.secondary_addr, "-l", "0,1", "--file-prefix", local.prefix,
                                           "--no-pin"])
            local.wait_process({"type": "nfv", "client-id": cid}, 120, check=f"spp-nfv-{cid}")
        yield local, v0, v1


def test_recipe_phy_ring_phy_then_loopback(world: tuple[LocalStack, Veth, Veth],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    local, v0, v1 = world
    http = httpx.Client(base_url=local.url + "/v1", timeout=120)
    send0 = ns_packet_socket(v0.ns, v0.peer)
    recv1 = ns_packet_socket(v1.ns, v1.peer)
    try:
        assert {"type": "nfv", "client-id": 1} in http.get("/processes").json()
        # nfv 1 with SPP's REST bodies
        assert http.put("/nfvs/1/ports", json={"action": "add", "port": "ring:0"}).status_code == 204
        assert http.put("/nfvs/1/patches", json={"src": "phy:0", "dst": "ring:0"}).status_code == 204
        assert http.put("/nfvs/1/forward", json={"action": "start"}).status_code == 204
        # nfv 2 with SPP's CLI lines
        assert main(["-b", local.server, "-e", "nfv 2; add ring:0", "-e", "nfv 2; patch ring:0 phy:1",
                     "-e", "nfv 2; forward", "-e", "nfv 2; status", "-e", "topo"]) == 0
        out = capsys.readouterr().out
        assert "nfv 2: running" in out and "patch ring:0 → phy:1" in out
        assert http.get("/nfvs/1").json() == {"client-id": 1, "status": "running", "master-lcore": 0,
                                              "lcores": [0, 1], "ports": ["phy:0", "phy:1", "ring:0"],
                                              "patches": [{"src": "phy:0", "dst": "ring:0"}]}
        frames = [numbered(i, size=60 + 7 * i) for i in range(100)]
        for f in frames:
            send0.send(f)
        assert recv_frames(recv1, 100, timeout=60) == frames

        # bad input: one clear error, nothing changed
        before = http.get("/nfvs/1").json()
        r = http.put("/nfvs/1/patches", json={"src": "ring:7", "dst": "phy:1"})
        assert (r.status_code, r.text) == (400, "command error: patch source ring:7 is not a port of spp-nfv 1: "
                                                 "add ring:7 first")
        r = http.put("/nfvs/1/patches", json={"src": "ring:0\n", "dst": "phy:1"})
        assert r.status_code == 400 and "field 'src'" in r.text and "must be TYPE:N" in r.text
        r = http.put("/nfvs/1/ports", json={"action": "plug", "port": "ring:1"})
        assert r.status_code == 400 and "field 'action'" in r.text
        r = http.put("/nfvs/1/forward", json={})
        assert (r.status_code, r.text) == (400, "invalid body: field 'action': required")
        assert http.get("/nfvs/9").status_code == 404
        assert http.get("/nfvs/1").json() == before
        assert main(["-b", local.server, "-e", "nfv 1; patch phy:0"]) == 1
        assert "wrong number of arguments for 'patch'" in capsys.readouterr().err

        # loop back (recipes/usecases/spp_nfv/single/loopback): frames come back out of phy:0
        assert main(["-b", local.server, "-e", "nfv 2; stop", "-e", "nfv 2; patch reset", "-e", "nfv 1; stop",
                     "-e", "nfv 1; patch reset", "-e", "nfv 1; patch phy:0 phy:0", "-e", "nfv 1; forward"]) == 0
        recv0 = ns_packet_socket(v0.ns, v0.peer)
        try:
            for f in frames[:50]:
                send0.send(f)
            assert recv_frames(recv0, 50, timeout=60) == frames[:50]
        finally:
            recv0.close()
        # exit through REST: spp-ctl forgets it
        assert http.delete("/nfvs/2").status_code == 204
        wait_for(lambda: {"type": "nfv", "client-id": 2} not in http.get("/processes").json(), timeout=20)
        assert http.delete("/nfvs/1").status_code == 204
    finally:
        send0.close()
        recv1.close()
        http.close()


def test_pcap_launched_by_the_primary_driven_by_rest_and_cli(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``pri; launch pcap`` with SPP's options, ``pcap 3; start|stop|status`` and SPP's pcap REST; tcpdump -r."""
    from scapy.utils import rdpcap

    with veth_in_netns("pcb") as v0, LocalStack() as local:
        local.start_ctl()
        py = sys.executable
        local.start_primary([v0.local], extra=["-l", "0,1", "--program", f"pcap={py} -m spp.control.pcap",
                                               "--program", f"nfv={py} -m spp.control.nfv"])
        http = httpx.Client(base_url=local.url + "/v1", timeout=120)
        sock = ns_packet_socket(v0.ns, v0.peer)
        try:
            assert main(["-b", local.server, "-s", local.secondary_addr, "-e",
                         f"pri; launch pcap 3 -l 0,1,2 -- -c phy:0 --out-dir {tmp_path} --fsize 100000"]) == 0
            local.wait_process({"type": "pcap", "client-id": 3}, 120)
            assert http.put("/pcaps/3/capture", json={"action": "start"}).status_code == 204
            r = http.put("/pcaps/3/capture", json={"action": "start"})
            assert (r.status_code, r.text) == (400, "command error: capture of phy:0 is already running: stop it first")
            r = http.put("/pcaps/3/capture", json={"action": "go"})
            assert r.status_code == 400 and "field 'action'" in r.text
            status = http.get("/pcaps/3").json()
            assert status["client-id"] == 3 and status["status"] == "running"
            assert status["core"][0] == {"core": 1, "role": "receive", "rx_port": [{"port": "phy:0"}]}
            assert status["core"][1]["core"] == 2 and status["core"][1]["role"] == "write"
            frames = [numbered(i, size=64 + 5 * i) for i in range(80)]
            probe = numbered(10**6)

            def probed() -> bool:  # a new veth's carrier comes up late: frames sent before it are lost
                sock.send(probe)
                return bool(http.get("/pcaps/3").json()["captured"])

            wait_for(probed, timeout=30, interval=0.05)
            for f in frames:
                sock.send(f)
            def all_written() -> bool:
                try:  # the file grows while we read it: a block may be half written
                    got = rdpcap(http.get("/pcaps/3").json()["core"][1]["filename"])
                except Exception:
                    return False
                return [bytes(p) for p in got if bytes(p) != probe] == frames

            wait_for(all_written, timeout=60, interval=0.1)
            assert main(["-b", local.server, "-e", "pcap 3; stop", "-e", "pcap 3; status"]) == 0
            assert "pcap 3: idle" in capsys.readouterr().out
            path = Path(http.get("/pcaps/3").json()["core"][1]["filename"])
            assert [bytes(p) for p in rdpcap(str(path)) if bytes(p) != probe] == frames
            out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True)
            assert len(out.stdout.splitlines()) == len(rdpcap(str(path)))
            # the primary launches spp-nfv the same way (SPP's nfv options: -n is the client id)
            assert main(["-b", local.server, "-s", local.secondary_addr, "-e",
                         f"pri; launch nfv 4 -l 0,1 -- -n 4 -s {local.secondary_addr}"]) == 0
            local.wait_process({"type": "nfv", "client-id": 4}, 120)
            assert http.get("/nfvs/4").json()["status"] == "idling"
            assert http.delete("/nfvs/4").status_code == 204
            assert http.delete("/pcaps/3").status_code == 204
            wait_for(lambda: {"type": "pcap", "client-id": 3} not in http.get("/processes").json(), timeout=20)
            assert http.get("/pcaps/3").status_code == 404
        finally:
            sock.close()
            http.close()


def test_primary_forwarder_with_spps_rest_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """``pri; add ring:0`` ... ``pri; forward`` through spp-ctl to a real spp-primary; frames cross its forwarder."""
    from nfv_helpers import put, take

    from spp.ports.base import open_port
    from spp.runtime.dataplane import Dataplane

    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["-l", "0,1", "--rings", "4"])
        http = httpx.Client(base_url=local.url + "/v1", timeout=120)
        dp = Dataplane.attach(local.prefix)
        try:
            assert main(["-b", local.server, "-e", "pri; add ring:0", "-e", "pri; add ring:1",
                         "-e", "pri; patch ring:0 ring:1"]) == 0
            assert http.put("/primary/forward", json={"action": "start"}).status_code == 204
            frames = [numbered(i, size=64 + i) for i in range(64)]
            put(dp, open_port(dp, "ring:0"), frames)
            assert take(dp, open_port(dp, "ring:1"), 64) == frames
            assert main(["-b", local.server, "-e", "pri; status"]) == 0
            assert "forwarder (running, core 1): ring:0 → ring:1" in capsys.readouterr().out
            r = http.put("/primary/patches", json={"src": "vhost:0", "dst": "ring:1"})
            assert (r.status_code, r.text) == (400, "command error: patch source vhost:0 is not a port of "
                                                     "spp-primary: add vhost:0 first")
            r = http.put("/primary/ports", json={"action": "del", "port": "ring:1"})
            assert (r.status_code, r.text) == (400, "command error: ring:1 is patched (ring:0 -> ring:1): "
                                                     "patch reset first")
            assert http.put("/primary/forward", json={"action": "stop"}).status_code == 204
            assert http.delete("/primary/patches").status_code == 204
            fwd = http.get("/primary/status").json()["forwarder"]
            assert fwd == {"status": "idling", "ports": ["ring:0", "ring:1"], "patches": [], "core": 1}
            for ring in ("ring:0", "ring:1"):
                assert http.put("/primary/ports", json={"action": "del", "port": ring}).status_code == 204
        finally:
            dp.close()
            http.close()


def test_spp_up_and_down_with_an_nfv(tmp_path: Path) -> None:
    from nfv_helpers import put, take

    from spp.ports.base import open_port
    from spp.runtime.dataplane import Dataplane

    topo = tmp_path / "nfv.yaml"
    topo.write_text("processes:\n  - kind: nfv\n    client_id: 5\n    cores: \"0,1\"\n    ports: [ring:0, ring:1]\n"
                    "    patches: [{src: ring:0, dst: ring:1}]\n")
    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["--rings", "4", "--program", f"nfv={sys.executable} -m spp.control.nfv"])
        dp = Dataplane.attach(local.prefix)
        http = httpx.Client(base_url=local.url + "/v1", timeout=120)
        try:
            assert main(["up", str(topo), "-b", local.server, "-s", local.secondary_addr]) == 0
            assert http.get("/nfvs/5").json()["patches"] == [{"src": "ring:0", "dst": "ring:1"}]
            frames = [numbered(i) for i in range(32)]
            put(dp, open_port(dp, "ring:0"), frames)
            assert take(dp, open_port(dp, "ring:1"), 32) == frames
            assert main(["down", "-b", local.server]) == 0
            wait_for(lambda: http.get("/processes").json() == [{"type": "primary"}], timeout=30)
        finally:
            http.close()
            dp.close()
