"""`watchkeeper supervise`: every consuming stage as its own process, on one machine.

The local form of the compose topology (docker-compose.yml: one service per role): each
stage is a `watchkeeper <role>` child process, so no two stages share an interpreter lock,
and a stage scales by starting more processes in its consumer group
(`--processes index=2,detect-source=2`). Needs Kafka: the embedded bus lives inside one
process. A child that exits is started again after a back-off; SIGTERM/SIGINT stop every
child with SIGTERM (each finishes its batch and leaves its group) and wait for them.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from app import options

# stage -> the role command that runs it (DESIGN.md §4: source-keyed detection publishes the
# re-keyed topics the re-keyed stages read)
STAGES: dict[str, list[str]] = {
    "detect-source": ["detect", "--stage", "source"],
    "detect-rekeyed": ["detect", "--stage", "rekeyed"],
    "alerting": ["alerting"],
    "index": ["index"],
    "correlate": ["correlate"],
    "playbooks": ["playbooks"],
}
DEFAULT = {name: 1 for name in STAGES}
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)


def parse_counts(text: str) -> dict[str, int]:
    """'index=2,detect-source=2' over the defaults; `stage=0` leaves a stage out."""
    counts = dict(DEFAULT)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, number = item.partition("=")
        if name not in STAGES:
            raise ValueError(f"--processes: unknown stage {name!r} (one of {', '.join(STAGES)})")
        if not number.isdigit() or int(number) > 64:
            raise ValueError(f"--processes: {item!r}: give a count from 0 to 64, e.g. {name}=2")
        counts[name] = int(number)
    return counts


@dataclass
class Child:
    stage: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def children_for(counts: dict[str, int], backend_args: list[str]) -> list[Child]:
    command = [sys.executable, "-m", "app.cli"]
    return [Child(stage, [*command, *STAGES[stage], *backend_args])
            for stage, count in counts.items() for _ in range(count)]


def supervise(children: list[Child], stop: threading.Event, env: dict[str, str],
              grace_s: float = 30.0) -> int:
    """Start every child, restart those that exit, until `stop`; then stop them all."""
    for child in children:
        child.start(env)
    while not stop.wait(0.5):
        now = time.monotonic()
        for child in children:
            code = child.process.poll() if child.process else None
            if child.process is not None and code is not None:
                child.exits.append(code)
                delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                print(f"supervise: {child.stage} exited with {code}; restarting in {delay} s",
                      file=sys.stderr, flush=True)
                child.process, child.next_start = None, now + delay
                child.restarts += 1
            elif child.process is None and now >= child.next_start:
                child.start(env)
    for child in children:
        child.stop()
    deadline = time.monotonic() + grace_s
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    return 0


def supervise_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("--processes", default="", metavar="STAGE=N,…",
                        help=f"processes per stage (default 1 each): {', '.join(STAGES)}")


def cmd_supervise(args: argparse.Namespace) -> int:
    from app.settings import settings_from_args
    settings = settings_from_args(args)
    if not settings.bus.startswith(("kafka://", "kafka+rdkafka://")):
        raise ValueError("supervise: stages in separate processes share the bus through "
                         "Kafka; give --bus kafka://HOST:PORT (memory:// lives in one process)")
    counts = parse_counts(args.processes)
    backend_args = [arg for flag in ("config", "bus", "store")
                    if getattr(args, flag, None) for arg in (f"--{flag}", getattr(args, flag))]
    env = {**os.environ, "WATCHKEEPER_BUS": settings.bus, "WATCHKEEPER_STORE": settings.store}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    children = children_for(counts, backend_args)
    print(f"supervise: {len(children)} processes: "
          + ", ".join(f"{name}×{n}" for name, n in counts.items() if n), file=sys.stderr,
          flush=True)
    return supervise(children, stop, env)
