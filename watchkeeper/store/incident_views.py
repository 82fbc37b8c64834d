"""Read-side views of incidents: the timeline of one, and MTTA/MTTR per site and level.

The timeline is assembled from records that exist anyway, so a new kind of activity needs no
change here: the incident's own creation, its alerts (their event time), and every audit record
whose object is the incident (level, status, reports, links, escalation, comments, and
playbook runs once the playbooks package audits them with `object_id` = the incident id).
Records kept elsewhere and linked to the incident (a `runs` kind, say) come in through
`sources`: functions the composition root passes, so the spine imports no feature.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from watchkeeper import timeutil
from watchkeeper.incidents import effective_level, info
from watchkeeper.store.base import Query
from watchkeeper.store.incidents import backing, load

MAX_ENTRIES = 2000


@dataclass
class TimelineEntry:
    at: str                      # UTC ISO
    kind: str                    # created | alert | level | update | report | link | unlink |
                                 # escalate | comment | <other audited action>
    actor: str | None
    summary: str
    object_id: str | None = None
    changes: dict | None = None
    summary_zh: str | None = None   # zh-CN wording, where the summary is ours (not a reason)


# A source of linked records for the timeline (e.g. playbook runs kept in their own kind):
# given the caller's store view and the incident, the entries it contributes.
TimelineSource = Callable[[object, dict], Iterable[TimelineEntry]]


def timeline(store, incident_id: str, limit: int = MAX_ENTRIES,
             sources: Iterable[TimelineSource] = ()) -> list[TimelineEntry]:
    doc = load(store, incident_id)
    state = info(doc)
    created = (doc.get("event") or {}).get("created") or doc["@timestamp"]
    suggested = state.get("level_suggested") or state.get("level")
    entries = [TimelineEntry(created, "created", "correlator",
                             f"incident opened, level {suggested} suggested",
                             summary_zh=f"开立安全事件，建议级别 {suggested}")]
    for alert in store.get_by_ids("alerts", list(state.get("alerts", []))[:limit]):
        alert_info = alert.get("watchkeeper", {}).get("alert", {})
        entries.append(TimelineEntry(alert_info.get("first_seen") or alert["@timestamp"],
                                     "alert", alert_info.get("detector"),
                                     alert.get("message") or "", alert["event"]["id"],
                                     summary_zh=alert_info.get("message_zh")))
    query = Query(terms={"watchkeeper.audit.object_id": [incident_id]}, order="asc")
    for record in backing(store).scan("audit", query, limit=limit):
        audit = record.get("watchkeeper", {}).get("audit", {})
        action = (record.get("event") or {}).get("action") or "audit"
        entries.append(TimelineEntry(
            audit.get("at") or record["@timestamp"], action.removeprefix("incident."),
            (record.get("user") or {}).get("name"), record.get("message") or "",
            incident_id, audit.get("changes")))
    for source in sources:
        entries += list(source(store, doc))
    entries.sort(key=lambda e: timeutil.parse(e.at))
    return entries[:limit]


@dataclass
class ResponseTimes:
    site: str                    # labels.site, "/" for site-less incidents; "*" = all
    level: str                   # effective level; "*" = all
    incidents: int
    acknowledged: int
    closed: int
    mtta_seconds: float | None   # mean(acknowledged_at - discovery)
    mttr_seconds: float | None   # mean(closed_at - discovery)


def response_times(store, query: Query) -> list[ResponseTimes]:
    """MTTA and MTTR per (site, level), then per level over all sites, then overall.

    Discovery = the first alert's event time (first_seen), the same start as the clock."""
    groups: dict[tuple[str, str], list[tuple[float | None, float | None]]] = {}
    for doc in store.scan("incidents", replace(query, order="asc")):
        state = info(doc)
        start = state.get("first_seen") or doc["@timestamp"]
        key = ((doc.get("labels") or {}).get("site") or "/", effective_level(state))
        groups.setdefault(key, []).append((_since(start, state.get("acknowledged_at")),
                                           _since(start, state.get("closed_at"))))
    rows = [_row(site, level, spans) for (site, level), spans in sorted(groups.items())]
    for level in sorted({lv for _, lv in groups}):
        spans = [s for (_, lv), many in groups.items() if lv == level for s in many]
        rows.append(_row("*", level, spans))
    rows.append(_row("*", "*", [s for many in groups.values() for s in many]))
    return rows


def _since(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return max(0.0, timeutil.parse(end) - timeutil.parse(start))   # clock skew is not negative


def _row(site: str, level: str, spans: list[tuple[float | None, float | None]]) -> ResponseTimes:
    acks = [a for a, _ in spans if a is not None]
    closes = [c for _, c in spans if c is not None]
    return ResponseTimes(site, level, len(spans), len(acks), len(closes),
                         sum(acks) / len(acks) if acks else None,
                         sum(closes) / len(closes) if closes else None)
