"""Collector health for the screen, from the status documents collectors already publish
(watchkeeper/status.py: cumulative counters every `status_seconds`, stored as events of
dataset `watchkeeper.collector`): events/s, last seen, kernel drops, dead letters, silent.

The collectors present are found by a group count over the last day; only the two newest
status documents of each are read (the rate is the difference of their counters).
"""
from __future__ import annotations

from dataclasses import dataclass

from watchkeeper import timeutil
from watchkeeper.status import DATASET
from watchkeeper.store.base import Query

LOOKBACK = 86400                 # a collector silent for a day still shows (as silent)
SILENT_AFTER = 60.0              # no status for this long: silent (status every 10 s default)
# the counter that says "events out" for each collector kind, first present wins
OUTPUT_COUNTERS = ("records_published", "parsed", "flows_published", "flows", "packets")
DEADLETTER_COUNTERS = ("malformed", "malformed_packets", "records_unusable")


@dataclass
class CollectorHealth:
    observer: str
    collector: str
    site: str | None
    last_seen: str
    silent: bool
    events_per_second: float
    kernel_drops: int
    dropped: int
    dead_letters: int
    counters: dict
    # Kernel drops between its two newest reports (or since its start, on the first): the
    # capture is losing packets now; the detections fed by it see part of the traffic.
    dropping: bool = False
    recent_drops: int = 0
    stopped: bool = False       # its newest report is the last of a clean stop


def collector_health(reader, now: float) -> list[CollectorHealth]:
    base = Query(since=now - LOOKBACK, until=now + 1, terms={"event.dataset": [DATASET]},
                 limit=2)
    groups = reader.group_counts("events", ["observer.name", "watchkeeper.collector.name"], base)
    found = []
    for g in groups:
        observer, collector = g.keys
        if observer is None or collector is None:
            continue
        query = Query(since=base.since, until=base.until, limit=2, terms={
            "event.dataset": [DATASET], "observer.name": [observer],
            "watchkeeper.collector.name": [collector]})
        latest = reader.search("events", query).items
        if latest:
            found.append(_health(observer, collector, latest, now))
    return found


def _health(observer: str, collector: str, latest: list[dict], now: float) -> CollectorHealth:
    newest = latest[0]
    counters = _counters(newest)
    seen = timeutil.parse(newest["@timestamp"])
    silent = now - seen > SILENT_AFTER
    recent = 0 if silent else _recent_drops(latest)
    return CollectorHealth(
        observer=observer, collector=collector,
        site=(newest.get("labels") or {}).get("site"),
        last_seen=newest["@timestamp"], silent=silent, dropping=recent > 0, recent_drops=recent,
        stopped=bool(((newest.get("watchkeeper") or {}).get("collector") or {}).get("final")),
        events_per_second=round(_rate(latest), 3),
        kernel_drops=counters.get("kernel_drops", 0), dropped=counters.get("dropped", 0),
        dead_letters=sum(counters.get(name, 0) for name in DEADLETTER_COUNTERS),
        counters=counters)


def _counters(doc: dict) -> dict[str, int]:
    raw = ((doc.get("watchkeeper") or {}).get("collector") or {}).get("counters") or {}
    return {k: v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def _same_run(newest: dict, older: dict | None) -> bool:
    return older is not None and (older.get("event") or {}).get("start") == \
        (newest.get("event") or {}).get("start")


def _recent_drops(latest: list[dict]) -> int:
    """Kernel drops reported between the two newest reports of one run (since its start when
    there is only one)."""
    now_drops = _counters(latest[0]).get("kernel_drops", 0)
    older = latest[1] if len(latest) > 1 else None
    before = _counters(older).get("kernel_drops", 0) if _same_run(latest[0], older) else 0
    return max(0, now_drops - before)


def _output(counters: dict[str, int]) -> int:
    return next((counters[name] for name in OUTPUT_COUNTERS if name in counters), 0)


def _rate(latest: list[dict]) -> float:
    """Events/s between the two newest reports of one run; since its start if only one."""
    newest = latest[0]
    t1 = timeutil.parse(newest["@timestamp"])
    out1 = _output(_counters(newest))
    older = latest[1] if len(latest) > 1 else None
    same_run = older is not None and (older.get("event") or {}).get("start") == \
        newest["event"].get("start")
    if same_run:
        t0, out0 = timeutil.parse(older["@timestamp"]), _output(_counters(older))
    else:
        start = newest["event"].get("start")
        t0, out0 = (timeutil.parse(start) if start else t1), 0
    return (out1 - out0) / (t1 - t0) if t1 > t0 and out1 >= out0 else 0.0


def deadletters_by_stage(store, now: float) -> dict[str, int]:
    """Dead letters stored in the last day, per stage (whole store: root principals only)."""
    query = Query(since=now - LOOKBACK, until=now + 1, limit=1)
    return {str(b.key): b.count for b in store.terms("deadletter", "watchkeeper.deadletter.stage",
                                                       query, 50)}


def posture_warnings(health: list[CollectorHealth]) -> list[dict]:
    """The posture's detection-health warnings: captures dropping packets, silent collectors
    (docs/detection-health.md); messages for people, zh-CN."""
    warnings = []
    for h in health:
        where = {"observer": h.observer, "collector": h.collector, "site": h.site}
        if h.silent and not h.stopped:
            warnings.append({**where, "kind": "collector_silent", "message":
                             f"采集器 {h.collector}（{h.observer}）自 {h.last_seen} 起无上报："
                             f"依赖它的检测看不到这段时间的数据"})
        elif h.dropping:
            warnings.append({**where, "kind": "kernel_drops", "message":
                             f"采集器 {h.collector}（{h.observer}）正在丢包（最近 "
                             f"{h.recent_drops} 个）：期间的检测结果不完整"})
    return warnings
