"""spp-ctl end to end: REST requests in, exact wire commands out, replies back (SPEC sections 1 and 5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ctl_helpers import Ctl

from spp.testing.fake_secondary import FakePrimary, FakeSecondary, error_reply, success, wait_until

# -- the wire commands of every SPEC section 5 body ---------------------------------------------

VF_CASES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "POST",
        "/v1/vfs/1/components",
        {"name": "fwd1", "core": 12, "type": "forward"},
        "component start fwd1 12 forward",
    ),
    (
        "POST",
        "/v1/vfs/1/components",
        {"name": "cls", "core": 3, "type": "classifier"},
        "component start cls 3 classifier",
    ),
    ("POST", "/v1/vfs/1/components", {"name": "mgr", "core": 6, "type": "merge"}, "component start mgr 6 merge"),
    ("DELETE", "/v1/vfs/1/components/fwd1", None, "component stop fwd1"),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "attach", "port": "vhost:1", "dir": "rx", "vlan": {"operation": "add", "id": 677, "pcp": 0}},
        "port add vhost:1 rx fwd1 add_vlantag 677 0",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "attach", "port": "vhost:1", "dir": "tx", "vlan": {"operation": "del", "id": 0, "pcp": 0}},
        "port add vhost:1 tx fwd1 del_vlantag",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "attach", "port": "ring:0", "dir": "rx", "vlan": {"operation": "none", "id": 0, "pcp": 0}},
        "port add ring:0 rx fwd1",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "attach", "port": "ring:0", "dir": "rx", "vlan": {}},
        "port add ring:0 rx fwd1",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "attach", "port": "ring:0", "dir": "rx"},
        "port add ring:0 rx fwd1",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/cls/ports",
        {"action": "attach", "port": "phy:0nq1", "dir": "rx", "vlan": {}},
        "port add phy:0 nq 1 rx cls",
    ),
    (
        "PUT",
        "/v1/vfs/1/components/fwd1/ports",
        {"action": "detach", "port": "vhost:0", "dir": "tx"},
        "port del vhost:0 tx fwd1",
    ),
    (
        "PUT",
        "/v1/vfs/1/classifier_table",
        {"action": "add", "type": "mac", "mac_address": "FA:16:3E:7D:CC:35", "port": "ring:0"},
        "classifier_table add mac FA:16:3E:7D:CC:35 ring:0",
    ),
    (
        "PUT",
        "/v1/vfs/1/classifier_table",
        {"action": "del", "type": "vlan", "vlan": 475, "mac_address": "default", "port": "ring:0"},
        "classifier_table del vlan 475 default ring:0",
    ),
    (
        "PUT",
        "/v1/vfs/1/classifier_table",
        {"action": "add", "type": "vlan", "vlan": "101", "mac_address": "52:54:00:12:34:56", "port": "ring:1"},
        "classifier_table add vlan 101 52:54:00:12:34:56 ring:1",
    ),
    (
        "PUT",
        "/v1/vfs/1/classifier_table",
        {"action": "add", "type": "mac", "mac_address": "default", "port": "ring:2"},
        "classifier_table add mac default ring:2",
    ),
]

MIRROR_CASES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/v1/mirrors/1/components", {"name": "mr1", "core": 2, "type": "mirror"}, "component start mr1 2 mirror"),
    ("DELETE", "/v1/mirrors/1/components/mr1", None, "component stop mr1"),
    (
        "PUT",
        "/v1/mirrors/1/components/mr1/ports",
        {"action": "attach", "port": "ring:0", "dir": "rx"},
        "port add ring:0 rx mr1",
    ),
    (
        "PUT",
        "/v1/mirrors/1/components/mr1/ports",
        {"action": "attach", "port": "ring:4", "dir": "tx", "vlan": {}},
        "port add ring:4 tx mr1",
    ),
    (
        "PUT",
        "/v1/mirrors/1/components/mr1/ports",
        {"action": "detach", "port": "ring:5", "dir": "tx"},
        "port del ring:5 tx mr1",
    ),
]


def _request(ctl: Ctl, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if body is None:
        return ctl.http.request(method, path)
    return ctl.http.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body", "command"), VF_CASES)
def test_vf_write_sends_exact_command_and_answers_204(
    ctl: Ctl, vf: FakeSecondary, method: str, path: str, body: dict[str, Any] | None, command: str
) -> None:
    response = _request(ctl, method, path, body)
    assert (response.status_code, response.content) == (204, b"")
    assert vf.commands == [command]


@pytest.mark.parametrize(("method", "path", "body", "command"), MIRROR_CASES)
def test_mirror_write_sends_exact_command_and_answers_204(
    ctl: Ctl, mirror: FakeSecondary, method: str, path: str, body: dict[str, Any] | None, command: str
) -> None:
    response = _request(ctl, method, path, body)
    assert (response.status_code, response.content) == (204, b"")
    assert mirror.commands == [command]


def test_client_ids_are_unique_across_types(ctl: Ctl, vf: FakeSecondary) -> None:
    newcomer = FakeSecondary("127.0.0.1", ctl.secondary_port, 1, "mirror")
    try:
        newcomer.connect()
        newcomer.wait_disconnected()
        assert len(newcomer.commands) == 1
        assert newcomer.commands[0].startswith("_refuse client id 1 is already used by vf 1")
    finally:
        newcomer.disconnect()
    assert ctl.processes() == [{"type": "vf", "client-id": 1}]
    assert ctl.http.delete("/v1/vfs/1/components/fwd1").status_code == 204
    assert vf.commands == ["component stop fwd1"]


def test_processes_lists_primary_first_then_by_type_and_id(ctl: Ctl) -> None:
    ctl.secondary(2, "vf")
    ctl.secondary(1, "vf")
    ctl.secondary(7, "nfv")
    ctl.primary()
    assert ctl.processes() == [
        {"type": "primary"},
        {"type": "nfv", "client-id": 7},
        {"type": "vf", "client-id": 1},
        {"type": "vf", "client-id": 2},
    ]


# -- status -----------------------------------------------------------------------------------------


def test_vf_status_is_flattened(ctl: Ctl, vf: FakeSecondary) -> None:
    response = ctl.http.get("/v1/vfs/1")
    assert response.status_code == 200
    info = vf.status_info
    assert response.json() == {
        "client-id": 1,
        "ports": ["phy:0", "phy:1", "ring:0", "ring:1"],
        "master-lcore": 2,
        "components": info["core"],
        "classifier_table": info["classifier_table"],
    }
    assert vf.commands == ["status"]


def test_status_ports_include_every_port_type_list(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.status_info.update(vhost=["1"], tap=["0"], pcap=[2], nullpmd=["3"])
    ports = ctl.http.get("/v1/vfs/1").json()["ports"]
    assert ports == ["phy:0", "phy:1", "vhost:1", "ring:0", "ring:1", "pcap:2", "nullpmd:3", "tap:0"]


def test_mirror_status_is_flattened_without_classifier_table(ctl: Ctl, mirror: FakeSecondary) -> None:
    response = ctl.http.get("/v1/mirrors/1")
    assert response.status_code == 200
    assert response.json() == {
        "client-id": 1,
        "ports": ["ring:0", "ring:4", "ring:5"],
        "master-lcore": 1,
        "components": mirror.status_info["core"],
    }


def test_status_without_info_is_a_bad_reply(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("status", success())
    response = ctl.http.get("/v1/vfs/1")
    assert response.status_code == 502
    assert "info" in response.text


def test_status_error_is_relayed(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("status", error_reply("busy"))
    response = ctl.http.get("/v1/vfs/1")
    assert (response.status_code, response.text) == (400, "command error: busy")
    assert {"type": "vf", "client-id": 1} in ctl.processes()


# -- exit -------------------------------------------------------------------------------------------


def test_exit_removes_the_process(ctl: Ctl, vf: FakeSecondary) -> None:
    response = ctl.http.delete("/v1/vfs/1")
    assert (response.status_code, response.content) == (204, b"")
    assert vf.commands == ["exit"]
    assert ctl.processes() == []
    vf.wait_disconnected()


def test_exit_without_reply_but_closing_counts_as_success(ctl: Ctl, mirror: FakeSecondary) -> None:
    mirror.on("exit", lambda _command: mirror.disconnect())
    response = ctl.http.delete("/v1/mirrors/1")
    assert (response.status_code, response.content) == (204, b"")
    assert ctl.processes() == []


def test_refused_exit_keeps_the_process(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("exit", error_reply("not now"))
    response = ctl.http.delete("/v1/vfs/1")
    assert (response.status_code, response.text) == (400, "command error: not now")
    assert ctl.processes() == [{"type": "vf", "client-id": 1}]


# -- primary ----------------------------------------------------------------------------------------


def test_primary_status_returns_info_as_is(ctl: Ctl) -> None:
    primary = ctl.primary()
    primary.status_info = {"ports": [{"port": "phy:0", "stats": {"rx_packets": 5}}], "anything": [1, 2]}
    response = ctl.http.get("/v1/primary/status")
    assert response.status_code == 200
    assert response.json() == primary.status_info
    assert primary.commands == ["status"]


@pytest.mark.parametrize(
    ("method", "path", "body", "command"),
    [
        ("DELETE", "/v1/primary/status", None, "clear"),
        ("PUT", "/v1/primary/ports", {"action": "add", "port": "ring:0"}, "port add ring:0"),
        ("PUT", "/v1/primary/ports", {"action": "del", "port": "vhost:3"}, "port del vhost:3"),
        ("DELETE", "/v1/primary", None, "exit"),
    ],
)
def test_primary_writes(ctl: Ctl, method: str, path: str, body: dict[str, Any] | None, command: str) -> None:
    primary = ctl.primary()
    response = _request(ctl, method, path, body)
    assert (response.status_code, response.content) == (204, b"")
    assert primary.commands == [command]


def test_primary_launch_sends_the_body_as_json_on_one_line(ctl: Ctl) -> None:
    primary = ctl.primary()
    body = {
        "proc_name": "spp_vf",
        "client_id": 2,
        "eal": {"-l": "1,2", "-m": 512, "--file-prefix": "spp"},
        "app": {"-s": "127.0.0.1:6666", "--client-id": 2, "--vhost-client": ""},
    }
    response = ctl.http.put("/v1/primary/launch", json=body)
    assert (response.status_code, response.content) == (204, b"")
    command, *after = primary.commands
    assert after == ["status"]  # launch waits for the child: this primary does not list children
    prefix = "launch 2 spp_vf "
    assert command.startswith(prefix)
    assert "\n" not in command
    assert json.loads(command[len(prefix) :]) == body


def test_primary_not_connected_is_404(ctl: Ctl) -> None:
    response = ctl.http.get("/v1/primary/status")
    assert response.status_code == 404
    assert "primary" in response.text


def test_second_primary_is_refused_and_the_first_keeps_its_commands(ctl: Ctl) -> None:
    first = ctl.primary()
    second = FakePrimary("127.0.0.1", ctl.primary_port)
    try:
        second.connect()
        second.wait_disconnected()
        assert [c.split()[0] for c in second.commands] == ["_refuse"]
        assert "a primary is already connected" in second.commands[0]
    finally:
        second.disconnect()
    assert ctl.http.delete("/v1/primary/status").status_code == 204
    assert first.commands == ["clear"]
    assert ctl.processes() == [{"type": "primary"}]


def test_new_primary_is_welcome_once_the_old_is_gone(ctl: Ctl) -> None:
    first = ctl.primary()
    first.disconnect()
    ctl.wait_listed({"type": "primary"}, present=False)
    second = ctl.primary()
    assert ctl.http.delete("/v1/primary/status").status_code == 204
    assert second.commands == ["clear"]


# -- errors -----------------------------------------------------------------------------------------


def test_command_error_is_relayed_as_400(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("component start", error_reply("Invalid value (core)"))
    response = ctl.http.post("/v1/vfs/1/components", json={"name": "fwd1", "core": 99, "type": "forward"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "command error: Invalid value (core)"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/vfs/2"),
        ("GET", "/v1/mirrors/1"),  # vf 1 exists, mirror 1 does not
        ("DELETE", "/v1/vfs/5"),
        ("DELETE", "/v1/mirrors/3/components/x"),
    ],
)
def test_unknown_process_is_404(ctl: Ctl, vf: FakeSecondary, method: str, path: str) -> None:
    response = ctl.http.request(method, path)
    assert response.status_code == 404
    assert response.text.startswith("no such process: ")
    assert vf.commands == []


@pytest.mark.parametrize("path", ["/v1/nothing", "/v2/vfs/1", "/v1/vfs/1/unknown"])
def test_unknown_path_is_404(ctl: Ctl, path: str) -> None:
    response = ctl.http.get(path)
    assert response.status_code == 404
    assert response.text == f"not found: GET {path}"


def test_non_integer_id_is_400(ctl: Ctl) -> None:
    response = ctl.http.get("/v1/vfs/abc")
    assert (response.status_code, response.text) == (400, "invalid path: parameter 'client_id': must be an integer")


BAD_BODIES: list[tuple[str, str, Any, str]] = [
    (
        "/v1/vfs/1/components",
        "POST",
        {"core": 1, "type": "forward"},
        "invalid body: field 'name': required",
    ),
    (
        "/v1/vfs/1/components",
        "POST",
        {"name": "f", "core": "abc", "type": "forward"},
        "invalid body: field 'core': must be an integer",
    ),
    (
        "/v1/vfs/1/components",
        "POST",
        {"name": "f", "core": 1, "type": "mirror"},
        "invalid body: field 'type': must be 'forward', 'merge' or 'classifier'",
    ),
    (
        "/v1/vfs/1/components",
        "POST",
        {"name": "two words", "core": 1, "type": "forward"},
        "invalid body: field 'name': must be visible ASCII characters without spaces",
    ),
    (
        "/v1/vfs/1/components/fwd1/ports",
        "PUT",
        {"action": "attach", "port": "vhost:1", "dir": "up"},
        "invalid body: field 'dir': must be 'rx' or 'tx'",
    ),
    (
        "/v1/vfs/1/components/fwd1/ports",
        "PUT",
        {"action": "plug", "port": "vhost:1", "dir": "rx"},
        "invalid body: field 'action': must be 'attach' or 'detach'",
    ),
    (
        "/v1/vfs/1/components/fwd1/ports",
        "PUT",
        {"action": "attach", "port": "eth0", "dir": "rx"},
        "invalid body: field 'port': must be TYPE:N",
    ),
    (
        "/v1/vfs/1/components/fwd1/ports",
        "PUT",
        {"action": "attach", "port": "vhost:1", "dir": "rx", "vlan": {"operation": "add", "id": 5000, "pcp": 0}},
        "invalid body: field 'vlan.id': must be in range 0-4095",
    ),
    (
        "/v1/vfs/1/components/fwd1/ports",
        "PUT",
        {"action": "attach", "port": "vhost:1", "dir": "rx", "vlan": {"operation": "add", "id": 5}},
        "invalid body: field 'vlan': 'id' and 'pcp' are required when operation is 'add'",
    ),
    (
        "/v1/vfs/1/classifier_table",
        "PUT",
        {"action": "add", "type": "vlan", "mac_address": "default", "port": "ring:0"},
        "invalid body: field 'vlan': required when type is 'vlan'",
    ),
    (
        "/v1/vfs/1/classifier_table",
        "PUT",
        {"action": "add", "type": "mac", "mac_address": "FA:16:3E", "port": "ring:0"},
        "invalid body: field 'mac_address': must be a MAC address",
    ),
    (
        "/v1/vfs/1/classifier_table",
        "PUT",
        {"action": "add", "type": "vlan", "vlan": "x1", "mac_address": "default", "port": "ring:0"},
        "invalid body: field 'vlan': must be an integer",
    ),
    ("/v1/vfs/1/components", "POST", [1, 2], "invalid body: must be a JSON object"),
    (
        "/v1/mirrors/1/components",
        "POST",
        {"name": "m", "core": 1, "type": "forward"},
        "invalid body: field 'type': must be 'mirror'",
    ),
    (
        "/v1/mirrors/1/components/mr1/ports",
        "PUT",
        {"action": "attach", "port": "ring:0", "dir": "rx", "vlan": {"operation": "add", "id": 1, "pcp": 0}},
        "invalid body: field 'vlan': spp_mirror ports take no VLAN option",
    ),
    ("/v1/primary/ports", "PUT", {"action": "attach", "port": "ring:0"}, "invalid body: field 'action': must be"),
]


@pytest.mark.parametrize(("path", "method", "body", "message"), BAD_BODIES)
def test_bad_body_is_400_naming_the_field(
    ctl: Ctl, vf: FakeSecondary, path: str, method: str, body: Any, message: str
) -> None:
    response = ctl.http.request(method, path, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(message), response.text
    assert vf.commands == []


def test_malformed_json_is_400(ctl: Ctl, vf: FakeSecondary) -> None:
    response = ctl.http.post(
        "/v1/vfs/1/components", content=b'{"name": "fwd1", "core": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.text.startswith("invalid body: malformed JSON")


def test_missing_body_is_400(ctl: Ctl, vf: FakeSecondary) -> None:
    response = ctl.http.post("/v1/vfs/1/components")
    assert (response.status_code, response.text) == (400, "invalid body: a JSON object is required")


def test_body_is_json_whatever_the_content_type(ctl: Ctl, vf: FakeSecondary) -> None:
    body = json.dumps({"name": "fwd1", "core": 12, "type": "forward"})
    response = ctl.http.post("/v1/vfs/1/components", content=body, headers={"content-type": "text/plain"})
    assert response.status_code == 204
    assert vf.commands == ["component start fwd1 12 forward"]


def test_component_name_with_space_in_path_is_400(ctl: Ctl, vf: FakeSecondary) -> None:
    response = ctl.http.delete("/v1/vfs/1/components/a%20b")
    assert response.status_code == 400
    assert response.text.startswith("invalid argument: field 'name'")
    assert vf.commands == []


def test_garbage_reply_is_502_and_drops_the_connection(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("status", b"Segmentation fault\n")
    response = ctl.http.get("/v1/vfs/1")
    assert response.status_code == 502
    vf.wait_disconnected()
    ctl.wait_listed({"type": "vf", "client-id": 1}, present=False)


# -- framing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"terminator": b"\0"},
        {"terminator": b""},
        {"terminator": b"\n", "split_replies": True},
        {"terminator": b"\0\n", "split_replies": True},
    ],
)
def test_replies_are_framed_whatever_the_terminator_and_segmentation(ctl: Ctl, options: dict[str, Any]) -> None:
    vf = ctl.secondary(3, "vf", **options)
    for _ in range(3):
        assert ctl.http.get("/v1/vfs/3").json()["client-id"] == 3
        assert ctl.http.delete("/v1/vfs/3/components/x").status_code == 204
    assert vf.commands == ["status", "component stop x"] * 3


def test_large_status_reply_over_many_segments(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.status_info["core"] = [{"core": n, "type": "unuse", "pad": '{}"[' * 50} for n in range(500)]
    response = ctl.http.get("/v1/vfs/1")
    assert response.status_code == 200
    assert len(response.json()["components"]) == 500


# -- handshake and reconnection ------------------------------------------------------------------------------


def test_disconnected_process_disappears_and_comes_back(ctl: Ctl, vf: FakeSecondary) -> None:
    entry = {"type": "vf", "client-id": 1}
    vf.disconnect()
    ctl.wait_listed(entry, present=False)
    assert ctl.http.get("/v1/vfs/1").status_code == 404
    vf.connect()
    ctl.wait_listed(entry)
    assert ctl.http.get("/v1/vfs/1").status_code == 200


def test_same_instance_reconnecting_replaces_the_old_connection(ctl: Ctl) -> None:
    def handshake(command: str) -> dict[str, Any]:
        return success(client_id=1, process_type="vf", pid=4242, instance="4242-abc")

    older = FakeSecondary("127.0.0.1", ctl.secondary_port, 1, "vf")
    newer = FakeSecondary("127.0.0.1", ctl.secondary_port, 1, "vf")
    older.handshake_override = newer.handshake_override = handshake
    try:
        older.connect()
        ctl.wait_listed({"type": "vf", "client-id": 1})
        newer.connect()
        older.wait_disconnected()
        assert ctl.http.delete("/v1/vfs/1/components/c").status_code == 204
        assert newer.commands == ["component stop c"]
        assert older.commands == []
    finally:
        older.disconnect()
        newer.disconnect()


def test_another_process_with_a_live_id_is_refused(ctl: Ctl, vf: FakeSecondary) -> None:
    newer = FakeSecondary("127.0.0.1", ctl.secondary_port, 1, "vf")
    try:
        newer.connect()
        newer.wait_disconnected()
        assert newer.commands[0].startswith("_refuse client id 1 is already used by vf 1")
    finally:
        newer.disconnect()
    assert ctl.http.delete("/v1/vfs/1/components/c").status_code == 204
    assert vf.commands == ["component stop c"]


def test_a_hung_holder_loses_its_id_to_a_newcomer(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.handshake_override = None
    newer = ctl.secondary(1, "vf")
    vf.wait_disconnected()
    assert ctl.http.delete("/v1/vfs/1/components/c").status_code == 204
    assert newer.commands == ["component stop c"]


@pytest.mark.parametrize(
    "handshake",
    [
        {"results": [{"result": "success"}], "process_type": "vf"},
        {"results": [{"result": "success"}], "client_id": "1", "process_type": "vf"},
        {"results": [{"result": "success"}], "client_id": 1, "process_type": "primary"},
        {"results": [{"result": "success"}], "client_id": 1, "process_type": "v f"},
        error_reply("no"),
        b"[1, 2]\n",
    ],
)
def test_bad_handshake_is_refused(ctl: Ctl, handshake: Any) -> None:
    fake = FakeSecondary("127.0.0.1", ctl.secondary_port, 1)
    fake.handshake_override = handshake
    try:
        fake.connect()
        fake.wait_disconnected()
        assert ctl.processes() == []
    finally:
        fake.disconnect()


def test_unsolicited_reply_drops_the_connection(ctl: Ctl, vf: FakeSecondary) -> None:
    vf.on("status", b'{"results":[{"result":"success"}],"info":{}}\n{"results":[]}\n')
    ctl.http.get("/v1/vfs/1")
    vf.wait_disconnected()
    ctl.wait_listed({"type": "vf", "client-id": 1}, present=False)


# -- OpenAPI ---------------------------------------------------------------------------------------------------


def test_openapi_is_served(ctl: Ctl) -> None:
    response = ctl.http.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/v1/processes",
        "/v1/vfs/{client_id}",
        "/v1/vfs/{client_id}/components/{name}/ports",
        "/v1/vfs/{client_id}/classifier_table",
        "/v1/mirrors/{client_id}/components",
        "/v1/primary/launch",
        "/v1/cpu_layout",
    ]:
        assert path in paths
    assert ctl.http.get("/docs").status_code == 200


def test_cpu_layout_and_usage_describe_the_host(ctl: Ctl) -> None:
    layout = ctl.http.get("/v1/cpu_layout").json()
    lcores = sorted(lc for sock in layout for core in sock["cores"] for lc in core["lcores"])
    assert lcores
    assert all(set(sock) == {"socket_id", "cores"} for sock in layout)
    usage = ctl.http.get("/v1/cpu_usage").json()
    assert sorted(entry["lcore_id"] for entry in usage["lcores"]) == lcores
    assert all(0.0 <= entry["busy"] <= 100.0 for entry in usage["lcores"])


def test_wait_until_helper_times_out() -> None:
    with pytest.raises(TimeoutError):
        wait_until(lambda: False, timeout=0.02)
