"""The interactive shell: completion from the live stack and a persistent history (prompt_toolkit pipe input)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cli_helpers import Ctl
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from spp.cli.session import Session
from spp.cli.shell import SppCompleter, candidates, run_shell
from spp.testing import wait_for
from spp.testing.fake_secondary import FakePrimary, FakeSecondary


def complete(session: Session, text: str) -> list[str]:
    completer = SppCompleter(session)
    return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent())]


def test_completion_from_live_status(ctl: Ctl, vf: FakeSecondary, primary: FakePrimary) -> None:
    session = Session([ctl.server])
    try:
        assert "vf 1;" in complete(session, "v")
        assert complete(session, "vf ") == ["1;"]
        assert complete(session, "vf 1; comp") == ["component"]
        assert complete(session, "vf 1; component stop ") == ["cls"]
        assert complete(session, "vf 1; component start x 3 cl") == ["classifier"]
        assert set(complete(session, "vf 1; port add ring")) == {"ring:0", "ring:1"}
        assert complete(session, "vf 1; port add ring:0 rx c") == ["cls"]
        assert complete(session, "vf 1; port add ring:0 rx cls add") == ["add_vlantag"]
        assert complete(session, "pri; st") == ["status", "stop"]
        assert complete(session, "pri; pat") == ["patch"]
        assert complete(session, "nfv 1; pa") == ["patch"]
        assert candidates(session, "nfv 1; patch ")[0] == "reset"
        assert complete(session, "pcap 1; st") == ["status", "start", "stop"]
        assert "playback" in complete(session, "pl")
        assert candidates(session, "mirror 3; ") == ["status", "component", "port", "exit"]
    finally:
        session.close()


def test_file_completion(tmp_path: Path, ctl: Ctl, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recipe.txt").write_text("status\n")
    monkeypatch.chdir(tmp_path)
    session = Session([ctl.server])
    try:
        assert complete(session, "playback rec") == ["ipe.txt"]
    finally:
        session.close()


def test_shell_runs_tab_completed_commands_and_keeps_history(ctl: Ctl, vf: FakeSecondary, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "history"
    history.write_text("\n# 2026-01-01\n+vf 1; status\n")
    session = Session([ctl.server])
    result: list[bool] = []
    with create_pipe_input() as pipe:

        def shell() -> None:
            with create_app_session(input=pipe, output=DummyOutput()):
                result.append(run_shell(session, history_file=history, input=pipe, output=DummyOutput()))

        thread = threading.Thread(target=shell, daemon=True)
        thread.start()
        wait_for(lambda: session.prompt is not None and session.prompt.app.is_running, timeout=10)
        # "vf 1; component sta<TAB>" completes to "start" (from the live status)
        pipe.send_text("vf 1; component sta\t")
        wait_for(lambda: session.prompt.default_buffer.text == "vf 1; component start", timeout=10,
                 message=lambda: repr(session.prompt.default_buffer.text))
        pipe.send_text(" fwd1 3 forward\r")
        pipe.send_text("history\r")
        pipe.send_text("bye\r")
        thread.join(20)
    session.close()
    assert result == [True]
    assert [c for c in vf.commands if c != "status"] == ["component start fwd1 3 forward"]
    out = capsys.readouterr().out
    assert "1  vf 1; status" in out and "2  vf 1; component start fwd1 3 forward" in out
    assert "+vf 1; component start fwd1 3 forward" in history.read_text()
