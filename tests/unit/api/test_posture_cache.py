"""api/posture_cache.py: fresh answers reused, stale ones served while one background
computation replaces them, too old or missing ones computed by the request; 0 = off."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.posture_cache import STALE_FACTOR, PostureCache


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return f"answer {self.calls}"


def test_off_computes_every_time(pool):
    cache, compute = PostureCache(0), Counter()
    assert [cache.get("/", 100.0, compute, pool) for _ in range(3)] == [
        "answer 1", "answer 2", "answer 3"]


def test_a_fresh_answer_is_reused_per_scope(pool):
    cache, compute = PostureCache(5), Counter()
    assert cache.get("/", 100.0, compute, pool) == "answer 1"
    assert cache.get("/", 104.9, compute, pool) == "answer 1"
    assert cache.get("county-a1", 104.9, compute, pool) == "answer 2"   # its own scope
    assert compute.calls == 2


def test_a_stale_answer_is_served_once_while_one_refresh_replaces_it(pool):
    cache, compute = PostureCache(5), Counter()
    cache.get("/", 100.0, compute, pool)
    release = threading.Event()

    def slow():
        release.wait(5)
        return "refreshed"
    assert cache.get("/", 106.0, slow, pool) == "answer 1"           # stale: at once
    assert cache.get("/", 106.5, slow, pool) == "answer 1"           # one refresh at a time
    release.set()
    pool.shutdown(wait=True)
    assert cache.get("/", 107.0, compute, pool) == "refreshed"        # fresh again (t = 106)


def test_too_old_or_failed_answers_are_computed_by_the_request(pool):
    cache, compute = PostureCache(5), Counter()
    cache.get("/", 100.0, compute, pool)
    assert cache.get("/", 100.0 + 5 * STALE_FACTOR, compute, pool) == "answer 2"

    def broken():
        raise RuntimeError("store down")
    assert cache.get("/", 126.0, broken, pool) == "answer 2"          # stale, refresh fails
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        PostureCache(5).get("/", 0.0, broken, pool)                    # nothing to serve
