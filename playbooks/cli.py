"""`watchkeeper playbooks` (the worker role) and `watchkeeper playbooks check FOLDER…`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def options(parser: argparse.ArgumentParser) -> None:
    """The role's own arguments (app/roles.py adds the backends)."""
    parser.add_argument("action", nargs="?", choices=["run", "check"], default="run",
                        help="run (default): the worker; check: validate, run nothing")
    parser.add_argument("paths", nargs="*", metavar="FOLDER",
                        help="check: playbook folders or files")


def cmd_check(paths: list[str], out=None, err=None) -> int:
    """Every error of every file, then a summary; non-zero if any file is broken."""
    out, err = out or sys.stdout, err or sys.stderr
    from playbooks.loader import load_folders
    if not paths:
        print("playbooks check: name at least one FOLDER", file=err)
        return 2
    result = load_folders([Path(p) for p in paths])
    for error in result.errors:
        print(str(error), file=err)
    for name in sorted(result.playbooks):
        playbook = result.playbooks[name]
        print(f"ok {result.sources[name]}: {name} v{playbook.version} "
              f"({len(playbook.steps)} steps)", file=out)
    print(f"{len(result.playbooks)} playbooks valid, {len(result.errors)} errors", file=out)
    return 1 if result.errors else 0
