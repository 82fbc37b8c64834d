"""Run an iterator one step ahead of its consumer, on a background thread; run jobs on
worker threads and hand their results over in order.

    for flows, apps in ahead(capture_chunks, depth=2): encode(flows)
    for lines in in_order(encoders, workers=2): out.write(lines)

The capture kernels release the GIL (kernels/build.py, kernels/jit.py), so on a machine with
two cores the flow meter can read and meter the next batch while the consumer writes the
documents of this one: `flows FILE --json` and the live capture process use both cores
instead of alternating on one.

The producer's exception is raised in the consumer, at the item where it happened. When the
consumer stops early (an error of its own, a closed pipe, `close()`), the producer is told to
stop at its next item and nothing waits forever.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def ahead(items: Iterable[T], depth: int = 2, name: str = "prefetch") -> Iterator[T]:
    """The items of `items` in order, produced up to `depth` ahead by a daemon thread."""
    handoff: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:        # handed to the consumer, raised there
            put(_Failed(exc))
            return
        put(_END)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def in_order(jobs: Iterable[Callable[[], T]], workers: int = 2, name: str = "encode",
             held: int | None = None) -> Iterator[T]:
    """Each job's result, in the jobs' order, with up to `workers` jobs running at once on
    worker threads and up to `held` (2 × workers by default) submitted or done but not yet
    handed over. Useful when the jobs release the GIL for most of their time, as the
    compiled document writer does. `held` > `workers` keeps every worker busy while the
    consumer handles a result (`flows --json` writing the last one)."""
    held = max(workers, held or 2 * workers)
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        running: deque = deque()
        for job in jobs:
            running.append(pool.submit(job))
            if len(running) >= held:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
