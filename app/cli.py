"""The `watchkeeper` command (DESIGN.md §7)."""
from __future__ import annotations

import argparse
import logging
import sys

from watchkeeper import __version__
from watchkeeper.memory import limit_malloc_arenas


def build_parser() -> argparse.ArgumentParser:
    """Subcommands from the two tables: roles (app/roles.py) and tools (app/commands.py)."""
    from app import commands, roles   # here, not at import: see main()
    parser = argparse.ArgumentParser(prog="watchkeeper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"watchkeeper {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for entry in (*commands.TOOLS[:1], *roles.ROLES, *commands.TOOLS[1:]):   # `run` first
        entry.options(sub.add_parser(entry.name, help=entry.help))
    return parser


def light_parser(argv: list[str]) -> argparse.ArgumentParser | None:
    """For `watchkeeper flows …` only (named first): a parser of that tool alone, which runs
    it without importing the two tables (app/flowstool.py says why); else None."""
    if not argv or argv[0] != "flows":
        return None
    from app import flowstool
    parser = argparse.ArgumentParser(prog="watchkeeper", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    flows = sub.add_parser("flows", help="pcap -> flow records on stdout (no bus, no store)")
    flowstool.flows_options(flows)
    flows.set_defaults(light_main=flowstool.cmd_flows, verbose=False)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "light_main", None):
        return args.light_main(args)
    from app import commands, roles
    handlers = {entry.name: entry.main for entry in (*roles.ROLES, *commands.TOOLS)}
    return handlers[args.command](args)


def main(argv: list[str] | None = None) -> int:
    # Before any thread (watchkeeper/memory.py): the tables' imports load numpy, whose
    # OpenBLAS starts one, so importing this module loads neither.
    limit_malloc_arenas()
    argv = sys.argv[1:] if argv is None else argv
    args = (light_parser(argv) or build_parser()).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # Client libraries log every failed connection attempt; our own messages say it once.
        for noisy in ("kafka", "elastic_transport", "elasticsearch", "uvicorn.error"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # `watchkeeper alerts --json | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except Exception as exc:
        code = failure_code(exc)
        if code is None:
            raise
        if code == 2:
            print(f"watchkeeper: {exc}", file=sys.stderr)
        else:
            # A stage or backend failed mid-run: one line that says what, never a traceback.
            print(f"watchkeeper {args.command}: failed: {exc}", file=sys.stderr)
        return code


def failure_code(exc: Exception) -> int | None:
    """2 for a refused configuration or input, 1 for a stage or backend that failed, None
    for anything else (a bug: its traceback is shown). The classes are imported here, not at
    the top, so that `flows` starts without the bus, store and worker modules."""
    from watchkeeper.bus import BusError, BusUnavailable
    from watchkeeper.config import ConfigError
    from watchkeeper.store import StoreError, StoreUnavailable
    from watchkeeper.worker import StalledError
    if isinstance(exc, (ConfigError, BusUnavailable, StoreUnavailable, ValueError)):
        return 2
    if isinstance(exc, (StalledError, BusError, StoreError)):
        return 1
    return None


if __name__ == "__main__":
    sys.exit(main())
