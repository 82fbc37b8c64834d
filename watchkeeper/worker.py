"""The loop every consuming stage runs: poll, process, write, then commit (at-least-once)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from watchkeeper import heap
from watchkeeper.bus import BusError, Consumer
from watchkeeper.liveness import Heartbeat
from watchkeeper.store import StoreError

log = logging.getLogger(__name__)


class StalledError(TimeoutError):
    """A stage owed work but made no progress for the configured time."""


@dataclass
class StepResult:
    consumed: int = 0
    written: int = 0
    alerts: int = 0
    deadlettered: int = 0

    def add(self, other: StepResult) -> StepResult:
        """Accumulate another step's counts into this one (returns self)."""
        self.consumed += other.consumed
        self.written += other.written
        self.alerts += other.alerts
        self.deadlettered += other.deadlettered
        return self


class Stage(Protocol):
    name: str
    consumer: Consumer

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult: ...

    def reset(self) -> None:
        """Drop progress newer than the last commit (a step failed half way): rewind the
        consumer, and forget any state built from the messages it will read again."""

    def close(self) -> None: ...


_RETRYABLE = (BusError, StoreError, OSError)


def _recover(stage: Stage, exc: Exception, backoff: float, wait) -> None:
    """After a failed step: read the uncommitted messages again, not past them."""
    log.warning("%s: %s; retrying in %.1fs", stage.name, exc, backoff)
    try:
        stage.reset()
    except _RETRYABLE as again:       # the bus is down too: the next step finds out
        log.warning("%s: rewind failed: %s", stage.name, again)
    wait(backoff)


def run_forever(stage: Stage, stop: threading.Event, max_backoff: float = 30.0,
                heartbeat: Heartbeat | None = None) -> None:
    """Run until `stop`, then finish what is already on the bus (the embedded bus forgets it
    at exit). An unreachable bus or store is retried with backoff, never fatal; `heartbeat`
    reports every step to the liveness watchdog, which may ask for a rejoin."""
    beat = heartbeat or Heartbeat(stage.name)
    unowned = getattr(stage.consumer, "unowned", None)     # test doubles may not say
    if unowned is not None:
        beat.watch_group(unowned, getattr(stage.consumer, "left_out", None))
    backoff = 0.5
    while not stop.is_set():
        if beat.rejoin_wanted():
            rejoin(stage, beat)
        try:
            result = stage.step()
            beat.step(result.consumed, _lag(stage))
            heap.tick()        # long-lived state out of the collector's way (heap.py)
            backoff = 0.5
        except _RETRYABLE as exc:
            _recover(stage, exc, backoff, stop.wait)
            backoff = min(max_backoff, backoff * 2)
    try:
        drain(stage, idle_polls=1, stall_s=10, max_rejoins=0)
    except (BusError, StoreError, OSError, TimeoutError) as exc:
        log.warning("%s: stopped with work left on the bus: %s", stage.name, exc)
    stage.close()


def rejoin(stage: Stage, beat: Heartbeat | None = None) -> bool:
    """Close the stage's consumer and join again; it resumes from the committed offsets."""
    try:
        stage.consumer.rejoin()
        ok = True
    except (BusError, OSError) as exc:
        log.warning("%s: rejoin failed: %s", stage.name, exc)
        ok = False
    if beat is not None:
        beat.rejoined(ok)
    return ok


def _lag(stage: Stage) -> int | None:
    try:
        return stage.consumer.lag()
    except (BusError, OSError) as exc:    # e.g. Kafka restarting: offsets cannot be listed now
        log.debug("%s: lag unknown: %s", stage.name, exc)
        return None


def drain(stage: Stage, idle_polls: int = 2, stall_s: float = 120.0,
          max_rejoins: int = 1, max_backoff: float = 10.0) -> StepResult:
    """Step until the stage has its partitions and nothing is left to read (for `ingest`).
    A failed step (store or bus down) is retried from the last commit with backoff. If
    nothing moves for `stall_s` while work is still owed, the consumer rejoins its group (up
    to `max_rejoins` times), then StalledError is raised.

    Progress is reading past the furthest point reached so far (the lowest lag), not merely
    reading: a stage whose write fails after every step rewinds and reads the same messages
    again, and that must end as a stall, not loop for ever."""
    total = StepResult()
    idle = rejoins = 0
    last_progress = time.monotonic()
    backoff = 0.5
    exact = getattr(stage.consumer, "exact_lag", False)    # test doubles may not say
    lag = _lag(stage) if exact else None
    lowest = lag
    # A stage may hold work it spaces out while it runs (detection: its checkpoint); drained,
    # it settles that now, so a drained stage has saved and committed what it read.
    settle = getattr(stage, "settle", None)
    while idle < idle_polls or settle is not None:
        if idle >= idle_polls:
            try:
                settle()
                break
            except _RETRYABLE as exc:
                _recover(stage, exc, backoff, time.sleep)
                backoff = min(max_backoff, backoff * 2)
                idle = 0
                continue
        if time.monotonic() - last_progress > stall_s:
            if rejoins >= max_rejoins:
                raise StalledError(f"{stage.name}: no progress for {stall_s:.0f}s (lag "
                                   f"{_lag(stage)})")
            log.warning("%s: no progress for %.0fs; rejoining the consumer group",
                        stage.name, stall_s)
            rejoins += 1
            rejoin(stage)
            last_progress = time.monotonic()
        # Nothing owed on a bus whose lag is exact: do not wait for messages that cannot come
        # (waiting 0.2 s per idle poll cost ~2 s per `ingest` round of five stages).
        timeout = 0.0 if lag == 0 and exact else 0.2
        try:
            result = stage.step(timeout=timeout)
        except _RETRYABLE as exc:
            _recover(stage, exc, backoff, time.sleep)
            backoff = min(max_backoff, backoff * 2)
            continue
        backoff = 0.5
        total.add(result)
        lag = _lag(stage)     # None while the broker is away (a restart): not progress, not idle
        if result.consumed and (lag is None or lowest is None or lag < lowest):
            last_progress = time.monotonic()
            rejoins = 0
        if lag is not None:
            lowest = lag if lowest is None else min(lowest, lag)
        idle = idle + 1 if result.consumed == 0 and lag == 0 else 0
    return total


class Stepping:
    """Stages stepped each by its own thread while the caller does something else (`ingest`
    publishing to Kafka), as `run` steps them: one stage's waits (a fetch, a bulk request in
    flight, an idle poll) are the others' running time, instead of each stage waiting its
    turn. Leaving the block stops every thread after its current step and hands the stages
    back for a final `drain`; `results[i]` holds what stage i's steps did. A failed step is
    retried from the last commit as in `run_forever`; any other error is raised on leaving."""

    def __init__(self, stages: list[Stage], max_backoff: float = 10.0):
        self.stages = stages
        self.results = [StepResult() for _ in stages]
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True,
                                          name=f"wk-step-{stage.name}")
                         for i, stage in enumerate(stages)]

    def __enter__(self) -> Stepping:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._errors and exc[0] is None:
            raise self._errors[0]

    def _loop(self, index: int) -> None:
        stage, total, backoff = self.stages[index], self.results[index], 0.5
        try:
            while not self._stop.is_set():
                try:
                    total.add(stage.step(timeout=0.2))
                    backoff = 0.5
                except _RETRYABLE as exc:
                    _recover(stage, exc, backoff, self._stop.wait)
                    backoff = min(self._max_backoff, backoff * 2)
        except Exception as exc:     # noqa: BLE001 - raised again in the caller's thread
            self._errors.append(exc)
