"""Hit tables: one alert per (rule or indicator, actor) that updates in place as it repeats."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from detectors.kit.keyed import KeyedState
from detectors.kit.reraise import doubled
from watchkeeper.documents import AlertSpec

if TYPE_CHECKING:
    from detectors.base import Detector

MAX_EVIDENCE = 100


@dataclass
class Hit:
    """One (rule or indicator, actor) pair: the alert it raised and how it grew since."""
    first_seen: float
    last_seen: float
    context: dict                   # AlertSpec fields fixed at the first hit (JSON-safe)
    count: int = 0
    evidence: list[str] = field(default_factory=list)
    reported_count: int = 0
    reported_at: float = 0.0


class HitTable:
    """Repeats of one match update one alert (same entity, same first_seen, so the same alert
    id): it is raised at the first hit and whenever its count doubles, and `due()` sends the
    grown count of a busy pair at most every `update_seconds`. Pairs quiet for `idle_seconds`
    (event time) are forgotten; at most `max_tracked`, least recently seen dropped first."""

    def __init__(self, idle_seconds: float, update_seconds: float, max_tracked: int):
        self.idle, self.update, self.max_tracked = idle_seconds, update_seconds, max_tracked
        self.table: KeyedState[Hit] = KeyedState(Hit, max_tracked)

    @property
    def hits(self) -> dict[str, Hit]:
        return self.table.states

    def record(self, entity: str, event_time: float, event_id: str | None,
               context: dict) -> Hit | None:
        hit = self.table.touch(entity, lambda: Hit(event_time, event_time, context),
                               stale=lambda h: event_time - h.last_seen > self.idle)
        hit.first_seen = min(hit.first_seen, event_time)
        hit.last_seen = max(hit.last_seen, event_time)
        hit.count += 1
        if event_id and len(hit.evidence) < MAX_EVIDENCE and event_id not in hit.evidence:
            hit.evidence.append(event_id)
        return self._report(hit, event_time) if doubled(hit.count, hit.reported_count) else None

    def due(self, now: float) -> list[tuple[str, Hit]]:
        self.table.expire(lambda h: now - h.last_seen > self.idle)
        return [(e, self._report(h, now)) for e, h in self.hits.items()
                if h.count > h.reported_count and now - h.reported_at >= self.update]

    @staticmethod
    def _report(hit: Hit, now: float) -> Hit:
        hit.reported_count, hit.reported_at = hit.count, now
        return hit

    def snapshot(self) -> dict:
        return self.table.snapshot()

    def restore(self, state: dict) -> None:
        self.table.restore(state)


def hit_alert(detector: Detector, entity: str, hit: Hit) -> AlertSpec:
    return AlertSpec(detector=detector.name, detector_version=detector.version,
                     category=detector.category, entity=entity, first_seen=hit.first_seen,
                     last_seen=hit.last_seen, evidence=list(hit.evidence), count=hit.count,
                     **hit.context)
