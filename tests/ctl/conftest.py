"""Fixtures for spp-ctl tests: a real spp-ctl on free ports, fake processes, an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ctl_helpers import Ctl, running_ctl

from spp.testing.fake_secondary import FakePrimary, FakeSecondary


@pytest.fixture(scope="module")
def ctl() -> Iterator[Ctl]:
    """One spp-ctl per test module (timeout 2 s); fakes are removed after each test."""
    with running_ctl() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "ctl" in request.fixturenames:
        running: Ctl = request.getfixturevalue("ctl")
        running.close_fakes()


@pytest.fixture
def vf(ctl: Ctl) -> FakeSecondary:
    """spp_vf client id 1."""
    return ctl.secondary(1, "vf")


@pytest.fixture
def mirror(ctl: Ctl) -> FakeSecondary:
    """spp_mirror client id 1 (the same id as ``vf``, on purpose)."""
    return ctl.secondary(1, "mirror")


@pytest.fixture
def primary(ctl: Ctl) -> FakePrimary:
    return ctl.primary()
