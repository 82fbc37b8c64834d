"""When did the detection processes of a `supervise` run stop working? Their CPU time, read
from /proc every second in a thread: a stage that has caught up waits in its poll and uses
next to no CPU, so its work ended with the last second it was busy in before a calm. "Busy"
is over half a core for two seconds running; detecting, the stages use 1.0-1.5 cores
together. Once caught up, a stage still saves its partitions' state: those whose stream
stopped 5 s after their last read, back to back (a burst over half a core, after the calm),
then any others one at a time (bursts of 0.25-0.48 of a core within one second, 10-15 s
apart). Neither is detection.

bench/processes.py needs this because a stage's progress is not visible from outside until
it commits, and it commits at checkpoints spaced by their cost (detectors/runner.py: up to a
minute apart when the state is large), which would time the checkpoint spacing, not the
detection."""
from __future__ import annotations

import os
import threading
import time

_HZ = os.sysconf("SC_CLK_TCK")
# Seconds under half a core after which detection counts as done (StageCpu.last_busy): under
# the 5 s a stopped partition waits before its state is saved.
CALM_S = 4.0


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, ...), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(parent: int, word: str) -> list[int]:
    """Processes started by `parent` with `word` among their arguments."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat(entry)
        if fields is None or int(fields[1]) != parent:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if word.encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue          # gone meanwhile
    return found


def _cpu_seconds(pid: int) -> float | None:
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _HZ  # utime+stime


class StageCpu:
    """Samples (time, summed CPU seconds) of `parent`'s children whose arguments include
    `word` (e.g. "detect"), every `every` seconds until `stop()`."""

    def __init__(self, parent: int, word: str = "detect", every: float = 1.0):
        self.parent, self.word, self.every = parent, word, every
        self.samples: list[tuple[float, float]] = []
        self._last: dict[int, float] = {}      # per process, so one that exits keeps its time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stage-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in _children(self.parent, self.word):
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    self._last[pid] = seconds
            self.samples.append((time.perf_counter(), sum(self._last.values())))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def last_busy(self, share: float = 0.5, run: int = 2, after: float | None = None,
                  calm_s: float = CALM_S) -> float | None:
        """When the detection work ended (perf_counter time): the end of the first `run`
        intervals in a row above `share` of a core (after `after`) that are followed by
        `calm_s` seconds under it; else the end of the last such run; None if never busy.

        The calm marks the end because of what comes after it: a stage that has caught up
        saves each partition whose stream stopped `checkpoint_every_s` (5 s) after its last
        read (detectors/runner.py, since 2026-12-05), back to back: a burst over half a core
        that is not detection. Taken as detection, those saves put its end 5-10 s late."""
        busy, streak, calm_from = None, 0, None
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:]):
            if after is not None and t1 <= after:
                continue
            if c1 - c0 > share * (t1 - t0):
                streak, calm_from = streak + 1, None
                if streak >= run:
                    busy = t1
                continue
            streak = 0
            calm_from = t0 if calm_from is None else calm_from
            if busy is not None and t1 - calm_from >= calm_s:
                return busy
        return busy
