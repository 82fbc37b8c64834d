"""Files that reload themselves: Sigma rules, IOC feeds, any file-driven detector's input.

A file is re-read when its mtime or size changes; a file that is unusable as a whole (`fatal`)
never replaces the version already loaded (a half-saved edit must not drop working rules), and
every problem is kept with its file and line for the operator.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class FileLoad:
    """What one file gave: its items, every problem found, and whether the file as a whole is
    unusable (`fatal`: a broken file never replaces the version already loaded)."""
    items: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: bool = False

class WatchedFiles:
    """Loads files (or every matching file in a directory) and re-reads one when its mtime or
    size changes. Checks run at most every `every` seconds of *wall clock* (monotonic): a file's
    mtime is a wall-clock fact unrelated to event time, which stands still while no traffic
    arrives and races through a replay; the interval is an I/O budget, not a detection window."""

    def __init__(self, paths: tuple[str, ...], suffixes: tuple[str, ...],
                 load: Callable[[str, int, int], FileLoad], every: float,
                 clock: Callable[[], float] = time.monotonic):
        self.paths, self.suffixes, self.load, self.every, self.clock = (
            paths, suffixes, load, every, clock)
        self.loaded: dict[str, FileLoad] = {}
        self.errors: dict[str, list[str]] = {}     # per file, from its latest read
        self._stamps: dict[str, tuple[int, int]] = {}
        self._next = clock() + every
        self.refresh()

    def poll(self) -> bool:
        """True when the loaded content changed."""
        if self.clock() < self._next:
            return False
        self._next = self.clock() + self.every
        return self.refresh()

    def refresh(self) -> bool:
        files, changed = self._files(), False
        for gone in [f for f in self.loaded if f not in files]:
            del self.loaded[gone]
            self._stamps.pop(gone, None)
            changed = True
        for name, stat in files.items():
            if stat is not None and self._stamps.get(name) != stat:
                self._stamps[name] = stat
                changed |= self._read(name, stat)
        return changed

    def _read(self, name: str, stat: tuple[int, int]) -> bool:
        result = self.load(name, *stat)
        self.errors[name] = result.errors
        for error in result.errors:
            log.warning("%s", error)
        if result.fatal and name in self.loaded:
            log.warning("%s: unusable, keeping the version loaded before", name)
            return False
        self.loaded[name] = result
        return True

    def _files(self) -> dict[str, tuple[int, int] | None]:
        """Current files and their (mtime_ns, size); a configured path that is missing keeps its
        old content (it is likely being replaced), a file gone from a directory is dropped."""
        out: dict[str, tuple[int, int] | None] = {}
        for raw in self.paths:
            path = Path(raw)
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in self.suffixes
                           and p.is_file()) if path.is_dir() else [path]
            for file in found:
                try:
                    st = file.stat()
                    out[str(file)] = (st.st_mtime_ns, st.st_size)
                except OSError as exc:
                    self.errors[str(file)] = [f"{file}: {exc.strerror or exc}"]
                    out[str(file)] = None
        return out

    def items(self) -> list:
        return [item for result in self.loaded.values() for item in result.items]

    def all_errors(self) -> list[str]:
        return [e for errors in self.errors.values() for e in errors]
