"""Hostile input: REST bodies against a live spp-ctl (fake secondaries) and topology files.

No 500, no hang (every request has a timeout), a clear message on every rejection, and
no command reaches a process for a rejected request (so nothing changes state).
The wire parser is fuzzed in tests/vf/test_vf_commands.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spp.cli.topology import TopologyError, load, parse
from spp.ctl.server import CtlConfig, CtlService
from spp.testing import wait_for
from spp.testing.fake_secondary import FakePrimary, FakeSecondary

HOST = "127.0.0.1"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["name", "core", "type", "action", "port", "dir", "vlan", "operation", "id", "pcp", "mac_address",
          "client_id", "proc_name", "eal", "app", "source", "direction", "destination"]
# bodies close to valid ones: known field names with hostile values
near_valid = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
ENDPOINTS = [
    ("POST", "/v1/vfs/1/components"),
    ("PUT", "/v1/vfs/1/components/c1/ports"),
    ("PUT", "/v1/vfs/1/classifier_table"),
    ("POST", "/v1/mirrors/2/components"),
    ("PUT", "/v1/mirrors/2/components/m1/ports"),
    ("PUT", "/v1/primary/ports"),
    ("PUT", "/v1/primary/launch"),
    ("POST", "/v1/port_mirrors"),
]


class Live:
    """A running spp-ctl with a fake primary, vf 1 and mirror 2."""

    def __init__(self) -> None:
        self.service = CtlService(CtlConfig(bind_addr=HOST, primary_port=0, secondary_port=0, api_port=0,
                                            timeout=5.0))
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="spp-ctl", daemon=True)
        self.thread.start()
        if not self.service.ready.wait(10.0):
            raise RuntimeError(f"spp-ctl did not start: {self.errors}")
        pri, sec, api = self.service.ports
        self.http = httpx.Client(base_url=f"http://{HOST}:{api}", timeout=10.0)
        self.fakes = [FakePrimary(HOST, pri), FakeSecondary(HOST, sec, 1, "vf"), FakeSecondary(HOST, sec, 2, "mirror")]
        for fake in self.fakes:
            fake.connect()
        wait_for(lambda: len(self.http.get("/v1/processes").json()) == 3, timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self.service.run())
        except BaseException as exc:  # reported by close()
            self.errors.append(exc)

    def commands(self) -> int:
        return sum(len(f.commands) for f in self.fakes)

    def close(self) -> None:
        for fake in self.fakes:
            fake.disconnect()
        self.http.close()
        self.service.stop()
        self.thread.join(10.0)
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    ctl = Live()
    try:
        yield ctl
    finally:
        ctl.close()


def check(live: Live, method: str, path: str, **kw: Any) -> httpx.Response:
    before = live.commands()
    response = live.http.request(method, path, **kw)
    assert response.status_code < 500, (method, path, kw, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.text.strip(), (method, path, kw, "empty error message")
        if response.status_code in (400, 422):
            # rejected before reaching a process: nothing was sent, nothing changed
            assert live.commands() == before, (method, path, kw, response.text)
    return response


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=json_values | near_valid)
def test_rest_json_bodies(live: Live, endpoint: tuple[str, str], body: Any) -> None:
    check(live, endpoint[0], endpoint[1], json=body)


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=64))
def test_rest_raw_bodies(live: Live, endpoint: tuple[str, str], raw: bytes) -> None:
    response = check(live, endpoint[0], endpoint[1], content=raw, headers={"content-type": "application/json"})
    if response.status_code == 400:
        assert response.text.strip()


@FUZZ
@given(segment=st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and s not in (".", "..")))
def test_rest_path_segments(live: Live, segment: str) -> None:
    segment = quote(segment, safe="")
    for path in (f"/v1/vfs/{segment}", f"/v1/vfs/1/components/{segment}", f"/v1/mirrors/{segment}"):
        check(live, "GET" if "components" not in path else "DELETE", path)


# -- topology files -------------------------------------------------------------------------

topo_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12)
    | st.sampled_from(["vf", "mirror", "forward", "merge", "classifier", "ring:0", "nullpmd:1", "phy:0", "0,1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["processes", "kind", "client_id", "cores", "components", "name", "type", "core", "rx",
                         "tx", "classifier_table", "port_mirrors", "source", "direction", "destination", "mac",
                         "port", "vlan", "copy", "bogus"]), inner, max_size=5),
    max_leaves=16,
)


@FUZZ
@given(data=topo_values)
def test_topology_data(data: Any) -> None:
    try:
        parse(data, "fuzz.yaml")
    except TopologyError as exc:
        assert str(exc).startswith("fuzz.yaml: ") and len(str(exc)) > len("fuzz.yaml: ")


@FUZZ
@given(text=st.text(max_size=200))
def test_topology_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        load(path)
    except TopologyError as exc:
        assert str(exc).startswith(f"{path}: ")


def test_topology_yaml_bombs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\nprocesses: 7\n")
    with pytest.raises(TopologyError, match=r"bomb\.yaml: "):
        load(path)
    path.write_text(yaml.safe_dump({"processes": [{"kind": "vf", "client_id": 1, "components": "x" * 10000}]}))
    with pytest.raises(TopologyError, match="components"):
        load(path)
