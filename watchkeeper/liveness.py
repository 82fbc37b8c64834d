"""Liveness of the consuming stages: per-stage heartbeats and a watchdog beside them.

Each stage loop reports every step to its `Heartbeat` (records consumed, lag). The
`Watchdog` runs in its own thread because a stage can hang *inside* a client call (seen:
kafka-python spinning in `ensure_coordinator_ready` after the broker dropped the member),
where no code of ours runs. When a stage owes work (lag > 0) and has made no progress, or
has not completed a step at all, for `stall_seconds`, the watchdog asks it to rejoin: the
loop closes its consumer and opens a new one, which resumes from the committed offsets
(idempotent ids make the re-read harmless). If the loop does not come back to perform the
rejoin within another `stall_seconds`, or `max_rejoins` rejoins in a row bring no progress,
the watchdog ends the process with `EXIT_STALLED` so a supervisor restarts it: a stuck
thread cannot be interrupted from Python, and a silent worker is worse than a restarted one.

A stage whose group leaves partitions to nobody owes no work (no member holds them, so no
member has a lag) and would look healthy for ever. So the watchdog also asks the group's
coordinator, every GROUP_CHECK_S, how many partitions of the stage's topics no member holds
(`Consumer.unowned`); partitions unowned for `stall_seconds` count as a stall, answered the
same way (a rejoin makes the group rebalance). The same answer tells whether the stage's own
member is left out of a group that would give it partitions (`Consumer.left_out`: its
JoinGroup lost, another member holding everything); that too is a stall after
`stall_seconds`, and the rejoin brings it back.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchkeeper import metrics

log = logging.getLogger(__name__)

EXIT_STALLED = 75    # EX_TEMPFAIL: "try again later" - what a supervisor should do
GROUP_CHECK_S = 10.0     # the group's ownership is asked at most this often (one request)
GROUP_BACKOFF = 6        # ... and GROUP_BACKOFF times less often while it cannot be told:
                         # a broker that is away makes each question wait for its timeout,
                         # and the same thread checks every stage


@dataclass(frozen=True)
class LivenessConfig:
    stall_seconds: float = 60.0       # no progress while work is owed -> rejoin
    max_rejoins: int = 3              # rejoins in a row without progress -> exit
    check_seconds: float | None = None   # default: stall_seconds / 10, within 0.2..5 s

    @property
    def check_every(self) -> float:
        if self.check_seconds is not None:
            return self.check_seconds
        return min(5.0, max(0.2, self.stall_seconds / 10))


@dataclass(frozen=True)
class StageStatus:
    """A read-only view of one stage for /health (times are epoch seconds)."""
    name: str
    state: str                 # ok | stalled | rejoining
    lag: int | None
    last_progress: float | None
    last_step: float | None
    restarts: int
    unowned: int | None = None     # partitions no member of its group holds (None: not told)
    left_out: bool | None = None   # its member holds nothing a settled group would give it


class Heartbeat:
    """What one stage loop tells the watchdog; every method is cheap and thread-safe."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        # exported at 0 from the start: a stage that never restarted still has its series
        metrics.STAGE_RESTARTS.labels(stage=name)
        now = clock()
        self._last_progress = now        # monotonic; starting counts as progress
        self._last_step = now
        self._progress_wall: float | None = None
        self._step_wall: float | None = None
        self._lag: int | None = None
        self._restarts = 0
        self._failed_rejoins = 0         # rejoins asked since the last progress
        self._rejoin_asked: float | None = None
        self._stalled = False
        self._unowned: Callable[[], int | None] | None = None
        self._group_asked = float("-inf")
        self._unowned_since: float | None = None   # partitions nobody holds, since
        self._unowned_count: int | None = None     # the group's last answer
        self._left_out: Callable[[], bool | None] | None = None
        self._left_out_since: float | None = None  # this member outside its group, since
        self._left_out_now: bool | None = None

    # -- called by the stage loop -------------------------------------------------------
    def step(self, consumed: int, lag: int | None) -> None:
        """A step completed (poll, write and commit all returned)."""
        now, wall = self._clock(), time.time()
        with self._lock:
            self._last_step, self._step_wall, self._lag = now, wall, lag
            if consumed or lag == 0:
                self._stalled = False
                # a member busy with its own partitions does not close the group's gap
                if self._unowned_since is None and self._left_out_since is None:
                    self._failed_rejoins = 0
            if consumed:
                self._last_progress, self._progress_wall = now, wall
        metrics.STAGE_LAG.labels(stage=self.name).set(-1 if lag is None else lag)
        if consumed:
            metrics.STAGE_PROGRESS.labels(stage=self.name).set(wall)

    def watch_group(self, unowned: Callable[[], int | None],
                    left_out: Callable[[], bool | None] | None = None) -> None:
        """Let the watchdog ask how many of the stage's partitions nobody in its group holds
        (`Consumer.unowned`) and whether its member is left out (`Consumer.left_out`);
        called from the watchdog's thread."""
        self._unowned, self._left_out = unowned, left_out

    def rejoin_wanted(self) -> bool:
        with self._lock:
            return self._rejoin_asked is not None

    def rejoined(self, ok: bool) -> None:
        """The loop closed and reopened its consumer (`ok`) or failed to."""
        with self._lock:
            self._rejoin_asked = None
            self._restarts += 1
            # the new member gets a full period to join the group and catch up
            now = self._last_progress = self._last_step = self._clock()
            if self._unowned_since is not None:
                self._unowned_since = now
            if self._left_out_since is not None:
                self._left_out_since = now
        if not ok:
            log.warning("%s: rejoin failed; the loop retries with backoff", self.name)
        metrics.STAGE_RESTARTS.labels(stage=self.name).inc()

    # -- called by the watchdog ---------------------------------------------------------
    def check(self, config: LivenessConfig) -> str | None:
        """None if healthy; else why this stage is fatally stuck. Asks for a rejoin when a
        stall starts."""
        now = self._clock()
        with self._lock:
            if self._rejoin_asked is not None:
                if now - self._rejoin_asked > config.stall_seconds:
                    return (f"did not come back to rejoin within {config.stall_seconds:.0f}s "
                            "(stuck inside a call)")
                return None
            reason = self._stall_reason(now, config.stall_seconds)
            if reason is None:
                return None
            if self._failed_rejoins >= config.max_rejoins:
                return f"{reason} after {self._failed_rejoins} rejoins"
            self._stalled = True
            self._failed_rejoins += 1        # reset by the next progress
            self._rejoin_asked = now
        log.warning("%s: %s; rejoining the consumer group", self.name, reason)
        return None

    def _stall_reason(self, now: float, stall_s: float) -> str | None:
        if now - self._last_step > stall_s:
            return f"no step completed for {now - self._last_step:.0f}s"
        if self._lag and now - self._last_progress > stall_s:
            return f"no progress for {now - self._last_progress:.0f}s with lag {self._lag}"
        if self._unowned_since is not None and now - self._unowned_since > stall_s:
            return (f"{self._unowned_count} partitions held by no member of the group for "
                    f"{now - self._unowned_since:.0f}s")
        if self._left_out_since is not None and now - self._left_out_since > stall_s:
            return (f"held no partition for {now - self._left_out_since:.0f}s while its group "
                    "has fewer members than partitions (left out of the group)")
        return None

    def ask_group(self) -> None:
        """Ask the group's coordinator (a request, made outside the lock) if it is time."""
        now = self._clock()
        if self._unowned is None or now - self._group_asked < GROUP_CHECK_S:
            return
        self._group_asked = now
        count = self._ask(self._unowned)
        out = self._ask(self._left_out) if self._left_out is not None else None
        if count is None:
            self._group_asked = self._clock() + (GROUP_BACKOFF - 1) * GROUP_CHECK_S
        with self._lock:
            if not count:            # all held, or cannot say: no evidence of a gap
                self._unowned_since = None
            elif self._unowned_since is None:
                self._unowned_since = now
            self._unowned_count = count
            if not out:
                self._left_out_since = None
            elif self._left_out_since is None:
                self._left_out_since = now
            self._left_out_now = out
        metrics.STAGE_UNOWNED.labels(stage=self.name).set(-1 if count is None else count)

    def _ask(self, question: Callable[[], object]) -> object:
        try:
            return question()
        except Exception as exc:    # noqa: BLE001 - a failed question must not stop the watchdog
            log.debug("%s: group ownership unknown: %s", self.name, exc)
            return None

    def status(self) -> StageStatus:
        with self._lock:
            state = ("rejoining" if self._rejoin_asked is not None
                     else "stalled" if self._stalled else "ok")
            return StageStatus(self.name, state, self._lag, self._progress_wall,
                               self._step_wall, self._restarts, self._unowned_count,
                               self._left_out_now)


class StageRegistry:
    """The stages of this process, by name (the fixed label of their metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, Heartbeat] = {}

    def add(self, name: str) -> Heartbeat:
        with self._lock:
            unique, n = name, 1
            while unique in self._beats:
                n += 1
                unique = f"{name}-{n}"
            beat = self._beats[unique] = Heartbeat(unique)
            return beat

    def heartbeats(self) -> list[Heartbeat]:
        with self._lock:
            return list(self._beats.values())

    def statuses(self) -> list[StageStatus]:
        return [beat.status() for beat in self.heartbeats()]


def _exit_stalled(message: str) -> None:
    log.critical("%s; exiting with status %d so a supervisor restarts this process",
                 message, EXIT_STALLED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_STALLED)   # the stuck thread cannot be joined: skip the orderly shutdown


class Watchdog:
    """Checks every heartbeat of `registry` each `check_every` seconds in a daemon thread."""

    def __init__(self, registry: StageRegistry, config: LivenessConfig,
                 on_fatal: Callable[[str], None] = _exit_stalled):
        self.registry = registry
        self.config = config
        self.on_fatal = on_fatal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        beats = self.registry.heartbeats()
        for beat in beats:
            fatal = beat.check(self.config)
            if fatal:
                self.on_fatal(f"{beat.name}: {fatal}")
        # The questions last: each is a request (up to its timeout), and one stage's question
        # must not delay the judgement of the next stage.
        for beat in beats:
            beat.ask_group()

    def start(self) -> Watchdog:
        self._thread = threading.Thread(target=self._run, name="wk-watchdog", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_every):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
