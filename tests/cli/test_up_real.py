"""``spp up`` with real processes: a broken file changes nothing; a failure halfway rolls back to the state before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.testing import wait_for
from spp.testing.netns import unique_ifname, veth_pair

GOOD_START = """\
processes:
  - kind: vf
    client_id: 3
    cores: "0,1"
    components:
      - {name: fwd, type: forward, core: 1, rx: [phy:0], tx: [ring:0]}
"""
FAILS_LATE = GOOD_START + """\
      - {name: cls, type: classifier, core: 1, rx: [ring:0], tx: [ring:1]}
    classifier:
      - {mac: "52:54:00:00:00:01", port: ring:3}
"""
BROKEN = GOOD_START + """\
      - {name: out, type: forward, core: 2, rx: [ring:0], tx: [phy:4]}
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    a, b = unique_ifname("upa"), unique_ifname("upb")
    with veth_pair(a, b), LocalStack() as local:
        local.start_ctl(reply_timeout=120)
        local.start_primary([a], extra=["--pool-size", "2048", "--rings", "8", "--ring-size", "64"])
        yield local


def _state(http: httpx.Client) -> tuple[list[dict[str, object]], list[object]]:
    procs = http.get("/processes").json()
    comps = [http.get(f"/vfs/{p['client-id']}").json()["components"] for p in procs if p["type"] == "vf"]
    return procs, comps


def test_broken_file_changes_nothing(stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with httpx.Client(base_url=f"{stack.url}/v1", timeout=30) as http:
        before = _state(http)
        assert main(["up", str(path), "-b", stack.server, "-s", stack.secondary_addr]) == 1
        err = capsys.readouterr().err
        assert f"{path}:7 (processes[0].components[1].core): core 2 is not in vf 3's cores '0,1'" in err
        assert f"{path}:7 (processes[0].components[1].tx[0]): phy:4: the stack has 1 phy port" in err
        assert _state(http) == before


def test_failure_halfway_rolls_back_to_the_state_before(stack: LocalStack, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "late.yaml"
    path.write_text(FAILS_LATE)
    with httpx.Client(base_url=f"{stack.url}/v1", timeout=30) as http:
        before = _state(http)
        assert main(["up", str(path), "-b", stack.server, "-s", stack.secondary_addr]) == 1
        err = capsys.readouterr().err
        assert f"{path}:9 (processes[0].classifier[0]): 'vf 3; classifier_table add mac" in err
        assert "rolled back" in err and "the stack is as it was" in err
        wait_for(lambda: _state(http) == before, timeout=30)
        # the part that fits, applied twice: once, then up to date
        path.write_text(GOOD_START)
        assert main(["up", str(path), "-b", stack.server, "-s", stack.secondary_addr]) == 0
        capsys.readouterr()
        assert main(["up", str(path), "-b", stack.server, "-s", stack.secondary_addr]) == 0
        assert "up to date" in capsys.readouterr().out
        assert main(["down", str(path), "-b", stack.server]) == 0
        wait_for(lambda: _state(http) == before, timeout=30)
