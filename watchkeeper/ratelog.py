"""Rate-limited logging for lines that remote input can cause.

A sender can make a collector log once per datagram (a bad header, a new sampling rate, a
sequence gap per spoofed observation domain); unthrottled, that floods the log and the
disk. `limit(logger)` attaches a filter: the first `burst` records of a key class pass per
`interval`, the rest are counted, and once the interval is over one line says
"suppressed K similar messages in the last T s". The key class is the logger, level,
format string and argument *types*: never the argument values, which come from the wire.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

BURST = 5
INTERVAL_S = 60.0
_MAX_KEYS = 1024        # format strings come from code: a safety net, not a working limit


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0
    level: int = logging.WARNING
    logger: str = ""
    example: str = ""


class RateLimitFilter(logging.Filter):
    def __init__(self, burst: int = BURST, interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.suppressed_total = 0
        self._windows: dict[tuple, _Window] = {}
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._summarising = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self._summarising, "on", False):
            return True                    # our own summary line
        now = self.clock()
        with self._lock:
            due = self._sweep(now) if now - self._last_sweep >= 1.0 else []
            allowed = self._admit(_key(record), record, now)
        self._summarise(due)
        return allowed

    def _admit(self, key: tuple, record: logging.LogRecord, now: float) -> bool:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= _MAX_KEYS:
                self._windows.pop(next(iter(self._windows)))
            window = self._windows[key] = _Window(now, level=record.levelno,
                                                  logger=record.name,
                                                  example=_message(record))
        if window.passed < self.burst:
            window.passed += 1
            return True
        window.suppressed += 1
        self.suppressed_total += 1
        return False

    def _sweep(self, now: float) -> list[_Window]:
        """Windows whose interval is over: reset them, return those that suppressed lines."""
        self._last_sweep = now
        due = []
        for key, window in list(self._windows.items()):
            if now - window.start >= self.interval:
                if window.suppressed:
                    due.append(_Window(now - window.start, suppressed=window.suppressed,
                                       level=window.level, logger=window.logger,
                                       example=window.example))
                del self._windows[key]
        return due

    def flush(self) -> None:
        """Report every pending suppression now (at stop, and for tests)."""
        with self._lock:
            due = self._sweep(self.clock() + self.interval)
        self._summarise(due)

    def _summarise(self, due: list[_Window]) -> None:
        self._summarising.on = True
        try:
            for window in due:
                logging.getLogger(window.logger).log(
                    window.level, "suppressed %d similar messages in the last %.0f s (first: %s)",
                    window.suppressed, window.start, window.example)
        finally:
            self._summarising.on = False


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()[:200]
    except (TypeError, ValueError):
        return str(record.msg)[:200]


def _key(record: logging.LogRecord) -> tuple:
    args = record.args if isinstance(record.args, tuple) else ()
    return (record.name, record.levelno, str(record.msg)[:200],
            tuple(type(arg).__name__ for arg in args))


FILTER = RateLimitFilter()


def limit(*loggers: logging.Logger | str) -> None:
    """Rate-limit these loggers (idempotent). Filters on a logger see only the records
    logged on it, not a child's, so name each logger that remote input can reach."""
    for logger in loggers:
        target = logging.getLogger(logger) if isinstance(logger, str) else logger
        if FILTER not in target.filters:
            target.addFilter(FILTER)
