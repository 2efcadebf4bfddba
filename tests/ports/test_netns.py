"""spp.testing.netns cleans up namespaces and veth pairs even when the body fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyroute2 import netns as pr_netns

from spp.testing.netns import in_netns, link_exists, netns, unique_ifname, veth_pair

pytestmark = pytest.mark.root


def test_cleanup_after_an_exception() -> None:
    ns_name, a, b = unique_ifname("sppcn"), unique_ifname("sppca"), unique_ifname("sppcb")
    with pytest.raises(RuntimeError, match="boom"), netns(ns_name) as ns, veth_pair(a, b, peer_ns=ns):
        assert link_exists(a) and not link_exists(b) and link_exists(b, ns)
        sysctl = Path("/proc/sys/net/ipv6/conf/default/disable_ipv6")
        assert in_netns(ns, lambda: sysctl.read_text().strip()) == "1"
        raise RuntimeError("boom")
    assert not link_exists(a)
    assert ns_name not in pr_netns.listnetns()


def test_names_are_checked() -> None:
    with pytest.raises(ValueError, match="longer than 15"):
        unique_ifname("averyverylongtag")
    with pytest.raises(ValueError, match="invalid interface/namespace name"), veth_pair("a/b", "c"):
        pass
    assert str(os.getpid() % 10000) in unique_ifname("x")
