"""Other users are kept out: shm segments 0600, spp-ctl on loopback by default, vhost sockets not world-writable.

``--token`` (every request without it gets 401) is tested in
tests/ctl/test_ctl_concurrency.py::test_token_is_required_when_configured.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from spp.cli.stack import LocalStack, free_ports
from spp.ctl.main import build_parser
from spp.ctl.server import CtlConfig
from spp.ports.base import open_port
from spp.runtime.dataplane import Dataplane
from spp.runtime.shm import segment_path
from spp.testing import stack, wait_for


def test_shm_segment_is_0600_even_with_umask_0() -> None:
    old = os.umask(0)
    try:
        with stack(n_bufs=64, n_rings=1, ring_size=64) as dp:
            mode = stat.S_IMODE(os.stat(segment_path(dp.prefix, "dataplane")).st_mode)
            assert mode == 0o600, oct(mode)
    finally:
        os.umask(old)


def test_vhost_socket_is_not_writable_by_others(dp: Dataplane, tmp_path: Path) -> None:
    path = str(tmp_path / "vh.sock")
    port = open_port(dp, "vhost:0", path=path)
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert not mode & 0o002, f"{path} is {oct(mode)}: other users could connect"
    finally:
        port.close()


def _listening(port: int) -> set[str]:
    """Local addresses of TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    out: set[str] = set()
    for name, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(name).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))  # kernel order per 32-bit word
            out.add(str(ipaddress.ip_address(raw)))
    return out


def test_spp_ctl_binds_loopback_by_default() -> None:
    assert build_parser().parse_args([]).bind_addr == "localhost"
    assert CtlConfig().bind_addr == "localhost"
    assert all(ipaddress.ip_address(info[4][0]).is_loopback
               for info in socket.getaddrinfo("localhost", 7777, type=socket.SOCK_STREAM))
    pri, sec, api = free_ports(3)
    local = LocalStack()
    proc = local.spawn("spp-ctl", [sys.executable, "-m", "spp.ctl", "-p", str(pri), "-s", str(sec), "-a", str(api)])
    try:
        for port in (pri, sec, api):
            def listening(p: int = port) -> set[str]:
                return _listening(p)

            addrs = wait_for(listening, timeout=30, message=f"spp-ctl to listen on {port}")
            assert all(ipaddress.ip_address(a).is_loopback for a in addrs), (port, addrs)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
