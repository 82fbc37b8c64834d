"""The posture answer kept a few seconds per scope: every wall screen of a scope asks the same
thing, and at 10^6 alerts under live ingest computing it takes seconds on a small machine.

Stale-while-revalidate: an answer younger than `ttl` is served as is; an older one (up to
STALE_FACTOR × ttl) is still served at once while one background computation replaces it;
older, or none yet: the request computes and waits. So a screen's answer is at most
~ttl + one computation old, and only the first request of a scope waits for it.
`ttl` = 0 turns it off (create_app's default: tests read their own writes at once; the
composition root passes `feed.posture_cache_seconds`, docs/api-posture.md).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Executor

STALE_FACTOR = 4
MAX_SCOPES = 1000            # one entry per scope in use: a bound, not an LRU


class PostureCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._answers: dict[Hashable, tuple[float, object]] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float, compute: Callable[[], object],
            pool: Executor) -> object:
        if self.ttl <= 0:
            return compute()
        with self._lock:
            found = self._answers.get(key)
            age = now - found[0] if found else None
            if found and 0 <= age < self.ttl:
                return found[1]
            stale_ok = found is not None and 0 <= age < self.ttl * STALE_FACTOR
            if stale_ok and key not in self._refreshing:
                self._refreshing.add(key)
                pool.submit(self._refresh, key, now, compute)
        if stale_ok:
            return found[1]
        answer = compute()
        self._keep(key, now, answer)
        return answer

    def _refresh(self, key: Hashable, now: float, compute: Callable[[], object]) -> None:
        try:
            self._keep(key, now, compute())
        except Exception:                 # noqa: BLE001 - the next request computes it itself
            pass
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _keep(self, key: Hashable, now: float, answer: object) -> None:
        with self._lock:
            if len(self._answers) >= MAX_SCOPES:
                self._answers.clear()
            self._answers[key] = (now, answer)
