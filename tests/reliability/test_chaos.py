"""Chaos: kill -9 any spp process under traffic, again and again; the pool never leaks.

The stack classifies and mirrors (spp-vf 1: ``gen`` ring:4 → ring:0, ``cls`` classifier
ring:0 → ring:1 (default); spp-mirror 2: ``mir`` mirror ring:1 → ring:2, ring:3 (shallow);
spp-vf 3: ``out`` merge ring:2, ring:3 → ring:5).  Beside it, the same shape at full
speed keeps every worker busy, so that kills land in the middle of calls (vf 1 ``load``
nullpmd:0 → ring:6, spp-mirror 2 ``mload`` ring:6 → ring:7, ring:8, vf 3 ``unload`` →
nullpmd:1): its buffers share the pool, so a buffer given back while in use would
show up as a corrupt frame on the checked path.  The test itself feeds ring:4 with
numbered frames whose every byte follows from their number and checks every frame
that arrives on ring:5 byte for byte (:class:`Traffic`, a thread that pauses with the
workers when the primary stops the world).  Each round SIGKILLs one of vf 1, mirror
2, vf 3 or the primary at a random moment, restarts it and applies its configuration
again.  Afterwards every survivor stops gracefully, and:

* no frame arrived corrupted, and none more often than the mirror makes copies (2): a
  buffer given back while still in use would be overwritten by a later frame;
* the pool is whole: what is in use is exactly what the rings hold, and nothing was
  freed twice;
* nothing stranded: every buffer in use is in a ring.

(Counters are not compared across a kill: a compiled worker publishes its counters
once per call, so a process killed mid-call takes up to one call's counts with it.)

``SPP_CHAOS_ROUNDS`` sets the rounds (CI: 4; by hand: ``SPP_CHAOS_ROUNDS=100 pytest -s
--timeout 0 tests/reliability/test_chaos.py``, about 10 minutes).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np

from spp.cli.stack import LocalStack
from spp.runtime import pause, ringcore
from spp.runtime.dataplane import HEADROOM, M_LEN, M_OFF, Dataplane
from spp.testing import wait_for

ROUNDS = int(os.environ.get("SPP_CHAOS_ROUNDS", "4"))
SECONDARY = "import sys; from spp.control.secondary import {0}; sys.exit({0}())"


def ok(http: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == 204, (method, path, body, response.text)


def component(http: httpx.Client, kind: str, cid: int, name: str, ctype: str,
              ports: list[tuple[str, str]]) -> None:
    ok(http, "POST", f"/v1/{kind}s/{cid}/components", {"name": name, "core": 1, "type": ctype})
    for port, d in ports:
        ok(http, "PUT", f"/v1/{kind}s/{cid}/components/{name}/ports", {"action": "attach", "port": port, "dir": d})


def configure(http: httpx.Client, name: str) -> None:
    """Apply process ``name``'s part of the scenario (as an operator would after a restart)."""
    if name == "vf1":
        component(http, "vf", 1, "gen", "forward", [(f"ring:{SOURCE}", "rx"), ("ring:0", "tx")])
        component(http, "vf", 1, "load", "forward", [("nullpmd:0", "rx"), ("ring:6", "tx")])
        component(http, "vf", 1, "cls", "classifier", [("ring:0", "rx"), ("ring:1", "tx")])
        ok(http, "PUT", "/v1/vfs/1/classifier_table",
           {"action": "add", "type": "mac", "mac_address": "default", "port": "ring:1"})
    elif name == "mirror2":
        component(http, "mirror", 2, "mir", "mirror", [("ring:1", "rx"), ("ring:2", "tx"), ("ring:3", "tx")])
        component(http, "mirror", 2, "mload", "mirror", [("ring:6", "rx"), ("ring:7", "tx"), ("ring:8", "tx")])
    elif name == "vf3":
        component(http, "vf", 3, "out", "merge", [("ring:2", "rx"), ("ring:3", "rx"), (f"ring:{SINK}", "tx")])
        component(http, "vf", 3, "unload", "merge", [("ring:7", "rx"), ("ring:8", "rx"), ("nullpmd:1", "tx")])


def start(stack: LocalStack, name: str) -> None:
    kind, cid = ("mirror", 2) if name == "mirror2" else ("vf", int(name[2:]))
    main = "main_mirror" if kind == "mirror" else "main_vf"
    stack.spawn(name, [sys.executable, "-c", SECONDARY.format(main), "--client-id", str(cid), "-s",
                       stack.secondary_addr, "--file-prefix", stack.prefix, "-l", "0,1", "--no-pin"])
    stack.wait_process({"type": kind, "client-id": cid}, 120, check=name)


SOURCE, SINK = 4, 5
FRAME = 128
#: Every frame: broadcast, a locally administered source, ethertype 0x88b5 (local experimental),
#: its number (4 bytes, little endian), then bytes that follow from the number.
HEAD = bytes.fromhex("ffffffffffff" "020000000001" "88b5")
BODY = np.arange(FRAME - len(HEAD) - 4, dtype=np.int64)


def frames(seqs: np.ndarray) -> np.ndarray:
    """The frames numbered ``seqs``, one row each."""
    out = np.empty((len(seqs), FRAME), np.uint8)
    out[:, : len(HEAD)] = np.frombuffer(HEAD, np.uint8)
    out[:, len(HEAD) : len(HEAD) + 4] = seqs.astype("<u4").view(np.uint8).reshape(-1, 4)
    out[:, len(HEAD) + 4 :] = (seqs[:, None] * 131 + BODY) & 0xFF
    return out


class Traffic(threading.Thread):
    """Feeds numbered frames into ring:SOURCE, checks each frame out of ring:SINK byte for byte.

    A member's thread touching rings: it takes a worker row and pauses between bursts when
    the primary stops the world, holding nothing (as workers do).
    """

    def __init__(self, dp: Dataplane) -> None:
        super().__init__(daemon=True, name="chaos traffic")
        self.dp = dp
        self.stop = threading.Event()
        self.sent = self.received = self.corrupt = 0
        self.copies = np.zeros(1 << 16, np.int32)  # deliveries per frame number
        self.error: BaseException | None = None

    def run(self) -> None:
        dp = self.dp
        cp = pause.Checkpoint(dp)
        ids = np.zeros(32, np.int32)
        out = np.zeros(256, np.int32)
        src, sink = (dp.ring_ctrl[SOURCE], dp.ring_slots[SOURCE]), (dp.ring_ctrl[SINK], dp.ring_slots[SINK])
        try:
            while not self.stop.is_set():
                if cp.requested():
                    cp.hold(lambda: None)
                if ringcore.ring_count(src[0]) < 128:  # keep the chain fed, not flooded
                    k = dp.alloc(ids)
                    seqs = np.arange(self.sent, self.sent + k, dtype=np.int64)
                    dp.data[ids[:k], HEADROOM : HEADROOM + FRAME] = frames(seqs)
                    dp.meta[ids[:k], M_LEN] = FRAME
                    acc = int(ringcore.ring_enqueue(*src, ids, 0, k))
                    if acc < k:
                        dp.free(ids[acc:k].copy())
                    self.sent += acc
                n = int(ringcore.ring_dequeue(*sink, out, 0, len(out)))
                if n:
                    self.check(out[:n])
                    dp.free(out, n)
                else:
                    time.sleep(0.0005)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            cp.close(lambda: None)

    def check(self, bufs: np.ndarray) -> None:
        dp = self.dp
        self.received += len(bufs)
        ok = (dp.meta[bufs, M_LEN] == FRAME) & (dp.meta[bufs, M_OFF] == HEADROOM)
        got = dp.data[bufs, HEADROOM : HEADROOM + FRAME]
        seqs = got[:, len(HEAD) : len(HEAD) + 4].copy().view("<u4").reshape(-1).astype(np.int64)
        ok &= (got == frames(seqs)).all(axis=1) & (seqs < self.sent)
        self.corrupt += int((~ok).sum())
        good = seqs[ok]
        if len(good) and good.max() >= len(self.copies):
            self.copies = np.concatenate([self.copies, np.zeros(max(len(self.copies), int(good.max()) + 1),
                                                                np.int32)])
        np.add.at(self.copies, good, 1)


def test_kill_anything_under_traffic_pool_stays_whole() -> None:
    rng = random.Random(int(os.environ.get("SPP_CHAOS_SEED", "7")))
    with LocalStack() as stack:
        stack.start_ctl(reply_timeout=120)
        stack.start_primary(extra=["--pool-size", "4096", "--rings", "10", "--ring-size", "256"])
        dp = Dataplane.attach(stack.prefix)
        traffic = Traffic(dp)
        try:
            with httpx.Client(base_url=stack.url, timeout=150) as http:
                for ring in (SOURCE, SINK):
                    ok(http, "PUT", "/v1/primary/ports", {"action": "add", "port": f"ring:{ring}"})
                names = ["vf1", "mirror2", "vf3"]
                for name in names:
                    start(stack, name)
                    configure(http, name)
                traffic.start()

                def delivered() -> int:
                    assert traffic.error is None, traffic.error
                    return traffic.received

                def state() -> str:
                    rings = {i: int(ringcore.ring_count(dp.ring_ctrl[i])) for i in range(dp.layout.n_rings)}
                    return f"sent {traffic.sent}, received {traffic.received}, queued {rings}"

                wait_for(lambda: delivered() > 1000, timeout=120, message=lambda: "traffic end to end: " + state())
                primaries = 1
                for round_ in range(ROUNDS):
                    victim = rng.choice([*names, "primary"])
                    print(f"chaos round {round_ + 1}/{ROUNDS}: kill -9 {victim}; {state()}", flush=True)
                    wait_for(lambda: True, timeout=rng.uniform(0.01, 0.3))  # a random moment
                    if victim == "primary":
                        proc = stack.procs[f"spp-primary{'' if primaries == 1 else f'-{primaries}'}"]
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        primaries += 1
                        wait_for(lambda: {"type": "primary"} not in (stack.processes() or []), timeout=60,
                                 message="spp-ctl to drop the primary")
                        stack.spawn(f"spp-primary-{primaries}", [
                            sys.executable, "-m", "spp.control.primary", "-s", f"{stack.host}:{stack.pri_port}",
                            "--file-prefix", stack.prefix])
                        stack.wait_process({"type": "primary"}, 60, check=f"spp-primary-{primaries}")
                    else:
                        stack.procs[victim].send_signal(signal.SIGKILL)
                        stack.procs[victim].wait()
                        kind, cid = ("mirror", 2) if victim == "mirror2" else ("vf", int(victim[2:]))
                        entry = {"type": kind, "client-id": cid}
                        wait_for(lambda e=entry: e not in (stack.processes() or []),  # type: ignore[misc]
                                 timeout=60, message=f"spp-ctl to drop {victim}")
                        start(stack, victim)
                        configure(http, victim)
                    mark = delivered()
                    wait_for(lambda m=mark: delivered() > m + 1000, timeout=120,  # type: ignore[misc]
                             message=lambda v=victim: f"traffic after killing {v}: " + state())  # type: ignore[misc]
                # every dead process handled: the primary has reclaimed (or found nothing to reclaim)
                wait_for(lambda: all(int(dp.members[r, 0]) == 0 or _alive(dp, r) for r in range(64)),
                         timeout=30, message="the primary to handle every dead process")
                for name, path in [("vf1", "/v1/vfs/1"), ("mirror2", "/v1/mirrors/2"), ("vf3", "/v1/vfs/3")]:
                    ok(http, "DELETE", path)
                    assert stack.procs[name].wait(30) == 0
                traffic.stop.set()
                traffic.join(30)
                assert traffic.error is None, traffic.error
                queued = sum(int(ringcore.ring_count(dp.ring_ctrl[i])) for i in range(dp.layout.n_rings))
                reclaimed = http.get("/v1/primary/status").json()["pool"]["reclaimed"]
                print(f"chaos: {ROUNDS} kills, {traffic.sent} frames sent, {traffic.received} received "
                      f"({traffic.corrupt} corrupt, most copies of one frame {int(traffic.copies.max())}), "
                      f"{reclaimed} buffers reclaimed, {queued} queued, {dp.in_use} in use, "
                      f"{dp.double_frees} double frees")
                assert traffic.corrupt == 0
                assert traffic.copies.max() <= 2  # the original and the mirror's copy
                assert dp.in_use == queued
                assert dp.double_frees == 0
        finally:
            traffic.stop.set()
            if traffic.is_alive():
                traffic.join(30)
            dp.close()


def _alive(dp: Dataplane, row: int) -> bool:
    from spp.runtime import members

    return members.start_time(int(dp.members[row, members.W_PID])) == int(dp.members[row, members.W_START])
