"""A paced traffic generator (``python -m spp.bench.gen``): AF_PACKET with a TPACKET_V2 tx ring.

It enters network namespace ``--ns`` (if given), fills every slot of a tx ring on
``--iface`` with the same ``--size``-byte frame once, then for ``--seconds`` hands
the kernel as many slots as the rate calls for (``--rate`` Mpps) in batches of at
most ``--batch``, one non-blocking ``send`` per batch, bypassing the qdisc.  A slot
the kernel has not finished with stops a batch (the shortfall is made up later, so
the average rate holds unless the path cannot take it).  It prints ``ready`` once
the ring is set up, waits for a ``go`` line, and ends with ``sent N SECONDS``.
"""

from __future__ import annotations

import argparse
import mmap
import os
import socket
import struct
import sys
import time

import numpy as np
from numba import njit

from spp.runtime.atomics import load_acquire, store_release

SOL_PACKET = 263
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_QDISC_BYPASS = 20
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST = 1
TX_DATA_OFF = 32  # TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)
FRAME_SIZE = 2048
BLOCK_SIZE = 1 << 16
BLOCKS = 64


def frame(size: int) -> bytes:
    """A unicast frame to a locally administered address, EtherType 0x88b5 (local experimental)."""
    head = bytes.fromhex("02aabbccdd01" "02aabbccdd02" "88b5")
    return (head + bytes(range(256)) * 8)[:size]


def udp_frame(size: int, flow: int) -> bytes:
    """An IPv4/UDP frame (198.18.0.1 → 198.18.0.2, RFC 2544's range) from source port 1024 + ``flow``."""
    ip_len = size - 14
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0, bytes([198, 18, 0, 1]),
                               bytes([198, 18, 0, 2])))
    c = sum(struct.unpack("!10H", bytes(ip)))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    struct.pack_into("!H", ip, 10, ~c & 0xFFFF)
    udp = struct.pack("!HHHH", 1024 + flow, 9, ip_len - 20, 0)
    body = bytes(ip) + udp
    return bytes.fromhex("02aabbccdd01" "02aabbccdd02" "0800") + body + bytes(size - 14 - len(body))


@njit(cache=True, nogil=True)
def _hand_over(words: np.ndarray, pos: int, want: int, nr: int, stride: int, size: int) -> int:
    """Mark up to ``want`` free slots from ``pos`` on for sending; return how many (stops at a busy slot)."""
    k = 0
    while k < want:
        w = ((pos + k) % nr) * stride
        if load_acquire(words, w) != 0:
            break
        words[w + 1] = size  # tp_len
        store_release(words, w, TP_STATUS_SEND_REQUEST)
        k += 1
    return k


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spp.bench.gen", description=__doc__)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--ns", default=None, help="network namespace to enter first")
    ap.add_argument("--rate", type=float, required=True, help="Mpps")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--core", type=int, default=None)
    ap.add_argument("--flows", type=int, default=0,
                    help="0: one non-IP frame; N: IPv4/UDP frames from N source ports, slot by slot")
    args = ap.parse_args(argv)
    if args.core is not None and args.core in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.core})
    if args.ns:
        from pyroute2 import netns

        netns.setns(args.ns)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
    sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    nr = BLOCK_SIZE // FRAME_SIZE * BLOCKS
    sock.setsockopt(SOL_PACKET, PACKET_TX_RING, struct.pack("IIII", BLOCK_SIZE, BLOCKS, FRAME_SIZE, nr))
    sock.bind((args.iface, 0))
    ring = mmap.mmap(sock.fileno(), BLOCK_SIZE * BLOCKS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    words = np.frombuffer(ring, np.uint32)
    data = np.frombuffer(ring, np.uint8).reshape(nr, FRAME_SIZE)
    if args.flows:
        for i in range(nr):
            data[i, TX_DATA_OFF : TX_DATA_OFF + args.size] = np.frombuffer(udp_frame(args.size, i % args.flows),
                                                                           np.uint8)
    else:
        data[:, TX_DATA_OFF : TX_DATA_OFF + args.size] = np.frombuffer(frame(args.size), np.uint8)
    status = words.reshape(nr, FRAME_SIZE // 4)[:, 0]
    _hand_over(words, 0, 0, nr, FRAME_SIZE // 4, args.size)  # compile (or load) before "ready"
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    rate = args.rate * 1e6
    sent = 0
    pos = 0
    t0 = time.perf_counter()
    end = t0 + args.seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        want = min(int(rate * (now - t0)) - sent, args.batch)
        if want <= 0:
            time.sleep(0.0001)
            continue
        k = int(_hand_over(words, pos, want, nr, FRAME_SIZE // 4, args.size))
        if k == 0:  # the ring is full: the kernel still holds the slots (a veth frees them in softirq)
            try:
                sock.send(b"", socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            continue
        try:
            sock.send(b"", socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        pos = (pos + k) % nr
        sent += k
    elapsed = time.perf_counter() - t0
    # let the kernel finish what was handed over, then report
    deadline = time.monotonic() + 2
    while np.any(status == TP_STATUS_SEND_REQUEST) and time.monotonic() < deadline:
        try:
            sock.send(b"", socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        time.sleep(0.001)
    print(f"sent {sent} {elapsed:.6f}", flush=True)
    del words, data, status
    ring.close()
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
