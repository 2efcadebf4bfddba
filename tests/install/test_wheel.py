"""A built wheel, installed non-editable in a fresh venv, runs a stack from a read-only site-packages.

The wheel is built with pip (its cache and the registries only) and installed with
``--no-index`` into a venv that sees the system's site-packages for the dependencies
(pip still checks they satisfy the wheel's requirements).  The smoke run happens in a
private mount namespace where the venv's site-packages and ``$HOME`` are read-only
bind mounts and ``/var/cache`` a throwaway tmpfs: spp must pick a writable numba cache
itself, and spp-ctl, spp-primary, a launched spp-vf and a forward must pass frames.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    import spp
    assert spp.__file__.startswith(sys.prefix), f"spp imported from {spp.__file__}, not the venv"
    pkg = Path(spp.__file__).parent
    try:
        (pkg / "probe").write_text("x")
        raise SystemExit("site-packages is writable: the test set-up is wrong")
    except OSError:
        pass
    print("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR"), flush=True)
    import httpx
    from spp.cli.main import main
    from spp.cli.stack import LocalStack
    topo = Path(sys.argv[1])
    with LocalStack() as stack:
        stack.start_ctl()
        stack.start_primary(extra=["--pool-size", "1024", "--rings", "4", "--ring-size", "128"])
        assert main(["up", str(topo), "-b", stack.server, "-s", stack.secondary_addr]) == 0
        deadline = time.monotonic() + 400
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            while True:
                comps = http.get("/v1/vfs/1").json()["components"]
                tx = [p["stats"]["tx_packets"] for c in comps for p in c.get("tx_port", [])]
                if tx and tx[0] > 0:
                    break
                assert time.monotonic() < deadline, comps
                time.sleep(0.2)
            text = http.get("/metrics").text
            assert 'spp_process_up{process="vf:1"} 1.0' in text, text
            docs = http.get("/docs")
            assert docs.status_code == 200 and "cdn" not in docs.text.lower(), docs.text
        assert main(["down", "-b", stack.server]) == 0
    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    assert any(cache.rglob("*.nbi")), "nothing was cached"
    print("SMOKE OK", flush=True)
''')

TOPOLOGY = """
processes:
  - kind: vf
    client_id: 1
    cores: "0,1"
    components:
      - {name: fwd, type: forward, core: 1, rx: [nullpmd:0], tx: [nullpmd:1]}
"""


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, check=False, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{argv}:\n{out.stdout}\n{out.stderr}"
    return out  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(900)
def test_wheel_runs_from_a_read_only_install(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (read-only bind mounts in a private mount namespace)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")}
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], env=env, timeout=600)
    wheel = next(dist.glob("spp-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], env=env, timeout=120)
    py = venv / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check", str(wheel)],
        env=env, timeout=300)
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env
                    ).stdout.strip())
    assert (site / "spp" / "systemd" / "spp-vf@.service").is_file()
    home = tmp_path / "home"
    home.mkdir()
    topo = tmp_path / "topo.yaml"
    topo.write_text(TOPOLOGY)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    script = (
        f"mount --bind {site} {site} && mount -o remount,bind,ro {site} && "
        f"mount --bind {home} {home} && mount -o remount,bind,ro {home} && "
        "mount -t tmpfs spp-test /var/cache && "
        f"cd / && exec {py} {driver} {topo}"
    )
    smoke_env = {**env, "HOME": str(home), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    smoke_env.pop("XDG_CACHE_HOME", None)
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], check=False,
                         capture_output=True, text=True, env=smoke_env, timeout=900)
    assert out.returncode == 0 and "SMOKE OK" in out.stdout, f"{out.stdout}\n{out.stderr}"
    assert "NUMBA_CACHE_DIR /var/cache/spp/numba" in out.stdout, out.stdout
