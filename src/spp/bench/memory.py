"""``memory``: how big a worker process is and how fast it starts.

A worker process (:mod:`spp.bench.child`, role ``forward``: nullpmd:0 → nullpmd:1)
is started twice against a data plane this process created, both times with
``NUMBA_CACHE_DIR`` pointing at the same fresh directory: the first start compiles
every function (cold cache), the second loads them from the cache (warm).  The time
is from ``exec`` to the first frame counted on nullpmd:1; the size is the process's
resident set (``VmRSS``) while forwarding, which includes the mapped data plane
pages it touched.  For context the peer is ``dpdk-testpmd`` (two net_null vdevs,
``-m 1024 --no-huge``): time to its prompt, resident size there.

``cold_register_s`` / ``warm_register_s``: the time from ``exec`` of a real ``spp-vf``
to its answer to spp-ctl's ``_get_client_id`` handshake (the moment spp-ctl lists it),
on another empty cache and on the warm one; the process is then stopped (it compiles
in the background, so this does not wait for the compile; ``register_state`` is what
its status said then).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from spp.bench.child import rss_kib
from spp.bench.common import (
    DIE_WITH_PARENT,
    BenchError,
    Cleanup,
    Options,
    OutputReader,
    Result,
    Testpmd,
    eal_args,
    stop_process,
)
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import TX_PACKETS
from spp.testing import unique_prefix, wait_for


def _start_once(dp: Dataplane, core: int, cache_dir: str, cleanup: Cleanup) -> tuple[float, int, bool]:
    """Start a forward worker process; return (seconds to first frame, RSS KiB while forwarding, native)."""
    dst = dp.stats[dp.port_slot("nullpmd", 1)]
    before = int(dst[TX_PACKETS])
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    t0 = time.perf_counter()
    proc = subprocess.Popen([*DIE_WITH_PARENT, sys.executable, "-m", "spp.bench.child", "--prefix", dp.prefix,
                             "--role", "forward", "--core", str(core)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    cleanup.process(proc, "worker process")
    out = OutputReader(proc)
    try:
        wait_for(lambda: int(dst[TX_PACKETS]) > before or proc.poll() is not None, timeout=600, interval=0.002,
                 message="the worker's first forwarded frame")
    except TimeoutError:
        raise BenchError("worker process forwarded nothing within 600 s; output:\n" + out.text[-1500:]) from None
    elapsed = time.perf_counter() - t0
    if proc.poll() is not None:
        raise BenchError("worker process exited before forwarding; output:\n" + out.text[-1500:])
    native = out.wait_for(r"ready \d+ native=(\d)", timeout=60).group(1) == "1"
    rss = rss_kib(proc.pid)
    stop_process(proc, grace=30)
    out.wait_for(r"stopped", timeout=10)
    return elapsed, rss, native


def _register_once(dp: Dataplane, cache_dir: str, cleanup: Cleanup) -> tuple[float, str]:
    """Start ``spp-vf`` against a listening socket; return (seconds to its handshake reply, its status state)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(120)
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        t0 = time.perf_counter()
        proc = subprocess.Popen([*DIE_WITH_PARENT, sys.executable, "-m", "spp.control.secondary", "--client-id", "1",
                                 "-s", f"127.0.0.1:{srv.getsockname()[1]}", "-l", "0,1", "--file-prefix", dp.prefix,
                                 "--no-pin"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env)
        cleanup.process(proc, "spp-vf")
        out = OutputReader(proc)
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            raise BenchError("spp-vf did not connect within 120 s; output:\n" + out.text[-1500:]) from None
        with conn:
            conn.settimeout(60)
            conn.sendall(b"_get_client_id")
            reply = conn.recv(65536)
            elapsed = time.perf_counter() - t0
            if b"success" not in reply:
                raise BenchError(f"spp-vf answered the handshake with {reply[:200]!r}")
            conn.sendall(b"status")
            state = str(json.loads(conn.recv(65536).decode()).get("info", {}).get("state"))
        stop_process(proc, grace=30)
    return elapsed, state


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
    cleanup.push("data plane " + dp.prefix, dp.close)
    cache_dir = tempfile.mkdtemp(prefix="spp-bench-numba-")
    cleanup.push("numba cache " + cache_dir, lambda: shutil.rmtree(cache_dir, ignore_errors=True))
    reg_dir = tempfile.mkdtemp(prefix="spp-bench-numba-")
    cleanup.push("numba cache " + reg_dir, lambda: shutil.rmtree(reg_dir, ignore_errors=True))
    cold_reg, reg_state = _register_once(dp, reg_dir, cleanup)
    cold, rss_cold, native_cold = _start_once(dp, opts.core, cache_dir, cleanup)
    warm, rss_warm, native_warm = _start_once(dp, opts.core, cache_dir, cleanup)
    warm_reg, _ = _register_once(dp, cache_dir, cleanup)
    wait_for(lambda: dp.free_count == dp.n_bufs, timeout=10, message="pool whole after the worker stopped")
    extra: dict[str, object] = {
        "cold_start_s": round(cold, 2), "warm_start_s": round(warm, 2),
        "rss_mib": round(rss_warm / 1024, 1), "rss_cold_mib": round(rss_cold / 1024, 1),
        "data_plane_mib": round(dp.seg.size / 2**20, 1), "native": native_cold and native_warm,
        "goal": "cold ≤ 30 s, warm ≤ 1.5 s", "cold_register_s": round(cold_reg, 2),
        "warm_register_s": round(warm_reg, 2), "register_state": reg_state,
    }
    peer = None
    if opts.peer:
        t0 = time.perf_counter()
        try:
            tp = Testpmd([*eal_args(unique_prefix("tpmd"), opts.core), "--vdev", "net_null0", "--vdev", "net_null1"],
                         ["--forward-mode=io", "--nb-cores=1"], cleanup)
        except BenchError as e:
            extra["peer_error"] = str(e)
            return [Result("memory", None, unit="s", extra=extra)]
        extra["peer_start_s"] = round(time.perf_counter() - t0, 2)
        extra["peer_rss_mib"] = round(rss_kib(tp.proc.pid) / 1024, 1)
        extra["peer_command"] = tp.command
        tp.quit()
        peer = "dpdk-testpmd (net_null x2, -m 1024 --no-huge)"
    return [Result("memory", None, peer=peer, unit="s", extra=extra)]
