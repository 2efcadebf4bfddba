"""Fixtures for CLI tests: a real spp-ctl in a thread on free ports, and fake processes attached to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import Ctl, running_ctl

from spp.testing.fake_secondary import FakePrimary, FakeSecondary


@pytest.fixture(scope="module")
def ctl() -> Iterator[Ctl]:
    """One spp-ctl per test module."""
    with running_ctl() as running:
        yield running


@pytest.fixture
def vf(ctl: Ctl) -> Iterator[FakeSecondary]:
    yield ctl.secondary(1, "vf")
    ctl.close_fakes()


@pytest.fixture
def mirror(ctl: Ctl) -> Iterator[FakeSecondary]:
    yield ctl.secondary(2, "mirror")
    ctl.close_fakes()


@pytest.fixture
def primary(ctl: Ctl) -> Iterator[FakePrimary]:
    yield ctl.primary()
    ctl.close_fakes()
