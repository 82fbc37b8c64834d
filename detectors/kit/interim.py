"""Interim flow records: the collector reports a long flow while it runs (`final: false`),
each record carrying the flow's cumulative counters. A detector that sums volume must count
only the growth since the previous record of the same flow (`watchkeeper.flow.uid`)."""
from __future__ import annotations

from detectors.kit.events import part


class InterimDelta:
    """Last cumulative value per open flow; at most `cap` flows (the oldest dropped)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.seen: dict[str, float] = {}     # uid -> value already counted
        self.evicted = 0

    def advance(self, event: dict, total: float) -> float | None:
        """The value already counted for this record's flow (None: a flow not seen before),
        and remember `total` while the flow is open (a final record closes it)."""
        flow = part(event, "watchkeeper", "flow")
        uid, final = flow.get("uid", ""), flow.get("final", True)
        if final:
            return self.seen.pop(uid, None)
        before = self.seen.get(uid)
        if before is None and len(self.seen) >= self.cap:
            self.seen.pop(next(iter(self.seen)))
            self.evicted += 1
        self.seen[uid] = total
        return before

    def snapshot(self) -> dict:
        return dict(self.seen)

    def restore(self, raw: dict) -> None:
        self.seen = dict(raw)
