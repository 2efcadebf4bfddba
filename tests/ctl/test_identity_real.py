"""One process per identity, with real processes: spp-ctl refuses a second holder of a live id."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest

from spp.cli.stack import LocalStack
from spp.runtime.shm import segment_path
from spp.testing import unique_prefix, wait_for


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl(reply_timeout=30)
        local.start_primary(extra=["--pool-size", "1024", "--rings", "4", "--ring-size", "64"])
        yield local


def _secondary(stack: LocalStack, name: str, kind: str, client_id: int) -> list[str]:
    code = f"import sys; from spp.control.secondary import run; sys.exit(run({kind!r}))"
    return [sys.executable, "-c", code, "--client-id", str(client_id), "-s", stack.secondary_addr,
            "--file-prefix", stack.prefix, "-l", "0", "--no-pin"]


def test_second_holder_of_a_live_id_exits_with_the_reason(stack: LocalStack) -> None:
    original = stack.spawn("vf1", _secondary(stack, "vf1", "vf", 1))
    stack.wait_process({"type": "vf", "client-id": 1}, 300, check="vf1")  # a cold start compiles
    nfv = [sys.executable, "-m", "spp.control.nfv", "--client-id", "1", "-s", stack.secondary_addr,
           "--file-prefix", stack.prefix, "-l", "0", "--no-pin"]
    for name, argv in (("vf1-again", _secondary(stack, "vf1-again", "vf", 1)),
                       ("mirror1", _secondary(stack, "mirror1", "mirror", 1)), ("nfv1", nfv)):
        newcomer = stack.spawn(name, argv)
        assert newcomer.wait(300) == 1, stack.log_tail(name)
        log = stack.log_tail(name)
        assert "spp-ctl refused this process: client id 1 is already used by vf 1 (pid" in log, log
    assert original.poll() is None
    assert "refused" not in stack.log_tail("vf1")
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        assert http.get("/v1/processes").json() == [{"type": "primary"}, {"type": "vf", "client-id": 1}]
        assert http.get("/v1/vfs/1").status_code == 200
        assert http.delete("/v1/vfs/1").status_code == 204  # reaches the original
    assert original.wait(30) == 0


def test_second_primary_is_refused_and_removes_its_stack(stack: LocalStack) -> None:
    prefix = unique_prefix("dup")
    second = stack.spawn("primary2", [sys.executable, "-m", "spp.control.primary", "-s",
                                      f"{stack.host}:{stack.pri_port}", "--file-prefix", prefix,
                                      "--pool-size", "1024", "--rings", "4", "--ring-size", "64"])
    assert second.wait(60) == 1
    assert "spp-ctl refused this primary: a primary is already connected" in stack.log_tail("primary2")
    assert not segment_path(prefix, "dataplane").exists()
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        assert http.get("/v1/primary/status").json()["file_prefix"] == stack.prefix
    wait_for(lambda: stack.procs["spp-primary"].poll() is None)


def test_the_same_processes_are_welcome_after_a_spp_ctl_restart(stack: LocalStack) -> None:
    vf = stack.spawn("vf2", _secondary(stack, "vf2", "vf", 2))
    stack.wait_process({"type": "vf", "client-id": 2}, 300, check="vf2")
    assert stack.stop_one("spp-ctl") == 0
    stack.start_ctl(reply_timeout=30)
    stack.wait_process({"type": "primary"}, 30, check="spp-primary")
    stack.wait_process({"type": "vf", "client-id": 2}, 30, check="vf2")
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        assert http.get("/v1/vfs/2").status_code == 200
        assert http.delete("/v1/vfs/2").status_code == 204
    assert vf.wait(30) == 0
    assert "refused" not in stack.log_tail("vf2", 200) + stack.log_tail("spp-primary", 200)
