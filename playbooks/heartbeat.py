"""Which playbook workers are alive, so one never takes over a live one's runs.

A run belongs to the worker that saved it last; another worker takes it over once it has not
been saved for `takeover_seconds` (its worker stopped or died). Under a backlog that is not
enough: a live worker's queued runs can wait longer than that for their turn, and a second
worker then advanced them too (the step claims kept every action exactly once, but both
workers finished the run: two saves and two `playbook.run.end` audit records, seen at 10,000
alerts/min with two workers). So each worker also records that it is alive (one small
document per worker in the `runs` store, rewritten at most every quarter of
`takeover_seconds` from the threads that do its work), and runs are taken over only from a
worker that has been silent for `takeover_seconds`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from watchkeeper.store import Store, runs


@dataclass
class Heartbeat:
    store: Store
    worker_id: str
    takeover_seconds: float
    clock: Callable[[], float]
    _last: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        """Say this worker is alive, unless it said so less than a quarter period ago.
        Called from the work itself (ticks, advancing runs): a worker whose work hangs
        stops beating, and its runs are taken over."""
        now = self.clock()
        with self._lock:
            if self._last is not None and now - self._last < self.takeover_seconds / 4:
                return
            self._last = now
        runs.beat(self.store, self.worker_id, now)

    def live_workers(self) -> set[str]:
        """Workers (this one included) heard from within `takeover_seconds`."""
        return runs.live_workers(self.store, self.clock() - self.takeover_seconds)
