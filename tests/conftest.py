"""Shared fixtures: every test that touches the data plane gets a private, leak-checked stack."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from spp.runtime.dataplane import Dataplane
from spp.testing import stack


@pytest.fixture
def dp() -> Iterator[Dataplane]:
    """A private data plane; the test fails if the pool is not whole afterwards."""
    with stack() as d:
        yield d


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (network namespaces, veth, TAP)")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)
