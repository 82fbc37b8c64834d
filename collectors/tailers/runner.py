"""Tail Zeek logs and Suricata EVE files into the bus, at least once.

Each poll reads what every followed file has gained, parses it line by line, publishes the
documents (alerts to wk.alerts.raw, for the alerting stage), flushes the producer and only then saves the files' positions
(and the Zeek header in force) to the state file. A crash or a failed flush re-reads from the
last saved position; deterministic event ids make the repeats harmless.

    runner = TailRunner(publisher, ["/opt/zeek/logs/current/*.log", "/var/log/suricata/eve.json"],
                        state_file="/var/lib/watchkeeper/tailers.json")
    runner.run(stop_event)
"""
from __future__ import annotations

import glob
import logging
import os
import threading
from dataclasses import dataclass, fields
from typing import Protocol

from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher

from collectors.tailers.common import ALERT, HEADER, IGNORED, MALFORMED, Context, Parsed
from collectors.tailers.follow import READ_SIZE, Chunk, FileFollower
from collectors.tailers.state import FileState, load_state, save_state
from collectors.tailers.suricata import SuricataParser
from collectors.tailers.zeek import ZeekParser

log = logging.getLogger(__name__)
STAGE = "tailers"


class LineParser(Protocol):
    context: dict

    def parse(self, line: str) -> Parsed: ...
    def reset(self) -> None: ...
    def restore(self, context: dict) -> None: ...


@dataclass
class TailStats:
    lines_read: int = 0
    parsed: int = 0         # documents published (events and alerts)
    alerts: int = 0
    malformed: int = 0      # dead-lettered: unparsable, or failed validation
    ignored: int = 0        # valid input we do not map (other EVE types, other Zeek logs)
    headers: int = 0
    rotations: int = 0
    truncations: int = 0

    def add(self, other: TailStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class _Tail:
    follower: FileFollower
    parser: LineParser


def detect_format(path: str) -> str:
    """eve.json, eve-2024-03-11.json, eve.json.1 -> suricata; everything else is Zeek's."""
    name = os.path.basename(path)
    return "suricata" if name.startswith("eve") and ".json" in name else "zeek"


class TailRunner:
    def __init__(self, publisher: EventPublisher, paths: list[str], state_file: str,
                 poll_interval: float = 0.5, observer: str = "tailer",
                 networks: InternalNetworks | None = None, site: str | None = None,
                 formats: dict[str, str] | None = None, budget: int = 8 * READ_SIZE):
        self.publisher = publisher
        self.paths = list(paths)            # file names or glob patterns, re-expanded each poll
        self.state_file = state_file
        self.poll_interval = poll_interval
        self.formats = dict(formats or {})  # path or pattern -> "zeek" | "suricata"
        self.budget = budget                # bytes per file per poll: bounds memory and latency
        self.ctx = Context(observer, networks or InternalNetworks(), site)
        self.stats = TailStats()
        self._state: dict[str, FileState] = load_state(state_file)
        self._saved = dict(self._state)
        self._tails: dict[str, _Tail] = {}

    # -- the loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    busy = self.poll_once().lines_read > 0
                except Exception:   # a collector outlives a broker outage: retry from the state
                    log.exception("tailers: poll failed; re-reading from the saved positions")
                    busy = False
                if not busy:
                    stop.wait(self.poll_interval)
        finally:
            self.close()

    def poll_once(self) -> TailStats:
        stats = TailStats()
        self._discover()
        for path, tail in self._tails.items():
            try:
                chunks = tail.follower.poll(self.budget)
            except OSError as exc:
                log.warning("tailers: cannot read %s: %s", path, exc)
                continue
            for chunk in chunks:
                self._handle(tail, chunk, stats)
        self._commit()
        self.stats.add(stats)
        return stats

    def close(self) -> None:
        for tail in self._tails.values():
            tail.follower.close()
        self._tails.clear()

    # -- files -----------------------------------------------------------------------------
    def _discover(self) -> None:
        for pattern in self.paths:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for path in matches:
                if path not in self._tails and not path.endswith((".gz", ".bz2", ".xz")):
                    self._tails[path] = self._open(path, self.formats.get(pattern))

    def _open(self, path: str, fmt: str | None) -> _Tail:
        saved = self._state.get(path, FileState())
        kind = self.formats.get(path) or fmt or detect_format(path)
        parser_cls = SuricataParser if kind == "suricata" else ZeekParser
        parser = parser_cls(path, self.ctx)
        parser.restore(saved.context)
        return _Tail(FileFollower(path, saved.position), parser)

    def _commit(self) -> None:
        """Positions are saved only after the producer flushed what was read before them."""
        state = {}
        for path, tail in self._tails.items():
            position = tail.follower.position
            if position is not None:
                state[path] = FileState(position, tail.parser.context)
        if state == self._saved:
            return
        try:
            self.publisher.flush()
        except Exception:
            self._rewind()
            raise
        save_state(self.state_file, state)
        self._state = self._saved = state

    def _rewind(self) -> None:
        """Nothing read since the last save is known to be delivered: read it again."""
        self.close()
        self._state = dict(self._saved)

    # -- lines -----------------------------------------------------------------------------
    def _handle(self, tail: _Tail, chunk: Chunk, stats: TailStats) -> None:
        if chunk.new_file:
            tail.parser.reset()     # a Zeek header belongs to the file it was read from
        stats.rotations += chunk.rotated
        stats.truncations += chunk.truncated
        for line in chunk.lines:
            stats.lines_read += 1
            text = line.text.decode("utf-8", "backslashreplace")
            where = f"{chunk.path}:{line.offset}"
            if line.oversized:
                self._reject(f"line longer than {READ_SIZE} bytes", text, where, stats)
                continue
            try:
                parsed = tail.parser.parse(text)
            except Exception as exc:    # a bug must not stop the collector; keep the evidence
                log.exception("tailers: parser failed on %s", where)
                parsed = Parsed(MALFORMED, reason=f"parser error: {type(exc).__name__}: {exc}")
            self._dispatch(parsed, text, where, stats)

    def _dispatch(self, parsed: Parsed, text: str, where: str, stats: TailStats) -> None:
        if parsed.outcome == MALFORMED:
            self._reject(parsed.reason, text, where, stats)
        elif parsed.outcome == IGNORED:
            stats.ignored += 1
        elif parsed.outcome == HEADER:
            stats.headers += 1
        elif parsed.doc is not None:
            alert = parsed.outcome == ALERT
            topic = self.publisher.names.alerts_raw if alert else None
            if self.publisher.publish(parsed.doc, topic=topic):
                stats.parsed += 1
                stats.alerts += alert
            else:
                stats.malformed += 1    # failed validation: publish() dead-lettered it

    def _reject(self, reason: str, text: str, where: str, stats: TailStats) -> None:
        self.publisher.reject(reason, text, position=where)
        stats.malformed += 1
