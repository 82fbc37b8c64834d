"""Long-lived state and CPython's cyclic garbage collector.

A detection stage keeps millions of objects for hours (windows, per-host tables). CPython runs a
full collection each time the objects that survived grow by a quarter, and a full collection
walks every tracked container: its pause grows with the state. Measured on the source-keyed
detection stage (bench/latency.py, Kafka topology, 4.8k events/s): 16 full collections in 40 s,
0.06 s growing to 1.1 s each, collecting nothing — the tail of the event → alert latency.

`tick()`, called by the stage loop after each step, moves the objects alive now into the
permanent generation (`gc.freeze`, constant time) every FREEZE_EVERY_S, so collections walk only
what is newer. Every second: with 5 s the young region a full collection walked held up to 5 s
of new state, and full collections took 16 % of the source-keyed stage's CPU on
bench/pipeline.py's workload (1 s: 3 %). Frozen objects are still freed by reference counting;
only reference cycles among them would wait, so every THAW_EVERY_S they are thawed and one full
collection runs: one pause per period instead of one per quarter of growth. Process-wide,
shared by the stages of `run`.
"""
from __future__ import annotations

import gc
import threading
import time

FREEZE_EVERY_S = 1.0
THAW_EVERY_S = 900.0

_lock = threading.Lock()
_last_freeze = 0.0
_last_thaw = time.monotonic()


def tick(now: float | None = None) -> str | None:
    """Freeze or thaw if due (returns which, for tests); cheap to call after every step."""
    global _last_freeze, _last_thaw
    now = time.monotonic() if now is None else now
    if now - _last_freeze < FREEZE_EVERY_S or not _lock.acquire(blocking=False):
        return None
    try:
        if now - _last_thaw >= THAW_EVERY_S:
            gc.unfreeze()
            gc.collect()
            _last_thaw = _last_freeze = now
            return "thaw"
        gc.freeze()
        _last_freeze = now
        return "freeze"
    finally:
        _lock.release()
