"""Bring several consumer-group members to a settled assignment, as deployed workers get it.

Kafka assigns partitions during polls; a member that stops polling while another joins is
dropped from the next generation. So every member polls in its own thread until all of them
hold partitions at the same time, for two seconds in a row.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest


def join_group(members: list, poll: Callable[[object], None],
               holds_partitions: Callable[[object], bool], timeout_s: float = 120.0) -> None:
    assigned = [False] * len(members)
    done, deadline = threading.Event(), time.monotonic() + timeout_s

    def spin(i: int, member) -> None:
        while not done.is_set() and time.monotonic() < deadline:
            poll(member)
            assigned[i] = holds_partitions(member)

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
        pytest.fail("group members were not all given partitions in time")
