"""The shipped examples run exactly as their headers say, on a real stack (spp-ctl, spp-primary, secondaries)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from importlib import resources

import httpx
import pytest

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.testing import wait_for
from spp.testing.netns import unique_ifname, veth_pair

EXAMPLES = resources.files("spp") / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.name.endswith((".yaml", ".txt")))


def _header(name: str) -> tuple[int, list[str]]:
    """(phy interfaces the header asks for, the spp commands it says to run)."""
    text = (EXAMPLES / name).read_text()
    needs = re.search(r"^# Needs: spp-ctl, and spp-primary --phy \S+ \((\d+) interfaces", text, re.MULTILINE)
    assert needs, f"{name}: no '# Needs:' header"
    runs = re.findall(r"^# Run in spp: (.+)$", text, re.MULTILINE)
    if name.endswith(".txt"):
        runs.append(re.findall(r"^# then, once 'status' lists them: (playback \S+)$", text, re.MULTILINE)[0])
    else:
        assert re.search(rf"^# Run: spp up {re.escape(name)}\b", text, re.MULTILINE), name
    return int(needs.group(1)), runs


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_as_its_header_says(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    count, runs = _header(name)
    with ExitStack() as stack:
        ifaces = []
        for _ in range(count):
            a, b = unique_ifname("exa"), unique_ifname("exb")
            stack.enter_context(veth_pair(a, b))
            ifaces.append(a)
        local = stack.enter_context(LocalStack())
        local.start_ctl(reply_timeout=120)
        local.start_primary(ifaces, extra=["--pool-size", "2048", "--rings", "8", "--ring-size", "64"])
        base = ["-b", local.server, "-s", local.secondary_addr]
        with httpx.Client(base_url=f"{local.url}/v1", timeout=30) as http:
            if name.endswith(".yaml"):
                assert main(["up", name, *base]) == 0
                capsys.readouterr()
                assert main(["up", name, *base]) == 0  # a second time: up to date
                assert "up to date, nothing to do" in capsys.readouterr().out
            else:
                for line in runs[:-1]:
                    assert main([*base, "-e", line]) == 0, line
                    kind, cid = line.split()[2:4]
                    wait_for(lambda kind=kind, cid=cid: {"type": kind, "client-id": int(cid)}
                             in http.get("/processes").json(), timeout=300)
                assert main([*base, "-e", runs[-1]]) == 0
            procs = [p for p in http.get("/processes").json() if p["type"] != "primary"]
            assert procs and all("error" not in p for p in procs)
            assert main(["down", *base[:2]]) == 0
