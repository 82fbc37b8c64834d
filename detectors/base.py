"""The detector contract.

A detector reads events of the datasets it declares, keeps per-key state that always expires,
and raises `AlertSpec`s. It runs on event time only: `on_timer(now)` receives the newest event
time seen, so a pcap replayed at full speed gives the same alerts as live traffic. It never
decides the response; dedup, suppression, incidents and playbooks come after it. The state
machinery (keyed state with a cap and expiry, typed snapshots, baselines, interim-flow
deltas, the re-raise rule, watched files, hit tables) is the toolkit in detectors/kit.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from watchkeeper.documents import AlertSpec


class DetectorConfig(BaseModel):
    """Typed parameters with documented defaults and bounds; unknown keys are errors."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class Detector(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    category: ClassVar[str]
    datasets: ClassVar[frozenset[str]]
    key_field: ClassVar[str] = "source.ip"   # the bus partition key this detector's state needs
    Config: ClassVar[type[DetectorConfig]]

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        """Update state with one event; return alerts it completes (often none)."""

    def on_timer(self, now: float) -> list[AlertSpec]:
        """Expire state older than the detector's windows (event time); may raise alerts."""
        return []

    @abstractmethod
    def snapshot(self) -> dict:
        """JSON-serialisable state, so a restarted worker resumes its windows."""

    @abstractmethod
    def restore(self, state: dict) -> None: ...


def replay(detector: Detector, events, timer_every: float = 5.0) -> list[AlertSpec]:
    """Feed events in order on event time, firing `on_timer` every `timer_every` seconds of
    event time: what the runner does for one partition, for tests and offline evaluation."""
    from watchkeeper import timeutil
    alerts: list[AlertSpec] = []
    next_timer = None
    for event in events:
        now = timeutil.parse(event["@timestamp"])
        alerts += detector.on_event(event, now)
        next_timer = now + timer_every if next_timer is None else next_timer
        if now >= next_timer:
            alerts += detector.on_timer(now)
            next_timer = now + timer_every
    return alerts
