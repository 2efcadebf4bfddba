"""``spp``: SPP's CLI over REST, plus ``spp up``/``spp down``, ``spp demo`` and ``spp bench``.

::

    spp [-b HOST[:PORT]]... [-e COMMAND]... [--token T] [-s HOST:PORT] [--json]
    spp up FILE.yaml [-b HOST:PORT] [--dry-run]
    spp down [FILE.yaml] [-b HOST:PORT]
    spp top [-b HOST:PORT] [--interval S] [--once]
    spp demo [--seconds N] [--no-live]
    spp bench ...
    spp completion bash

``$SPP_CTL`` (``HOST:PORT``) and ``$SPP_TOKEN`` stand in for ``-b`` and ``--token``
(a token on the command line is visible in ``ps``).  Every command has ``--version``;
``--json`` prints status commands' replies as JSON.

Without ``-e``, commands come from standard input when it is not a terminal,
else from the interactive shell.  The exit status is 1 if any command failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from spp import ops
from spp.cli.client import CliError


def build_parser() -> argparse.ArgumentParser:
    """The parser of the CLI proper (sub-programs have their own)."""
    parser = argparse.ArgumentParser(
        prog="spp",
        description="Soft Patch Panel CLI: talks REST to spp-ctl. "
        "Also: 'spp up FILE.yaml', 'spp down [FILE.yaml]', 'spp demo', 'spp bench'.",
    )
    parser.add_argument("-b", "--bind-addr", action="append", default=[], metavar="HOST[:PORT]",
                        help=f"spp-ctl REST address (repeat for several nodes; default ${ops.ENV_CTL} or "
                        "127.0.0.1:7777)")
    parser.add_argument("-e", "--execute", action="append", default=[], metavar="COMMAND",
                        help="run COMMAND and exit (repeatable)")
    parser.add_argument("--token", default=ops.env(ops.ENV_TOKEN),
                        help=f"bearer token of spp-ctl's REST API (default: ${ops.ENV_TOKEN})")
    parser.add_argument("--json", action="store_true", help="status commands print JSON instead of tables")
    parser.add_argument("-s", "--secondary", default=None, metavar="HOST:PORT",
                        help="spp-ctl address secondaries launched by 'pri; launch' use (default: HOST:6666)")
    parser.add_argument("--history-file", type=Path, default=None,
                        help="history of the interactive shell (default: ~/.spp_history)")
    ops.add_version(parser)
    return parser


def _bench(argv: list[str]) -> int:
    try:
        from spp.bench.main import main as bench_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        print(f"spp bench: the benchmark module is not available in this installation ({exc})", file=sys.stderr)
        return 2
    result = bench_main(argv)
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``spp``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("up", "down"):
        from spp.cli.topology import main as topology_main

        return int(topology_main(args_list))
    if args_list and args_list[0] == "demo":
        from spp.cli.demo import main as demo_main

        return int(demo_main(args_list[1:]))
    if args_list and args_list[0] == "bench":
        if "--version" in args_list[1:]:
            print(ops.version_text("spp bench"))
            return 0
        return _bench(args_list[1:])
    if args_list and args_list[0] == "top":
        from spp.cli.top import main as top_main

        return int(top_main(args_list[1:]))
    if args_list and args_list[0] == "completion":
        from spp.cli.completion import main as completion_main

        return int(completion_main(args_list[1:]))
    args = build_parser().parse_args(args_list)
    from spp.cli.session import Session

    try:
        servers = args.bind_addr or ([ctl] if (ctl := ops.env(ops.ENV_CTL)) else [])
        session = Session(servers, token=args.token, secondary=args.secondary, json_output=args.json)
    except CliError as exc:
        print(f"spp: {exc}", file=sys.stderr)
        return 2
    try:
        if args.execute:
            ok = session.run_lines(args.execute)
        elif not sys.stdin.isatty():
            ok = session.run_lines(sys.stdin.read().splitlines())
        else:
            from spp.cli.shell import DEFAULT_HISTORY, run_shell

            ok = run_shell(session, history_file=args.history_file or DEFAULT_HISTORY)
    except KeyboardInterrupt:
        ok = False
    finally:
        session.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
