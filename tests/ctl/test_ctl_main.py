"""The ``spp-ctl`` command: a real process, its arguments, its exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import spp
from spp.testing.fake_secondary import FakeSecondary, wait_until

HOST = "127.0.0.1"


def _env() -> dict[str, str]:
    src = str(Path(spp.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": src if not path else f"{src}{os.pathsep}{path}"}


def _free_ports(count: int) -> list[int]:
    socks = [socket.create_server((HOST, 0)) for _ in range(count)]
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def spp_ctl() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    ports = _free_ports(3)
    args = ["-b", HOST, "-p", str(ports[0]), "-s", str(ports[1]), "-a", str(ports[2]), "--timeout", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "spp.ctl", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, ports
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def test_spp_ctl_serves_and_stops_on_sigterm(spp_ctl: tuple[subprocess.Popen[str], list[int]]) -> None:
    proc, (_, sec_port, api_port) = spp_ctl
    url = f"http://{HOST}:{api_port}/v1/processes"
    wait_until(lambda: _up(url) or proc.poll() is not None, timeout=10.0)
    assert httpx.get(url).json() == []
    fake = FakeSecondary(HOST, sec_port, 4, "mirror")
    fake.connect()
    wait_until(lambda: httpx.get(url).json() == [{"type": "mirror", "client-id": 4}])
    assert (
        httpx.post(
            f"http://{HOST}:{api_port}/v1/mirrors/4/components", json={"name": "mr", "core": 2, "type": "mirror"}
        ).status_code
        == 204
    )
    assert fake.commands == ["component start mr 2 mirror"]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    fake.wait_disconnected()
    assert "mirror 4 connected" in output
    assert "Traceback" not in output


def test_spp_ctl_fails_cleanly_when_a_port_is_taken() -> None:
    with socket.create_server((HOST, 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "spp.ctl", "-b", HOST, "-p", str(port), "-s", "0", "-a", "0"],
            env=_env(),
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on {HOST}:{port}, the primary port (-p): Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_spp_ctl_help_lists_the_options() -> None:
    from spp.ctl.main import build_parser

    text = build_parser().format_help()
    for option in ["-b", "-p", "-s", "-a", "--token", "--timeout"]:
        assert option in text
    args = build_parser().parse_args([])
    assert (args.bind_addr, args.pri_port, args.sec_port, args.api_port, args.timeout, args.token) == (
        "localhost",
        5555,
        6666,
        7777,
        5.0,
        None,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--timeout", "0"])
