"""spp-vf and spp-mirror as processes: a real spp-ctl, a real data plane, driven through REST (SPEC §1, §3, §5)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from spp.ports.base import PortTable
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing import stack, wait_for
from spp.testing.packets import frame_number, numbered

HOST = "127.0.0.1"
MAC_A, MAC_B = "52:54:00:12:34:56", "52:54:00:12:34:58"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class CtlProc:
    proc: subprocess.Popen[bytes]
    sec_port: int
    api: httpx.Client

    def processes(self) -> list[dict[str, object]]:
        try:
            r = self.api.get("/v1/processes")
        except httpx.TransportError:
            return []
        return list(r.json()) if r.status_code == 200 else []


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


@contextmanager
def spp_ctl(sec_port: int | None = None, api_port: int | None = None) -> Iterator[CtlProc]:
    """spp-ctl as a subprocess on free ports, REST reachable when this yields."""
    sec_port = sec_port or free_port()
    api_port = api_port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "spp.ctl.main", "-b", HOST, "-p", str(free_port()),
                             "-s", str(sec_port), "-a", str(api_port), "--timeout", "10", "--log-level", "WARNING"])
    api = httpx.Client(base_url=f"http://{HOST}:{api_port}", timeout=20.0)
    ctl = CtlProc(proc, sec_port, api)
    try:
        wait_for(lambda: _reachable(api), timeout=30, message="spp-ctl's REST port")
        yield ctl
    finally:
        api.close()
        _stop(proc)


def _reachable(api: httpx.Client) -> bool:
    try:
        return api.get("/v1/processes").status_code == 200
    except httpx.TransportError:
        return False


def launch(kind: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    main = "main_vf" if kind == "vf" else "main_mirror"
    code = f"import sys; from spp.control.secondary import {main}; sys.exit({main}(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, env=env)


@pytest.fixture
def world() -> Iterator[tuple[Dataplane, CtlProc]]:
    with stack(n_bufs=8192) as dp, spp_ctl() as ctl:
        yield dp, ctl


def ok(api: httpx.Client, method: str, path: str, body: object = None) -> None:
    r = api.request(method, path, json=body)
    assert r.status_code == 204, (method, path, body, r.status_code, r.text)
    assert r.content == b""


def bad(api: httpx.Client, method: str, path: str, body: object = None) -> str:
    r = api.request(method, path, json=body)
    assert r.status_code == 400, (method, path, body, r.status_code, r.text)
    return r.text


ZERO_VLAN = {"operation": "none", "id": 0, "pcp": 0}


def test_vf_end_to_end(world: tuple[Dataplane, CtlProc]) -> None:
    dp, ctl = world
    api = ctl.api
    # DPDK-style invocation: EAL arguments before "--"
    vf = launch("vf", "-l", "2-6,12", "-n", "4", "--proc-type", "secondary", "--file-prefix", dp.prefix, "--",
                "--client-id", "1", "-s", f"{HOST}:{ctl.sec_port}", "--no-pin")
    try:
        wait_for(lambda: {"type": "vf", "client-id": 1} in ctl.processes(), timeout=60, message="spp-vf to connect")
        # SPEC §5 bodies, verbatim
        ok(api, "POST", "/v1/vfs/1/components", {"name": "fwd1", "core": 12, "type": "forward"})
        assert "memif:N is not supported" in bad(api, "PUT", "/v1/vfs/1/components/fwd1/ports", {
            "action": "attach", "port": "memif:1", "dir": "rx", "vlan": {"operation": "add", "id": 677, "pcp": 0}})
        assert "port vhost:0 is not attached as tx of 'fwd1'" in bad(
            api, "PUT", "/v1/vfs/1/components/fwd1/ports", {"action": "detach", "port": "vhost:0", "dir": "tx"})
        ok(api, "DELETE", "/v1/vfs/1/components/fwd1")
        assert bad(api, "POST", "/v1/vfs/1/components", {"name": "x", "core": 2, "type": "forward"}) == (
            "command error: core 2 is the master lcore and cannot run components: use one of 3, 4, 5, 6, 12")
        # the "classify ICMP" scenario of SPEC §3, over rings: ring:8 stands for phy:0, ring:9 for phy:1
        comps = [("cls", 3, "classifier"), ("fwd1", 4, "forward"), ("fwd2", 5, "forward"), ("mgr", 6, "merge")]
        for name, core, ctype in comps:
            ok(api, "POST", "/v1/vfs/1/components", {"name": name, "core": core, "type": ctype})
        for port, d, name in [("ring:8", "rx", "cls"), ("ring:0", "tx", "cls"), ("ring:1", "tx", "cls"),
                              ("ring:0", "rx", "fwd1"), ("ring:2", "tx", "fwd1"), ("ring:1", "rx", "fwd2"),
                              ("ring:3", "tx", "fwd2"), ("ring:2", "rx", "mgr"), ("ring:3", "rx", "mgr"),
                              ("ring:9", "tx", "mgr")]:
            ok(api, "PUT", f"/v1/vfs/1/components/{name}/ports",
               {"action": "attach", "port": port, "dir": d, "vlan": {}})
        ok(api, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "add", "type": "mac", "mac_address": MAC_A, "port": "ring:0"})
        ok(api, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "add", "type": "mac", "mac_address": MAC_B, "port": "ring:1"})
        ok(api, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "add", "type": "vlan", "vlan": "475", "mac_address": "default", "port": "ring:0"})
        ok(api, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "del", "type": "vlan", "vlan": 475, "mac_address": "default", "port": "ring:0"})
        assert "already exists" in bad(api, "PUT", "/v1/vfs/1/classifier_table", {
            "action": "add", "type": "mac", "mac_address": MAC_A.upper(), "port": "ring:1"})

        ports = PortTable(dp)
        src, sink = ports.get("ring:8"), ports.get("ring:9")
        n = 600
        ids = np.zeros(n, np.int32)
        assert dp.alloc(ids) == n
        for i, b in enumerate(ids):
            dp.write_frame(int(b), numbered(i, (MAC_A, MAC_B, "52:54:00:00:00:99")[i % 3]))
        sent = 0
        while sent < n:
            sent += src.tx_burst(ids[sent:], n - sent)
        got: list[int] = []
        out = np.zeros(64, np.int32)

        def collect() -> bool:
            k = sink.rx_burst(out)
            got.extend(frame_number(dp.frame(int(b))) for b in out[:k])
            if k:
                dp.free(out, k)
            return len(got) >= 400

        wait_for(collect, timeout=60, message="frames through the classify-ICMP chain")
        assert sorted(got) == [i for i in range(n) if i % 3 != 2]

        r = api.get("/v1/vfs/1")
        assert r.status_code == 200
        st = r.json()
        assert list(st) == ["client-id", "ports", "master-lcore", "components", "classifier_table", "workers",
                            "state"]
        assert st["state"] == "ready"
        assert all(w["native"] for w in st["workers"]), st["workers"]  # every worker on the compiled path
        assert st["client-id"] == 1
        assert st["ports"] == ["ring:0", "ring:1", "ring:2", "ring:3", "ring:8", "ring:9"]
        assert st["master-lcore"] == 2
        assert [c["core"] for c in st["components"]] == [3, 4, 5, 6, 12]
        cls = st["components"][0]
        assert list(cls) == ["core", "name", "type", "rx_port", "tx_port", "stats"]
        assert (cls["name"], cls["type"]) == ("cls", "classifier")
        assert cls["stats"] == {"drops": {"no_route": 200}}
        rx = cls["rx_port"][0]
        assert list(rx) == ["port", "vlan", "stats"]
        assert (rx["port"], rx["vlan"]) == ("ring:8", ZERO_VLAN)
        assert list(rx["stats"]) == ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "errors", "drops"]
        assert rx["stats"]["rx_packets"] == n
        assert [p["port"] for p in cls["tx_port"]] == ["ring:0", "ring:1"]
        assert st["components"][4] == {"core": 12, "type": "unuse"}
        assert st["classifier_table"] == [{"type": "mac", "value": MAC_A, "port": "ring:0"},
                                          {"type": "mac", "value": MAC_B, "port": "ring:1"}]

        ok(api, "DELETE", "/v1/vfs/1")
        assert vf.wait(30) == 0
        wait_for(lambda: ctl.processes() == [], timeout=10)
        assert b"Traceback" not in (vf.stderr.read() if vf.stderr else b"")
    finally:
        _stop(vf)
        for r in (0, 1, 2, 3, 8, 9):
            drain_ring(dp, r)


@pytest.mark.timeout(600)  # one cold compile: about a minute, several on a loaded 2-core host
def test_cold_start_registers_at_once_and_forwards_once_compiled(world: tuple[Dataplane, CtlProc],
                                                                 tmp_path: Path) -> None:
    """An empty compile cache: spp-vf registers and takes commands while its data path compiles
    (status ``compiling``); frames given meanwhile wait in their ring and go through once it is ready."""
    dp, ctl = world
    api = ctl.api
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    vf = launch("vf", "--client-id", "4", "-s", f"{HOST}:{ctl.sec_port}", "-l", "0,1", "--file-prefix", dp.prefix,
                "--no-pin", env=env)
    try:
        wait_for(lambda: {"type": "vf", "client-id": 4} in ctl.processes(), timeout=60, message="spp-vf to connect")
        assert api.get("/v1/vfs/4").json()["state"] == "compiling"  # a cold compile takes far longer than this
        ok(api, "POST", "/v1/vfs/4/components", {"name": "fwd", "core": 1, "type": "forward"})
        for port, d in (("ring:0", "rx"), ("ring:1", "tx")):
            ok(api, "PUT", "/v1/vfs/4/components/fwd/ports", {"action": "attach", "port": port, "dir": d})
        st = api.get("/v1/vfs/4").json()
        assert st["components"][0]["name"] == "fwd" and st["ports"] == ["ring:0", "ring:1"]
        ports = PortTable(dp)
        src, sink = ports.get("ring:0"), ports.get("ring:1")
        n = 100
        ids = np.zeros(n, np.int32)
        assert dp.alloc(ids) == n
        for i, b in enumerate(ids):
            dp.write_frame(int(b), numbered(i, MAC_A))
        assert src.tx_burst(ids, n) == n
        wait_for(lambda: api.get("/v1/vfs/4").json()["state"] == "ready", timeout=540, interval=0.5,
                 message="the data path to be compiled")
        got: list[int] = []
        out = np.zeros(64, np.int32)

        def collect() -> bool:
            k = sink.rx_burst(out)
            got.extend(frame_number(dp.frame(int(b))) for b in out[:k])
            if k:
                dp.free(out, k)
            return len(got) >= n

        wait_for(collect, timeout=30, message="the frames given while compiling")
        assert got == list(range(n))
        ok(api, "DELETE", "/v1/vfs/4")
        assert vf.wait(30) == 0
        assert b"Traceback" not in (vf.stderr.read() if vf.stderr else b"")
    finally:
        _stop(vf)
        for r in (0, 1):
            drain_ring(dp, r)


def test_reconnect_keeps_state_and_sigterm_exits(dp: Dataplane) -> None:
    sec, api_port = free_port(), free_port()
    vf = None
    try:
        with spp_ctl(sec, api_port) as ctl:
            vf = launch("vf", "--client-id", "2", "-s", f"{HOST}:{sec}", "-l", "0,1", "--file-prefix", dp.prefix,
                        "--no-pin")
            wait_for(lambda: {"type": "vf", "client-id": 2} in ctl.processes(), timeout=60)
            ok(ctl.api, "POST", "/v1/vfs/2/components", {"name": "f", "core": 1, "type": "forward"})
        with spp_ctl(sec, api_port) as ctl:  # spp-ctl restarted: the process reconnects with its state
            wait_for(lambda: {"type": "vf", "client-id": 2} in ctl.processes(), timeout=30)
            st = ctl.api.get("/v1/vfs/2").json()
            assert st["components"] == [{"core": 1, "name": "f", "type": "forward", "rx_port": [], "tx_port": [],
                                         "stats": {"drops": {}}}]
            assert st["master-lcore"] == 0
            vf.send_signal(signal.SIGTERM)
            assert vf.wait(30) == 0
            err = vf.stderr.read() if vf.stderr else b""
            assert b"SIGTERM received" in err
            assert b"Traceback" not in err
    finally:
        if vf is not None:
            _stop(vf)


def test_mirror_process(world: tuple[Dataplane, CtlProc]) -> None:
    dp, ctl = world
    mr = launch("mirror", "--client-id", "1", "-s", f"{HOST}:{ctl.sec_port}", "-l", "1,2",
                "--file-prefix", dp.prefix, "--copy", "deep", "--no-pin")
    try:
        wait_for(lambda: {"type": "mirror", "client-id": 1} in ctl.processes(), timeout=60)
        api = ctl.api
        ok(api, "POST", "/v1/mirrors/1/components", {"name": "mir", "core": 2, "type": "mirror"})
        for port, d in (("ring:0", "rx"), ("ring:4", "tx"), ("ring:5", "tx")):
            ok(api, "PUT", "/v1/mirrors/1/components/mir/ports", {"action": "attach", "port": port, "dir": d})
        # workers start once the data path is compiled (a cold cache: a minute or more)
        st = wait_for(lambda: (s := api.get("/v1/mirrors/1").json())["state"] == "ready" and s, timeout=300)
        assert list(st) == ["client-id", "ports", "master-lcore", "components", "workers", "state"]
        assert st["ports"] == ["ring:0", "ring:4", "ring:5"]
        assert st["workers"] == [{"core": 2, "native": True, "python_why": None}]  # deep mirror: compiled
        (mir,) = st["components"]
        assert (mir["core"], mir["name"], mir["type"]) == (2, "mir", "mirror")
        assert [p["port"] for p in mir["tx_port"]] == ["ring:4", "ring:5"]
        assert mir["rx_port"][0]["vlan"] == ZERO_VLAN
        ok(api, "DELETE", "/v1/mirrors/1")
        assert mr.wait(30) == 0
    finally:
        _stop(mr)


def test_missing_primary_is_a_clear_error() -> None:
    proc = launch("vf", "--client-id", "1", "-s", f"{HOST}:{free_port()}", "--file-prefix", f"none{os.getpid()}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"start spp-primary with the same --file-prefix first" in err
    assert b"Traceback" not in err


def test_bad_arguments() -> None:
    proc = launch("vf", "--client-id", "x", "-s", "nowhere")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"invalid client id 'x'" in err or b"invalid server 'nowhere'" in err


def test_wire_protocol(dp: Dataplane) -> None:
    """The raw TCP side: handshake, commands without terminator (a trailing newline or NUL tolerated),
    one JSON reply per command ending in a newline, reconnect after a drop, exit."""
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen(1)
        server.settimeout(60)
        vf = launch("vf", "--client-id", "3", "-s", f"{HOST}:{server.getsockname()[1]}", "-l", "0,1",
                    "--file-prefix", dp.prefix, "--no-pin")
        try:
            def ask(conn: socket.socket, command: bytes) -> dict[str, object]:
                conn.sendall(command)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    assert chunk, "connection closed"
                    data += chunk
                assert data.count(b"\n") == 1
                reply: dict[str, object] = json.loads(data)
                return reply

            conn, _ = server.accept()
            conn.settimeout(30)
            with conn:
                hello = ask(conn, b"_get_client_id")
                assert {k: hello[k] for k in ("results", "client_id", "process_type")} == {
                    "results": [{"result": "success"}], "client_id": 3, "process_type": "vf"}
                assert hello["pid"] == vf.pid and str(hello["instance"]).startswith(f"{vf.pid}-")
                assert ask(conn, b"component start f 1 forward\n") == {"results": [{"result": "success"}]}
                reply = ask(conn, b"status\0")
                assert reply["results"] == [{"result": "success"}]
                assert ask(conn, b"component start g 1 fwd") == {"results": [{"result": "error", "error_details": {
                    "message": "invalid component type 'fwd': must be 'forward', 'merge' or 'classifier'"}}]}
            conn, _ = server.accept()  # dropped: it comes back, with its state
            conn.settimeout(30)
            with conn:
                assert ask(conn, b"_get_client_id")["client_id"] == 3
                info = ask(conn, b"status")["info"]
                assert isinstance(info, dict)
                assert [c["name"] for c in info["core"]] == ["f"]
                assert ask(conn, b"exit") == {"results": [{"result": "success"}]}
                assert vf.wait(30) == 0
                assert conn.recv(4096) == b""
        finally:
            _stop(vf)


def test_argument_forms() -> None:
    from spp.control.secondary import parse_args

    o = parse_args("vf", ["-l", "0,1,2", "-n", "4", "--proc-type", "secondary", "--file-prefix=x1", "--lcores",
                          "(0-3)@0", "--", "--client-id", "1", "-s", "127.0.0.1:6666"])
    assert (o.cores, o.file_prefix, o.client_id, o.host, o.port) == ([0, 1, 2], "x1", 1, "127.0.0.1", 6666)
    o = parse_args("mirror", ["--client-id", "2", "-s", "h:7", "-l", "2-4", "--copy", "deep", "--no-pin"])
    assert (o.cores, o.file_prefix, o.copy, o.pin, o.process) == ([2, 3, 4], "spp", "deep", False, "mirror")
    o = parse_args("vf", ["-l", "0-1", "--", "--client-id", "3", "-l", "5,6", "--vhost-client"])
    assert o.cores == [5, 6]  # the application's -l wins over the EAL's
    assert o.vhost_client and not parse_args("vf", ["--client-id", "1"]).vhost_client
