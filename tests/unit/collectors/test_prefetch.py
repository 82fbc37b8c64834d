"""collectors/capture/prefetch.py: an iterator run one step ahead on a thread."""
from __future__ import annotations

import threading

import pytest

from collectors.capture.prefetch import ahead


def test_items_arrive_in_order_and_all_of_them():
    assert list(ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(ahead([])) == []


def test_the_producer_runs_on_another_thread_and_ahead_of_the_consumer():
    produced = []

    def items():
        for i in range(5):
            produced.append((i, threading.current_thread().name))
            yield i

    it = ahead(items(), depth=2, name="meter-test")
    assert next(it) == 0
    # the producer has gone on without being asked (up to `depth` items queued)
    for _ in range(200):
        if len(produced) >= 3:
            break
        threading.Event().wait(0.01)
    assert len(produced) >= 3
    assert {name for _, name in produced} == {"meter-test"}
    assert list(it) == [1, 2, 3, 4]


def test_the_producers_error_is_raised_where_it_happened():
    def items():
        yield 1
        yield 2
        raise ValueError("corrupt record header")

    it = ahead(items())
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(ValueError, match="corrupt record header"):
        next(it)


def test_a_consumer_that_stops_early_stops_the_producer():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    it = ahead(endless(), depth=2)
    assert next(it) == 0
    it.close()                      # what `for` does on break or error
    alive = [t for t in threading.enumerate() if t.name == "prefetch"]
    assert not alive, "the producer thread is still running after close()"


def test_workers_stay_busy_while_the_consumer_holds_a_result():
    from collectors.capture.prefetch import in_order
    done = [threading.Event() for _ in range(6)]

    def job(i):
        def run():
            done[i].set()
            return i
        return run

    it = in_order((job(i) for i in range(6)), workers=2)
    assert next(it) == 0
    # The consumer is busy with result 0 and asks for nothing: both workers went on.
    assert done[1].wait(5) and done[2].wait(5), "a worker waited for the consumer"
    assert list(it) == [1, 2, 3, 4, 5]


def test_at_most_held_results_wait_for_the_consumer():
    from collectors.capture.prefetch import in_order
    started = []

    def job(i):
        return lambda: started.append(i) or i

    it = in_order((job(i) for i in range(10)), workers=2, held=3)
    assert next(it) == 0
    threading.Event().wait(0.2)
    assert len(started) <= 3                 # 0 handed over, 1 and 2 held: no more submitted
    assert list(it) == list(range(1, 10))
