"""spp-ctl under stress: stuck processes, concurrent clients, tokens."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from ctl_helpers import Ctl, running_ctl

from spp.testing.fake_secondary import FakePrimary, success, wait_until

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def ctl() -> Iterator[Ctl]:
    """An spp-ctl with a short timeout, shared by this module."""
    with running_ctl(timeout=TIMEOUT) as running:
        yield running


def test_stuck_process_gets_503_without_blocking_others(ctl: Ctl) -> None:
    stuck = ctl.secondary(1, "vf")
    healthy = ctl.secondary(2, "vf")
    stuck.hang_on("status")
    results: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        with httpx.Client(base_url=ctl.url, timeout=10.0) as client:
            results["stuck"] = client.get("/v1/vfs/1")

    thread = threading.Thread(target=slow_request)
    started = time.monotonic()
    thread.start()
    stuck.wait_for_commands(1)
    # While vf 1 is stuck, vf 2 (and spp-ctl itself) answer at once.
    before = time.monotonic()
    assert ctl.http.get("/v1/vfs/2").status_code == 200
    assert ctl.http.delete("/v1/vfs/2/components/x").status_code == 204
    assert time.monotonic() - before < TIMEOUT / 2
    assert thread.is_alive()
    thread.join(5.0)
    elapsed = time.monotonic() - started
    response = results["stuck"]
    assert response.status_code == 503
    assert "vf 1" in response.text
    assert "no reply within" in response.text
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0
    # The connection to the stuck process is dropped; it may come back.
    stuck.wait_disconnected()
    ctl.wait_listed({"type": "vf", "client-id": 1}, present=False)
    assert healthy.commands == ["status", "component stop x"]
    stuck.reset()
    stuck.connect()
    ctl.wait_listed({"type": "vf", "client-id": 1})
    assert ctl.http.get("/v1/vfs/1").status_code == 200


def test_requests_queued_behind_a_stuck_one_fail_fast(ctl: Ctl) -> None:
    stuck = ctl.secondary(1, "mirror")
    stuck.hang_on("component stop")

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=ctl.url, timeout=10.0) as client:
            return await asyncio.gather(*(client.delete(f"/v1/mirrors/1/components/c{n}") for n in range(5)))

    started = time.monotonic()
    responses = asyncio.run(many())
    assert time.monotonic() - started < TIMEOUT + 1.0
    codes = sorted(response.status_code for response in responses)
    assert codes == [503] * 5
    assert len(stuck.commands) == 1  # the others never reached the dropped connection


def test_late_reply_is_never_taken_for_the_next_answer(ctl: Ctl) -> None:
    slow = ctl.secondary(1, "vf")

    def late(_command: str) -> dict[str, object]:
        time.sleep(TIMEOUT * 1.5)
        return success(info={"client-id": 99})

    slow.on("status", late)
    assert ctl.http.get("/v1/vfs/1").status_code == 503
    slow.wait_disconnected()
    slow.reset()
    slow.connect()
    ctl.wait_listed({"type": "vf", "client-id": 1})
    assert ctl.http.get("/v1/vfs/1").json()["client-id"] == 1


def test_concurrent_clients_never_interleave_commands_to_one_process(ctl: Ctl) -> None:
    vf = ctl.secondary(1, "vf", reply_delay=0.002, split_replies=True)
    mirror = ctl.secondary(2, "mirror", reply_delay=0.002)
    count = 40

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=ctl.url, timeout=10.0) as client:
            requests = []
            for n in range(count):
                requests.append(
                    client.put(
                        "/v1/vfs/1/components/fwd1/ports",
                        json={"action": "attach", "port": f"ring:{n}", "dir": "rx", "vlan": {}},
                    )
                )
                requests.append(client.get("/v1/vfs/1"))
                requests.append(client.delete(f"/v1/mirrors/2/components/m{n}"))
            return await asyncio.gather(*requests)

    responses = asyncio.run(many())
    assert sorted({r.status_code for r in responses}) == [200, 204]
    assert vf.overlaps == 0
    assert mirror.overlaps == 0
    assert sorted(vf.commands) == sorted([f"port add ring:{n} rx fwd1" for n in range(count)] + ["status"] * count)
    assert sorted(mirror.commands) == sorted(f"component stop m{n}" for n in range(count))


def test_fake_detects_overlapping_commands() -> None:
    """The overlap detector itself works: two commands written back to back are caught."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        fake = FakePrimary("127.0.0.1", server.getsockname()[1], reply_delay=0.05)
        fake.connect()
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"status")
            fake.wait_for_commands(1)
            conn.sendall(b"status")
            wait_until(lambda: fake.overlaps >= 1)
        fake.disconnect()


def test_token_is_required_when_configured() -> None:
    with running_ctl(token="s3cret") as ctl:
        with httpx.Client(base_url=ctl.url, timeout=5.0) as anonymous:
            for path in ["/v1/processes", "/v1/vfs/1", "/metrics", "/v1/nothing"]:
                response = anonymous.get(path)
                assert response.status_code == 401
                assert response.headers["www-authenticate"] == "Bearer"
                assert "token" in response.text
            # the API's description and its pages tell nothing about the stack: readable without the token
            for path in ["/openapi.json", "/docs", "/redoc"]:
                assert anonymous.get(path).status_code == 200
            wrong = anonymous.get("/v1/processes", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            put = anonymous.put("/v1/primary/ports", json={"action": "add", "port": "ring:0"})
            assert put.status_code == 401
        vf = ctl.secondary(1, "vf")  # ctl.http carries the right token
        assert ctl.http.get("/v1/vfs/1").status_code == 200
        assert vf.commands == ["status"]
