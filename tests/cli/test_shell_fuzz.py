"""The shell never exits on a command's error: Hypothesis throws command lines at it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Ctl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from spp.cli.session import Session
from spp.cli.shell import run_shell
from spp.testing import wait_for
from spp.testing.fake_secondary import FakeProcess

MISSING = "/nonexistent-spp-dir/sub"
WORDS = [
    "status", "pri;", "vf", "mirror", "vf 1;", "mirror 2;", "vf 7;", "server", "record", "playback", "topo",
    "history", "help", "launch", "port", "add", "del", "component", "start", "stop", "classifier_table", "mac",
    "vlan", "default", "rx", "tx", "nq", "forward", "merge", "classifier", "port_mirror", "list", "both",
    "ring:0", "phy:0", "phy:0nq5", "nullpmd:1", "vhost:0", "-l", "-s", "--copy", "deep", "abc", "0", "1", "3",
    "-1", "99999999999999999999", "52:54:00:00:00:01", "add_vlantag", "del_vlantag", "clear", ";", "''", "\"",
    "\\", "%s", "{}", "\x00", "é", f"{MISSING}/x.svg", f"{MISSING}/x.dot", f"{MISSING}/rec.txt", "x.png",
    "127.0.0.1:1", "host:port",
]
SAFE = {"bye", "exit", "quit"}

PATHS = [f"{MISSING}/x.svg", f"{MISSING}/x.dot", f"{MISSING}/r.txt", "/", "/proc/version", "/dev/null", "x.png",
         "/proc/self/status.svg"]

lines = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
    st.tuples(st.sampled_from(["topo", "record", "playback", "server"]), st.sampled_from(PATHS)).map(" ".join),
    st.text(max_size=40),
)


@pytest.fixture(scope="module")
def fakes(ctl: Ctl) -> Iterator[list[FakeProcess]]:
    """A fake vf 1, mirror 2 and primary, reconnected whenever a fuzzed 'exit' sent them away."""
    made: list[FakeProcess] = [ctl.secondary(1, "vf"), ctl.secondary(2, "mirror"), ctl.primary()]
    yield made
    ctl.close_fakes()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=lines)
def test_no_command_line_raises(ctl: Ctl, fakes: list[FakeProcess], workdir: Path, line: str) -> None:
    for fake in fakes:
        if not fake.connected:
            fake.disconnect()
            fake.connect()
    session = Session([ctl.server])
    try:
        with contextlib.chdir(workdir):  # 'record NAME' writes NAME: never into the checkout
            result = session.execute(line)
    finally:
        session.close()
    assert isinstance(result, bool)
    assert session.done == (line.strip() in SAFE)


def test_shell_keeps_its_prompt_after_file_and_network_errors(ctl: Ctl, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    session = Session([ctl.server])
    result: list[bool] = []
    with create_pipe_input() as pipe:

        def shell() -> None:
            with create_app_session(input=pipe, output=DummyOutput()):
                result.append(run_shell(session, history_file=None, input=pipe, output=DummyOutput()))

        thread = threading.Thread(target=shell, daemon=True)
        thread.start()
        wait_for(lambda: session.prompt is not None and session.prompt.app.is_running, timeout=10)
        for line in (f"topo {MISSING}/t.svg", f"record {MISSING}/r.txt", f"playback {MISSING}/p.txt",
                     "server 127.0.0.1:1", "status", "server 1", "status", "bye"):
            pipe.send_text(line + "\r")
        thread.join(30)
    session.close()
    assert result == [False]
    err = capsys.readouterr().err
    assert f"error: cannot access {MISSING}/t.svg: No such file or directory" in err
    assert "error: cannot reach spp-ctl at 127.0.0.1:1" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 4
