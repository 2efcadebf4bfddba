"""Capture files are private (0600, like the shared memory) and never written through a symlink."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from spp.ports.base import PortError, open_port
from spp.runtime.dataplane import Dataplane


def test_capture_file_is_created_0600(dp: Dataplane, tmp_path: Path) -> None:
    path = tmp_path / "out.pcap"
    port = open_port(dp, "pcap:3", tx=str(path))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        port.close()
    path.write_bytes(b"")
    path.chmod(0o644)  # an existing file is made private too
    port = open_port(dp, "pcap:3", tx=str(path))
    port.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_capture_file_never_follows_a_symlink(dp: Dataplane, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "spp-pcap-3.pcap"
    link.symlink_to(victim)
    with pytest.raises(PortError, match="it is a symbolic link"):
        open_port(dp, "pcap:3", tx=str(link))
    assert victim.read_text() == "keep me"
