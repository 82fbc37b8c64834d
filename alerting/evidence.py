"""Evidence quality: an alert raised while its evidence may be incomplete says so.

When a packet capture is dropping frames in the kernel, or a collector is silent, the
detections that read its events see only part of the traffic: what they raise may be late,
under-counted, or a fragment of something larger, and what they do not raise proves nothing.
The alerting stage stamps every alert raised meanwhile (docs/detection-health.md):

    watchkeeper.alert.evidence_quality: "complete" | "partial"
    watchkeeper.alert.evidence_gaps: [{kind: kernel_drops | collector_silent, observer,
                                       collector, count}]

Only the gaps of the alert's own site count when both carry one (a sensor in another city
losing packets says nothing about this one). Alerts of the Suricata tailer (`ids`) and the
silent-collector alerts themselves are not judged. The gaps are read from the store's
status reports at most every `ttl_s` seconds; a store error keeps the last answer.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchkeeper.collector_silence import capture_gaps, silences

log = logging.getLogger(__name__)
NOT_JUDGED_DETECTORS = ("collector_health", "suricata")


@dataclass(frozen=True)
class Gap:
    kind: str                 # kernel_drops | collector_silent
    observer: str
    collector: str
    site: str | None
    count: int                # drops since the previous report / output count it stopped at

    def as_doc(self) -> dict:
        return {"kind": self.kind, "observer": self.observer, "collector": self.collector,
                "count": self.count}


def read_gaps(store, now: float, silent_after: float) -> list[Gap]:
    gaps = [Gap("kernel_drops", g.observer, g.collector, g.site, g.recent_drops)
            for g in capture_gaps(store, now)]
    gaps += [Gap("collector_silent", s.observer, s.collector, s.site, s.output)
             for s in silences(store, now, silent_after)]
    return gaps


class GapCache:
    """The current gaps, re-read at most every `ttl_s` seconds."""

    def __init__(self, store, silent_after: float, ttl_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store, self.silent_after, self.ttl_s = store, silent_after, ttl_s
        self.monotonic = monotonic
        self._gaps: list[Gap] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, now: float) -> list[Gap]:
        with self._lock:
            if self._read_at is None or self.monotonic() - self._read_at >= self.ttl_s:
                try:
                    self._gaps = read_gaps(self.store, now, self.silent_after)
                except Exception as exc:  # noqa: BLE001 - alerting must not stop for this
                    log.warning("detection health: cannot read collector status (%s)", exc)
                self._read_at = self.monotonic()
            return list(self._gaps)


def stamp(alert: dict, gaps: list[Gap]) -> None:
    """Set the alert's evidence quality from the gaps in force (in place)."""
    info = alert["watchkeeper"]["alert"]
    if info.get("detector") in NOT_JUDGED_DETECTORS or info.get("category") == "ids":
        return
    site = (alert.get("labels") or {}).get("site")
    relevant = [g for g in gaps if site is None or g.site is None or g.site == site]
    info["evidence_quality"] = "partial" if relevant else "complete"
    if relevant:
        info["evidence_gaps"] = [g.as_doc() for g in relevant]
    else:
        info.pop("evidence_gaps", None)
