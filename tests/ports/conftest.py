"""Fixtures for driver tests: a namespace with a veth pair whose peer lives in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spp.testing.netns import Veth, veth_in_netns


@pytest.fixture
def veth() -> Iterator[Veth]:
    """A veth pair (MTU 9000 so oversize frames can be sent) with its peer in a fresh netns."""
    with veth_in_netns("spv", mtu=9000) as v:
        yield v
