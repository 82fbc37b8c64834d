"""The tailers' small JSON state file: per followed path, its position and parser context.

Written atomically (temp file in the same directory, fsync, os.replace) so a crash leaves
either the old or the new state, never half of one. A missing or unreadable file means
"start from the beginning": deterministic event ids make the re-read harmless.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from collectors.tailers.follow import Position

log = logging.getLogger(__name__)
VERSION = 1


@dataclass
class FileState:
    position: Position | None = None
    context: dict = field(default_factory=dict)   # e.g. the Zeek header in force at `position`


def load_state(path: str) -> dict[str, FileState]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return {name: _entry(value) for name, value in data.get("files", {}).items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("tailer state %s unreadable (%s): reading every file from the start", path, exc)
        return {}


def _entry(value: dict) -> FileState:
    position = value.get("position")
    return FileState(Position.from_json(position) if position else None,
                     dict(value.get("context") or {}))


def save_state(path: str, files: dict[str, FileState]) -> None:
    payload = {"version": VERSION, "files": {
        name: {"position": st.position.to_json() if st.position else None, "context": st.context}
        for name, st in files.items()}}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tailers-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
