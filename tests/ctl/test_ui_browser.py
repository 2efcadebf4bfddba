"""The topology page in headless Chromium, on a real stack (spp-ctl, spp-primary, spp-vf).

Debian's ``chromium`` is driven over the DevTools protocol (tests/ctl/cdp.py).  The test
skips only when chromium is missing (``scripts/setup.sh`` installs it).  Screenshots are
kept under ``tests/artifacts/ui/`` (git-ignored; ``SPP_TEST_ARTIFACTS`` overrides), and
their paths are printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp import Browser, chromium_binary
from ui_samples import big_snapshot

from spp.cli.client import RestClient
from spp.cli.stack import LocalStack
from spp.cli.topology import parse, up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_binary() is None, reason="Debian's chromium is not installed (scripts/setup.sh)"),
]

TOPOLOGY: dict[str, Any] = {"processes": [
    {"kind": "vf", "client_id": 1, "cores": "0,1", "components": [
        {"name": "gen", "type": "forward", "core": 1, "rx": ["nullpmd:0"], "tx": ["ring:0"]},
        {"name": "out", "type": "forward", "core": 1, "rx": ["ring:0"], "tx": ["nullpmd:1"]}]},
]}


def artifacts() -> Path:
    path = Path(os.environ.get("SPP_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")) / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = chromium_binary()
    assert binary is not None
    with Browser(binary, width=1500, height=850) as running:
        yield running


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["--pool-size", "4096", "--rings", "4", "--ring-size", "256"])
        client = RestClient(local.server)
        try:
            up(parse(TOPOLOGY, "ui test topology"), client, secondary=local.secondary_addr, log=lambda _: None)
        finally:
            client.close()
        yield local


def _counters(browser: Browser) -> dict[str, dict[str, float]]:
    value = browser.eval("JSON.stringify(Object.fromEntries([...document.querySelectorAll('g.port')].map("
                         "e => [e.dataset.port, {rx: +e.dataset.rxPackets, tx: +e.dataset.txPackets}])))")
    result: dict[str, dict[str, float]] = json.loads(value)
    return result


def test_page_shows_the_live_stack_with_moving_counters(browser: Browser, stack: LocalStack) -> None:
    browser.open(f"{stack.url}/ui")
    browser.wait_for("document.querySelector('#conn').classList.contains('live') && "
                     "document.querySelectorAll('g.port').length >= 3", "the first snapshot", timeout=30)
    # (a first request may take longer than a tick, e.g. while a process compiles: down, then up)
    procs = browser.wait_for("(() => { const p = [...document.querySelectorAll('g.proc')].map(e => e.dataset.proc"
                             " + ':' + e.dataset.state).sort(); return p.every(s => s.endsWith(':up')) && p; })()",
                             "every process up", timeout=30)
    assert procs == ["primary:up", "vf:1:up"]
    comps = browser.eval("[...document.querySelectorAll('g.comp')].map(e => e.dataset.comp)")
    assert sorted(comps) == ["vf:1/gen", "vf:1/out"]
    first = _counters(browser)
    assert set(first) == {"nullpmd:0", "nullpmd:1", "ring:0"}
    # counters move while traffic flows (the null source never stops)
    browser.wait_for(
        f"(() => {{ const c = {json.dumps(first)}; const e = document.querySelector('g.port[data-port=\"nullpmd:0\"]');"
        " const o = document.querySelector('g.port[data-port=\"nullpmd:1\"]');"
        " return +e.dataset.rxPackets > c['nullpmd:0'].rx && +o.dataset.txPackets > c['nullpmd:1'].tx; })()",
        "counters moving on nullpmd:0 and nullpmd:1", timeout=90)
    text = browser.eval("document.querySelector('g.port[data-port=\"nullpmd:0\"] text.rate').textContent")
    assert text.startswith("rx ") and "pps" in text
    assert browser.eval("document.querySelectorAll('path.edge.flow').length") >= 1  # edges animate with traffic
    # a click on a port shows its counters, drops by reason included
    browser.eval("document.querySelector('g.port[data-port=\"ring:0\"]').dispatchEvent(new MouseEvent('click', "
                 "{bubbles: true}))")
    panel = browser.wait_for("(() => { const t = document.getElementById('details').textContent;"
                             " return t.includes('port ring:0') && t; })()", "the port's details")
    assert "drops by reason" in panel and "rx_packets" in panel and "vf:1/gen (tx)" in panel
    browser.eval("document.querySelector('g.comp[data-comp=\"vf:1/out\"]').dispatchEvent(new MouseEvent('click', "
                 "{bubbles: true}))")
    panel = browser.wait_for("(() => { const t = document.getElementById('details').textContent;"
                             " return t.includes('forward in vf:1') && t; })()", "the component's details")
    assert "drops by reason" in panel
    path = browser.screenshot(artifacts() / "live-stack.png")
    print(f"\nscreenshot of the live page: {path}")


def test_a_big_stack_stays_readable(browser: Browser, stack: LocalStack) -> None:
    """11 processes, 103 ports (generated): every one drawn, no two boxes overlap."""
    snap = big_snapshot()
    browser.open(f"{stack.url}/ui?static")
    browser.eval(f"window.sppTopology.render({json.dumps(snap)}); true")
    assert browser.eval("document.querySelectorAll('g.port').length") == len(snap["ports"])
    assert browser.eval("document.querySelectorAll('g.proc').length") == len(snap["processes"])
    overlaps = browser.eval("""(() => {
        const boxes = [...document.querySelectorAll('g.port > rect.body, g.proc > rect.box')].map(r => {
            const b = r.getBoundingClientRect(); return [r.parentNode.dataset.port || r.parentNode.dataset.proc, b]; });
        const hit = [];
        for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
            const [n1, a] = boxes[i], [n2, b] = boxes[j];
            const inside = (o, p) => p.left >= o.left && p.right <= o.right && p.top >= o.top && p.bottom <= o.bottom;
            if (n1 === 'primary' && inside(a, b)) continue;  // the primary holds the idle ports
            if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
                hit.push(n1 + ' / ' + n2);
        }
        return hit; })()""")
    assert overlaps == []
    # text stays at a readable size by default (the user zooms out with 'fit')
    assert browser.eval("window.sppTopology.state.scale") >= 0.8
    path = browser.screenshot(artifacts() / "big-stack.png")
    browser.eval("document.getElementById('zoom-fit').click(); true")
    whole = browser.screenshot(artifacts() / "big-stack-fit.png")
    print(f"\nscreenshots of the generated big stack: {path} {whole}")


def test_token_in_the_query_and_a_closed_tab_frees_its_stream(browser: Browser) -> None:
    """With --token the page and its EventSource carry ?token=; leaving the page frees the stream."""
    from ctl_helpers import running_ctl

    from spp.testing.fake_secondary import wait_until

    with running_ctl(token="t0k en/+") as ctl:
        ctl.primary()
        browser.open(f"{ctl.url}/ui?token=t0k%20en%2F%2B")
        browser.wait_for("document.querySelector('#conn').classList.contains('live') && "
                         "document.querySelectorAll('g.proc').length === 1", "the page live with the token")
        hub = ctl.service.app.state.ui_hub
        assert hub.streams == 1
        browser.open("about:blank")
        wait_until(lambda: hub.streams == 0, timeout=5)
        browser.open(f"{ctl.url}/ui")  # no token: refused, says why
        assert "?token=TOKEN" in browser.eval("document.body.textContent")
