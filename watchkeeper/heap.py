"""Long-lived state and CPython's cyclic garbage collector.

A detection stage keeps millions of objects for hours (windows, per-host tables). CPython runs a
full collection each time the objects that survived grow by a quarter, and a full collection
walks every tracked container: its pause grows with the state. Measured on the source-keyed
detection stage (bench/latency.py, Kafka topology, 4.8k events/s): 16 full collections in 40 s,
0.06 s growing to 1.1 s each, collecting nothing — the tail of the event → alert latency.

`tick()`, called by the stage loop after each step, moves the objects alive now into the
permanent generation (`gc.freeze`, constant time) every FREEZE_EVERY_S, so collections walk only
what is newer. Every quarter of a second: a full collection comes every 70,000 allocations or
so once the old generation is small (right after a freeze it always is), and walks everything
not frozen. Measured with bench/detect_stage.py (source-keyed stage, bench/pipeline.py's
workload): freezing every 5 s left 36 % of the stage's CPU in the collector, every 1 s 24 %,
every 0.25 s 9 % (every step, 7 %). Frozen objects are still freed by reference counting;
only reference cycles among them would wait, so every THAW_EVERY_S they are thawed and one full
collection runs: one pause per period instead of one per quarter of growth. Process-wide,
shared by the stages of `run`.
"""
from __future__ import annotations

import gc
import threading
import time

FREEZE_EVERY_S = 0.25
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
