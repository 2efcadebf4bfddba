"""``spp-nfv``: SPP's patch panel secondary (spp_nfv 19.11).

::

    spp-nfv --client-id N -s HOST:PORT -l CORES [--file-prefix P]
    spp_nfv -l 0,1 -n 4 --proc-type secondary -- -n 1 -s 127.0.0.1:6666   # DPDK style

It connects to spp-ctl's secondary port, registers as ``{"type": "nfv",
"client-id": N}`` and answers SPP's commands (:mod:`spp.lang`, grammar ``nfv``):
``status``, ``add PORT``, ``del PORT``, ``patch SRC DST``, ``patch reset``,
``forward``, ``stop``, ``exit``.  Patches run on a :class:`~spp.control.patch.PatchPanel`
whose worker uses the second core of ``-l`` (the first is the master lcore).

Replies are SPP's: ``status`` answers the bare object SPP's spp-ctl hands to
``GET /v1/nfvs/N`` (``client-id``, ``status`` running/idling, ``master-lcore``,
``lcores``, ``ports``, ``patches``); other commands answer
``{"results":[{"result":"success"}],"result":"succeeded","command":...}``; bad
input answers SPP's error reply (``results[0].error_details.message``), which
spp-ctl turns into ``400 command error: MESSAGE``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spp import lang, ops
from spp.control.patch import PatchError, PatchPanel
from spp.lang.wire import error as error_reply
from spp.lang.wire import success
from spp.runtime.dataplane import Dataplane

log = logging.getLogger("spp.nfv")


@dataclass(frozen=True)
class Options:
    """Parsed command line of spp-nfv."""

    client_id: int
    host: str
    port: int
    cores: list[int] | None
    file_prefix: str
    log_level: str
    pin: bool


def _server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid server {text!r}: expected HOST:PORT, e.g. 127.0.0.1:6666")
    return host, int(port)


def _cores(text: str) -> list[int]:
    try:
        return lang.parse_cores(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _client_id(text: str) -> int:
    try:
        return lang.integer(text, "client id", 0, 255)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: Sequence[str], prog: str = "spp-nfv") -> Options:
    """Our options, or SPP's ``EAL -- APP`` form (``-n`` after ``--`` is the client id)."""
    args = list(argv)
    eal: list[str] = []
    if "--" in args:
        cut = args.index("--")
        eal, args = args[:cut], args[cut + 1 :]
    eal_parser = argparse.ArgumentParser(add_help=False, prog=f"{prog} (EAL arguments)")
    eal_parser.add_argument("-l", dest="lcores", type=_cores, default=None)
    eal_parser.add_argument("--file-prefix", default=None)
    eal_ns, _ignored = eal_parser.parse_known_args(eal)
    parser = argparse.ArgumentParser(prog=prog, description="SPP's patch panel secondary")
    parser.add_argument("--client-id", "-n", dest="client_id", type=_client_id, required=True,
                        help="client id (the N of 'nfv N;'); SPP's -n N is the same")
    parser.add_argument("-s", "--server", type=_server, default=("127.0.0.1", 6666),
                        help="spp-ctl's secondary port HOST:PORT (default 127.0.0.1:6666)")
    parser.add_argument("-l", dest="lcores", type=_cores, default=None,
                        help="cores: the master lcore, then the forwarding core (e.g. 0,1; default: every CPU)")
    parser.add_argument("--file-prefix", default=None, help="data plane name, as given to spp-primary (default spp)")
    parser.add_argument("--vhost-client", action="store_true", help="vhost:N ports connect to a listening frontend")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the worker thread to its core")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    ops.add_version(parser)
    ns = parser.parse_args(args)
    host, port = ns.server
    if ns.vhost_client:
        from spp.ports.vhost import set_client_default

        set_client_default(True)
    return Options(ns.client_id, host, port, ns.lcores if ns.lcores is not None else eal_ns.lcores,
                   ns.file_prefix or eal_ns.file_prefix or "spp", ns.log_level, not ns.no_pin)


class Nfv:
    """The state and commands of one spp-nfv process (served by :class:`~spp.control.secondary.SecondaryClient`)."""

    process = "nfv"

    def __init__(self, dp: Dataplane, client_id: int, cores: Sequence[int], *, pin: bool = True) -> None:
        if not cores:
            raise ValueError("the core list is empty: give the master lcore and a forwarding core (e.g. -l 0,1)")
        self.dp = dp
        self.client_id = client_id
        self.cores = list(cores)
        self.panel = PatchPanel(dp, self.cores[1] if len(self.cores) > 1 else self.cores[0],
                                owner=f"spp-nfv {client_id}", pin=pin)

    def execute(self, line: str) -> dict[str, Any]:
        """One wire command → SPP's reply (never raises for bad input)."""
        try:
            return self.apply(lang.parse(line, "nfv"))
        except (lang.CommandError, PatchError) as e:
            return error_reply(str(e))

    def apply(self, cmd: lang.Command) -> dict[str, Any]:
        """Apply a parsed command; return its reply."""
        p = self.panel
        if isinstance(cmd, lang.Status):
            return self.status()
        if isinstance(cmd, lang.AddPort):
            p.add_port(cmd.port)
            return success(result="succeeded", command="add", port=str(cmd.port))
        if isinstance(cmd, lang.DelPort):
            p.del_port(cmd.port)
            return success(result="succeeded", command="del", port=str(cmd.port))
        if isinstance(cmd, lang.Patch):
            p.patch(cmd.src, cmd.dst)
            return success(result="succeeded", command="patch", ports={"src": str(cmd.src), "dst": str(cmd.dst)})
        if isinstance(cmd, lang.PatchReset):
            p.reset()
            return success(result="succeeded", command="patch")
        if isinstance(cmd, lang.Forward):
            p.forward()
            return success(result="succeeded", command="forward")
        if isinstance(cmd, lang.Stop):
            p.stop()
            return success(result="succeeded", command="stop")
        if isinstance(cmd, lang.Exit):
            self.exit()
            return success(result="succeeded", command="exit")
        raise lang.CommandError(f"{lang.render(cmd)!r} is not an spp-nfv command")  # pragma: no cover

    def status(self) -> dict[str, Any]:
        """SPP's nfv status object (bare, as spp_nfv sends it)."""
        state = self.panel.status()
        return {"client-id": self.client_id, "status": state["status"], "master-lcore": self.cores[0],
                "lcores": sorted({self.cores[0], self.panel.core}), "ports": state["ports"],
                "patches": state["patches"]}

    def exit(self) -> None:
        self.panel.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``spp-nfv``: run until ``exit`` or a signal."""
    from spp.control.secondary import serve_until_stopped

    opts = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(stream=sys.stderr, level=opts.log_level,
                        format=f"%(asctime)s %(levelname)s spp-nfv[{opts.client_id}]: %(message)s")
    try:
        dp = Dataplane.attach(opts.file_prefix)
    except (OSError, RuntimeError, ValueError) as e:
        log.error("cannot attach to the data plane %r: %s", opts.file_prefix, e)
        return 1
    try:
        nfv = Nfv(dp, opts.client_id, opts.cores if opts.cores is not None else sorted(os.sched_getaffinity(0)),
                  pin=opts.pin)
    except ValueError as e:
        log.error("%s", e)
        dp.close()
        return 1
    log.info("spp-nfv %d: master lcore %d, forwarding on core %d, data plane %r", opts.client_id, nfv.cores[0],
             nfv.panel.core, opts.file_prefix)
    # shared port mirrors (e.g. spp-pcap's tap) reach our ports
    return serve_until_stopped(dp, nfv, opts.host, opts.port, nfv.panel.ports, f"spp-nfv {opts.client_id}")


if __name__ == "__main__":
    sys.exit(main())
