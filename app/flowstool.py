"""`watchkeeper flows FILE… --json`: capture files -> flow documents as JSON lines on stdout
(no bus, no store).

Apart from app/commands.py so that app/cli.py can run it without importing the composition
root's tables (reports with matplotlib, the API, playbooks): that start-up is ~0.5 s on an idle
machine, a third of a 2 M-packet capture's whole run.
"""
from __future__ import annotations

import argparse
import os
import sys

from app.settings import load_settings


def flows_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", required=True, help="one JSON per line")
    parser.add_argument("--config", metavar="FILE")


def cmd_flows(args: argparse.Namespace) -> int:
    from collectors.capture import iter_flow_lines
    from watchkeeper.networks import InternalNetworks
    for path in args.files:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
    settings = load_settings(args.config)
    out = sys.stdout.buffer
    # The compiled flow table's lines are written without a dict per document
    # (collectors/capture/documents/flowjson.py), while a thread meters the next batch.
    for lines in iter_flow_lines(args.files, observer=settings.observer,
                                 networks=InternalNetworks(settings.internal_networks),
                                 config=settings.flow_table.flow_config(), app=False,
                                 site=settings.site, prefetch=True):
        out.write(lines)
    out.flush()
    return 0
