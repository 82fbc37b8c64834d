"""When did the detection processes of a `supervise` run stop working? Their CPU time, read
from /proc every second in a thread: a stage that has caught up waits in its poll and uses
next to no CPU, so the end of its work is the end of the last second it was busy in. "Busy"
is over half a core for two seconds running: once caught up, a stage still saves its
partitions' state one at a time (in bench/pipeline.py's workload, bursts of 0.25-0.48 of a
core within one second, 10-15 s apart), which is not detection; detecting, the two stages
used 1.0-1.5 cores together.

bench/processes.py needs this because a stage's progress is not visible from outside until
it commits, and it commits at checkpoints spaced by their cost (detectors/runner.py: up to a
minute apart when the state is large), which would time the checkpoint spacing, not the
detection."""
from __future__ import annotations

import os
import threading
import time

_HZ = os.sysconf("SC_CLK_TCK")


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

    def last_busy(self, share: float = 0.5, run: int = 2) -> float | None:
        """The end of the last of `run` intervals in a row in which the processes used more
        than `share` of a core (perf_counter time), or None if they never did."""
        busy, streak = None, 0
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:]):
            streak = streak + 1 if c1 - c0 > share * (t1 - t0) else 0
            if streak >= run:
                busy = t1
        return busy
