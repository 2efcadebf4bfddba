"""``spp-ctl``: command line entry point (``spp.ctl.main:main``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from spp.ctl.server import CtlConfig, CtlService
from spp.ops import ENV_TOKEN, add_log_options, add_version, env, notify_ready, setup_logging

LOG = logging.getLogger("spp.ctl")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``spp-ctl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="spp-ctl", description="SPP controller: relays REST requests to SPP processes."
    )
    parser.add_argument(
        "-b", "--bind-addr", default="localhost", help="bind address of all three ports (default: localhost)"
    )
    parser.add_argument(
        "-p", "--pri-port", type=_port, default=5555, help="port the primary connects to (default: 5555)"
    )
    parser.add_argument(
        "-s", "--sec-port", type=_port, default=6666, help="port secondaries connect to (default: 6666)"
    )
    parser.add_argument("-a", "--api-port", type=_port, default=7777, help="REST API port (default: 7777)")
    parser.add_argument("--token", default=env(ENV_TOKEN),
                        help=f"require 'Authorization: Bearer TOKEN' on every REST request (default: ${ENV_TOKEN}; "
                        "the variable keeps the token out of 'ps')")
    parser.add_argument(
        "--timeout", type=_positive, default=5.0, help="seconds to wait for a process's reply (default: 5)"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (default: INFO)"
    )
    add_log_options(parser)
    add_version(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run spp-ctl until SIGINT/SIGTERM; return the process exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format, static={"process": "spp-ctl"})
    config = CtlConfig(
        bind_addr=args.bind_addr,
        primary_port=args.pri_port,
        secondary_port=args.sec_port,
        api_port=args.api_port,
        token=args.token,
        timeout=args.timeout,
    )
    try:
        service = CtlService(config)
    except OSError as exc:
        LOG.error("%s", exc.strerror or exc)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(service))
    return 0


async def _serve(service: CtlService) -> None:
    """Run ``service``; SIGINT and SIGTERM stop it cleanly (exit status 0)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.stop)
    notifier = asyncio.create_task(_notify_ready(service))
    try:
        await service.run()
    finally:
        notifier.cancel()


async def _notify_ready(service: CtlService) -> None:
    """Tell systemd (``Type=notify``) once all three listeners accept connections."""
    while not service.ready.is_set():
        await asyncio.sleep(0.01)
    notify_ready()


if __name__ == "__main__":
    sys.exit(main())
