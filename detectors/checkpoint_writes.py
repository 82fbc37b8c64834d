"""Checkpoint writes in the background, committed in order once stored.

A detection stage encodes a partition's state at once (it must match the partition's offset)
but need not wait while tens of MB travel to the store: the write runs on one background
thread, and the offsets it covers are committed by the stage's own thread (the consumer is not
thread-safe) when it is stored. Writes are kept in submission order; a failed one raises in
the stage, which then rewinds to its last commit.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

Offsets = dict[tuple[str, int], int]


class BackgroundWrites:
    def __init__(self, name: str):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-checkpoint")
        self._pending: deque[tuple[Future, Offsets, float]] = deque()

    def submit(self, write: Callable[[], None], offsets: Offsets, started: float) -> None:
        self._pending.append((self._pool.submit(write), offsets, started))

    def collect(self, commit: Callable[[Offsets], None], block: bool = False) -> float | None:
        """Commit the offsets of the writes done (all of them with `block`), oldest first;
        returns the seconds the last one took from its encoding to its commit."""
        took = None
        while self._pending and (block or self._pending[0][0].done()):
            future, offsets, started = self._pending.popleft()
            future.result()                 # a failed write raises here
            if offsets:
                commit(offsets)
            took = time.monotonic() - started
        return took

    def abandon(self) -> None:
        """Let the writes in flight finish, committing nothing."""
        while self._pending:
            self._pending.popleft()[0].exception()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
