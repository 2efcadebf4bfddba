"""A stand-in for spp-vf / spp-mirror launched by the primary in tests.

Takes the secondary's command line (``--client-id N -s HOST:PORT --file-prefix P
[-l CORES] [--copy MODE]``), connects to spp-ctl as a fake secondary and runs until
SIGTERM or until spp-ctl drops it.  Writes its argv to ``$SPP_FAKE_ARGV_DIR`` if set.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from spp.testing.fake_secondary import FakeSecondary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-id", type=int, required=True)
    parser.add_argument("-s", required=True)
    parser.add_argument("--file-prefix", required=True)
    parser.add_argument("-l", default=None)
    parser.add_argument("--copy", default=None)
    parser.add_argument("--kind", default="vf")
    args = parser.parse_args()
    out_dir = os.environ.get("SPP_FAKE_ARGV_DIR")
    if out_dir:
        with open(os.path.join(out_dir, f"{args.kind}{args.client_id}.json"), "w") as f:
            json.dump(sys.argv[1:], f)
    host, _, port = args.s.rpartition(":")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fake = FakeSecondary(host, int(port), args.client_id, args.kind)
    fake.on("exit", lambda _cmd: (stop.set(), {"results": [{"result": "success"}]})[1])
    fake.connect()
    while not stop.wait(0.05):
        if not fake.connected:
            break
    fake.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
