"""The stage loop keeps long-lived state out of the cyclic collector's walks (heap.py)."""
from __future__ import annotations

import gc
import weakref

from watchkeeper import heap


class _Node:
    def __init__(self):
        self.me = self                           # a reference cycle


def test_tick_freezes_what_is_alive_then_thaws_and_collects_on_schedule():
    start = 1e9                                  # far from any real monotonic time
    heap._last_freeze, heap._last_thaw = 0.0, start
    state = [{"host": i} for i in range(1000)]   # a detector's long-lived table
    try:
        assert heap.tick(start) == "freeze"
        assert gc.get_freeze_count() >= len(state)
        assert heap.tick(start + heap.FREEZE_EVERY_S / 2) is None      # not due yet
        assert heap.tick(start + heap.FREEZE_EVERY_S) == "freeze"

        # A reference cycle that became garbage while frozen is reclaimed at the thaw.
        node = _Node()
        gone = weakref.ref(node)
        assert heap.tick(start + 2 * heap.FREEZE_EVERY_S) == "freeze"
        del node
        gc.collect()
        assert gone() is not None                # frozen: the collector does not walk it
        assert heap.tick(start + heap.THAW_EVERY_S) == "thaw"
        assert gc.get_freeze_count() == 0
        assert gone() is None
    finally:
        gc.unfreeze()
        heap._last_freeze, heap._last_thaw = 0.0, 0.0
