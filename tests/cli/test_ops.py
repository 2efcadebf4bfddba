"""Operator conventions: --version everywhere, SPP_TOKEN/SPP_CTL, JSON logs, sd_notify, systemd units,
bash completion, ``--json`` status output and ``spp top``."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cli_helpers import Ctl

import spp
from spp.cli.main import main
from spp.cli.stack import free_ports
from spp.testing import wait_for
from spp.testing.fake_secondary import FakePrimary, FakeSecondary, vf_status_info

DAEMONS = {
    "spp-ctl": ["-m", "spp.ctl"],
    "spp-primary": ["-m", "spp.control.primary"],
    "spp-vf": ["-c", "import sys; from spp.control.secondary import main_vf; sys.exit(main_vf())"],
    "spp-mirror": ["-c", "import sys; from spp.control.secondary import main_mirror; sys.exit(main_mirror())"],
    "spp-nfv": ["-m", "spp.control.nfv"],
    "spp-pcap": ["-m", "spp.control.pcap"],
}
SYSTEMD = Path(spp.__file__).parent / "systemd"


@pytest.mark.parametrize("name", sorted(DAEMONS))
def test_daemons_have_version(name: str) -> None:
    out = subprocess.run([sys.executable, *DAEMONS[name], "--version"], check=False, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{name} {spp.__version__} (Python {sys.version.split()[0]})"


@pytest.mark.parametrize("argv", [[], ["up"], ["down"], ["top"], ["demo"], ["bench"], ["completion"]])
def test_spp_commands_have_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) if argv != ["bench"] else _no_exit() as _:
        assert main([*argv, "--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(["spp", *argv]) + f" {spp.__version__} ")


@contextmanager
def _no_exit() -> Iterator[None]:
    yield


@contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(60)
        try:
            yield sock, path
        finally:
            sock.close()


def test_spp_ctl_token_from_env_json_logs_and_readiness() -> None:
    pri, sec, api = free_ports(3)
    with notify_socket() as (sock, path):
        env = {**os.environ, "SPP_TOKEN": "from-env", "NOTIFY_SOCKET": path}
        proc = subprocess.Popen([sys.executable, "-m", "spp.ctl", "-b", "127.0.0.1", "-p", str(pri), "-s", str(sec),
                                 "-a", str(api), "--log-format", "json"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert sock.recv(100) == b"READY=1"
            url = f"http://127.0.0.1:{api}/v1/processes"
            assert httpx.get(url).status_code == 401  # ready means the REST port answers
            assert httpx.get(url, headers={"Authorization": "Bearer from-env"}).status_code == 200
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, err
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    assert any("refused, bad or missing token" in e["message"] for e in lines)
    assert "from-env" not in err


def test_cli_token_and_address_from_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cli_helpers import running_ctl

    with running_ctl(token="t0k") as ctl:
        vf = ctl.secondary(1, "vf")
        vf.status_info = vf_status_info(1)
        monkeypatch.setenv("SPP_CTL", ctl.server)
        monkeypatch.setenv("SPP_TOKEN", "t0k")
        assert main(["-e", "status"]) == 0
        assert "vf" in capsys.readouterr().out
        monkeypatch.setenv("SPP_TOKEN", "wrong")
        assert main(["-e", "status"]) == 1
        assert "unauthorized" in capsys.readouterr().err
        ctl.close_fakes()


def test_json_output_of_status_commands(ctl: Ctl, vf: FakeSecondary, primary: FakePrimary,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    vf.status_info = vf_status_info(1)
    assert main(["-b", ctl.server, "--json", "-e", "vf 1; status"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["client-id"] == 1 and got["classifier_table"]
    assert main(["-b", ctl.server, "-e", "status --json"]) == 0
    assert {"type": "vf", "client-id": 1} in json.loads(capsys.readouterr().out)
    assert main(["-b", ctl.server, "-e", "pri; status --json"]) == 0
    assert "pool" in json.loads(capsys.readouterr().out)


def test_spp_top_prints_rates(ctl: Ctl, vf: FakeSecondary, capsys: pytest.CaptureFixture[str]) -> None:
    info = vf_status_info(1)
    count = [0]

    def status(_: str) -> dict[str, object]:
        count[0] += 1000
        info["core"][0]["rx_port"][0]["stats"] = {"rx_packets": count[0], "rx_bytes": 64 * count[0],
                                                  "tx_packets": 0, "tx_bytes": 0, "errors": 0,
                                                  "drops": {"runt": 3}}
        return {"results": [{"result": "success"}], "info": info}

    vf.on("status", status)
    assert main(["top", "-b", ctl.server, "--count", "2", "--interval", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "phy:0" in out and "vf:1" in out and "runt 3" in out
    assert "rx pps" in out and re.search(r"\d+\.\d+k", out), out


def test_spp_top_quits_on_q(ctl: Ctl) -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: spp top on the pty
        os.execv(sys.executable, [sys.executable, "-m", "spp.cli", "top", "-b", ctl.server, "--interval", "0.2"])
    try:
        seen = b""

        def screen() -> bool:
            nonlocal seen
            seen += os.read(fd, 65536)
            return b"q quits" in seen

        wait_for(screen, timeout=30)
        os.write(fd, b"q")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)


def test_completion_script_covers_every_option() -> None:
    out = subprocess.run([sys.executable, "-m", "spp.cli", "completion", "bash"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert subprocess.run(["bash", "-n"], check=False, input=out, text=True).returncode == 0
    for name, argv in DAEMONS.items():
        help_text = subprocess.run([sys.executable, *argv, "--help"], check=False, capture_output=True, text=True,
                                   timeout=60).stdout
        line = next(x for x in out.splitlines() if x.strip().startswith((f"{name})", f"'{name}')")))
        listed = set(line.split("echo ", 1)[1].strip(" ';").split())
        usage = help_text.split("\n\n", 1)[0]  # the usage lines name every option
        in_help = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage)) | {"-h", "--help"}
        assert in_help <= listed, (name, in_help - listed)
    # completion works in bash: 'spp-ctl --log-f<TAB>' and 'spp-ctl --log-format <TAB>'
    probe = out + """
COMP_WORDS=(spp-ctl --log-f); COMP_CWORD=1; _spp_complete; echo "${COMPREPLY[@]}"
COMP_WORDS=(spp-ctl --log-format ''); COMP_CWORD=2; _spp_complete; echo "${COMPREPLY[@]}"
COMP_WORDS=(spp t); COMP_CWORD=1; _spp_complete; echo "${COMPREPLY[@]}"
"""
    lines = subprocess.run(["bash", "-c", probe], check=False, capture_output=True, text=True,
                           timeout=30).stdout.splitlines()
    assert lines == ["--log-format", "text json", "top"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    for unit in SYSTEMD.glob("*.service"):
        name = unit.name.replace("@.", "@1.")
        (tmp_path / name).write_text(unit.read_text())
        text = unit.read_text()
        assert "Type=notify" in text and "--log-format json" in text
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 4
    out = subprocess.run(["systemd-analyze", "verify", *units], check=False, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    # the console scripts may live outside systemd's search path here (a venv); nothing else may be wrong
    problems = [x for x in (out.stdout + out.stderr).splitlines() if x.strip() and "is not executable" not in x]
    assert not problems, problems


def test_secondary_readiness_and_json_logs(ctl: Ctl, tmp_path: Path) -> None:
    """spp-vf says READY=1 once connected to spp-ctl (needs a data plane: a real primary's)."""
    from spp.cli.stack import LocalStack

    with LocalStack() as stack, notify_socket() as (sock, path):
        stack.start_ctl()
        stack.start_primary(extra=["--pool-size", "512", "--rings", "4", "--ring-size", "64"])
        env = {**os.environ, "NOTIFY_SOCKET": path}
        log = tmp_path / "vf.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, *DAEMONS["spp-vf"], "--client-id", "3", "-s",
                                     stack.secondary_addr, "-l", "0,1", "--file-prefix", stack.prefix, "--no-pin",
                                     "--log-format", "json"], env=env, stderr=out)
        try:
            assert sock.recv(100) == b"READY=1"
            stack.wait_process({"type": "vf", "client-id": 3}, 30)
        finally:
            proc.terminate()
            proc.wait(30)
        entries = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        assert any(e["message"].startswith("connected to spp-ctl") and e["process"] == "vf:3" for e in entries)


def test_up_down_and_top_take_the_address_from_env(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SPP_CTL", "127.0.0.1:1")
    monkeypatch.setenv("SPP_TOKEN", "t")
    assert main(["down"]) == 1
    assert "cannot reach spp-ctl at 127.0.0.1:1" in capsys.readouterr().err
    assert main(["down", "-b", "127.0.0.1:2"]) == 1  # the command line wins
    assert "cannot reach spp-ctl at 127.0.0.1:2" in capsys.readouterr().err
    assert main(["top", "--count", "1"]) == 1
    assert "cannot reach spp-ctl at 127.0.0.1:1" in capsys.readouterr().err
