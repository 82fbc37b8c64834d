"""Bring several consumer-group members to a settled assignment, as deployed workers get it.

Kafka assigns partitions during polls; a member that stops polling while another joins is
dropped from the next generation. So every member polls in its own thread until all of them
hold partitions at the same time, for two seconds in a row.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

# While members join, kafka-python's group and metadata steps are logged (captured by pytest,
# shown only if the join fails): a join that never settles is then diagnosable from the log.
_JOIN_LOGGERS = ("kafka.coordinator", "kafka.consumer.subscription_state", "kafka.cluster")


@contextlib.contextmanager
def _join_logged() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _JOIN_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def join_group(members: list, poll: Callable[[object], None],
               holds_partitions: Callable[[object], bool], timeout_s: float = 120.0) -> None:
    assigned = [False] * len(members)
    changes: list[list[tuple[float, bool]]] = [[] for _ in members]   # when each one flipped
    done, started = threading.Event(), time.monotonic()
    deadline = started + timeout_s

    def spin(i: int, member) -> None:
        while not done.is_set() and time.monotonic() < deadline:
            poll(member)
            holds = holds_partitions(member)
            if holds != assigned[i]:
                changes[i].append((round(time.monotonic() - started, 1), holds))
            assigned[i] = holds

    with _join_logged():
        threads = [threading.Thread(target=spin, args=(i, m)) for i, m in enumerate(members)]
        for thread in threads:
            thread.start()
        stable_since = None
        while time.monotonic() < deadline:
            if all(assigned):
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 2.0:
                    break
            else:
                stable_since = None
            time.sleep(0.1)
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    if not all(assigned):
        pytest.fail(f"group members were not all given partitions in {timeout_s:.0f}s; "
                    "(seconds, holds partitions) changes per member, last 20: "
                    f"{[member[-20:] for member in changes]}")
