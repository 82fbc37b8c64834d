"""Silent collectors and capture gaps, from the status reports collectors publish
(watchkeeper/status.py): what detection health (docs/detection-health.md) is built on.

A collector is *silent* when it was sending (its input counter — packets, datagrams
received — else its output counter, above zero) and then, for
`silent_after` seconds, either stopped reporting at all (`stopped`: the process died, hung or
lost the bus) or kept reporting with an output counter that did not move (`idle`: the
router, host or mirror port feeding it went quiet). Stateless: two reads per collector (its
newest report, and its newest report at least `silent_after` old), so the API, the alerting
stage and any number of their replicas agree.

A silence is identified by (observer, collector, run start, output count when it went quiet):
the same silence seen again gives the same id (one alert per silence); a collector that
comes back and falls silent again has moved its count, so that is a new silence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from watchkeeper import schema, timeutil
from watchkeeper.collector_health import (DATASET, LOOKBACK, OUTPUT_COUNTERS, _counters,
                                          collector_health)
from watchkeeper.store.base import Query


# What says "input is arriving": frames and datagrams taken in first (a capture's `flows` only
# moves when a flow ends), then the collector's output counter.
ACTIVITY_COUNTERS = ("packets", "received", *OUTPUT_COUNTERS)


def _activity(counters: dict[str, int]) -> int:
    return next((counters[name] for name in ACTIVITY_COUNTERS if name in counters), 0)


@dataclass(frozen=True)
class Silence:
    observer: str
    collector: str
    site: str | None
    kind: Literal["stopped", "idle"]
    since: str                  # ISO UTC: its last report (stopped) / output unchanged since
    output: int                 # the output count it stopped at
    run_start: str | None

    @property
    def id(self) -> str:
        return schema.stable_id("collector-silent", self.observer, self.collector,
                                self.run_start or "", self.output)


@dataclass(frozen=True)
class CaptureGap:
    """A capture collector losing packets in the kernel right now."""
    observer: str
    collector: str
    site: str | None
    recent_drops: int


def _reports(reader, observer: str, collector: str, since: float, until: float,
             limit: int) -> list[dict]:
    query = Query(since=since, until=until, limit=limit, terms={
        "event.dataset": [DATASET], "observer.name": [observer],
        "watchkeeper.collector.name": [collector]})
    return reader.search("events", query).items


def silences(reader, now: float, silent_after: float) -> list[Silence]:
    """Every collector that was sending and has been silent for `silent_after` seconds."""
    base = Query(since=now - LOOKBACK, until=now + 1, terms={"event.dataset": [DATASET]},
                 limit=2)
    found = []
    for group in reader.group_counts("events", ["observer.name", "watchkeeper.collector.name"],
                                     base):
        observer, collector = group.keys
        if observer is None or collector is None:
            continue
        newest = _reports(reader, observer, collector, now - LOOKBACK, now + 1, 1)
        if newest:
            silence = _silence(reader, observer, collector, newest[0], now, silent_after)
            if silence is not None:
                found.append(silence)
    return found


def _silence(reader, observer: str, collector: str, newest: dict, now: float,
             silent_after: float) -> Silence | None:
    output = _activity(_counters(newest))
    if output <= 0:                      # never sent anything: not "was sending"
        return None
    if ((newest.get("watchkeeper") or {}).get("collector") or {}).get("final"):
        return None                      # stopped cleanly (its last report says so)
    start = (newest.get("event") or {}).get("start")
    site = (newest.get("labels") or {}).get("site")
    if now - timeutil.parse(newest["@timestamp"]) > silent_after:
        return Silence(observer, collector, site, "stopped", newest["@timestamp"], output, start)
    older = _reports(reader, observer, collector, now - LOOKBACK, now - silent_after, 1)
    if not older or (older[0].get("event") or {}).get("start") != start:
        return None
    if _activity(_counters(older[0])) != output:
        return None
    return Silence(observer, collector, site, "idle", older[0]["@timestamp"], output, start)


def capture_gaps(reader, now: float) -> list[CaptureGap]:
    """Collectors whose kernel drops grew between their two newest reports."""
    return [CaptureGap(h.observer, h.collector, h.site, h.recent_drops)
            for h in collector_health(reader, now) if h.dropping]
