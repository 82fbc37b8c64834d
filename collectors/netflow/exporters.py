"""Bounded per-exporter state: which (exporter, observation domain) pairs the decoder
remembers templates, sampling rates, sequence numbers and init times for.

The exporter address is whatever a UDP sender typed and the domain is 32 bits it chose, so
every table keyed by them is a memory lever for anyone who can reach the port. netflume
caps each table on its own (10 000 entries); this caps the *pairs* together: the least
recently seen pair is evicted past `max_pairs`, and a pair silent for `idle_s` is evicted
by a sweep. Both are counted (`watchkeeper_netflow_exporter_evictions_total{reason}`).
A real exporter that is evicted re-sends its templates within minutes and is learned again.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from prometheus_client import Counter, Gauge

EVICTIONS = Counter("watchkeeper_netflow_exporter_evictions_total",
                    "(exporter, domain) state evicted", ["reason"])   # cap | idle
for _reason in ("cap", "idle"):
    EVICTIONS.labels(reason=_reason)
TRACKED = Gauge("watchkeeper_netflow_exporter_states",
                "(exporter, domain) pairs whose state the NetFlow decoder keeps")
_SWEEP_EVERY_S = 10.0
_VERSIONS = (5, 9, 10)


class ExporterStates:
    def __init__(self, forget: Callable[[object, object], None], max_pairs: int = 1024,
                 idle_s: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        """`forget(exporter, domain)` drops everything held for that pair."""
        self.forget = forget
        self.max_pairs = max_pairs
        self.idle_s = idle_s
        self.clock = clock
        self.evicted = {"cap": 0, "idle": 0}
        self._seen: OrderedDict[tuple, float] = OrderedDict()
        self._last_sweep = clock()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, exporter, domain) -> None:
        """A datagram of this pair arrived (call after the decoder stored its state)."""
        now = self.clock()
        key = (exporter, domain)
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_pairs:
            self._evict(next(iter(self._seen)), "cap")
        if now - self._last_sweep >= _SWEEP_EVERY_S:
            self.sweep(now)
        TRACKED.set(len(self._seen))

    def sweep(self, now: float | None = None) -> None:
        """Evict pairs idle longer than idle_s (the dict is in last-seen order)."""
        now = self.clock() if now is None else now
        self._last_sweep = now
        while self._seen:
            key, stamp = next(iter(self._seen.items()))
            if now - stamp <= self.idle_s:
                break
            self._evict(key, "idle")
        TRACKED.set(len(self._seen))

    def _evict(self, key: tuple, reason: str) -> None:
        del self._seen[key]
        self.forget(*key)
        self.evicted[reason] += 1
        EVICTIONS.labels(reason=reason).inc()


def forget_netflume(decoder, exporter, domain) -> None:
    """Drop a pair from netflume's sequence and sampling tables (templates are ours)."""
    sequence = decoder.sequence
    if sequence is not None:
        for version in _VERSIONS:
            stream = (exporter, domain, version)
            sequence.streams.pop(stream, None)
            sequence.missed.pop(stream, None)
            sequence.units.pop(stream, None)
    if decoder.sampling is not None:
        decoder.sampling.rates.pop((exporter, domain), None)
