"""Correlation: alerts about the same actor within a window form one incident.

An alert's incident id is fixed when the alert is born (actor + day, see `incident_id`), so
the link never waits for a store round trip. This stage keeps the incident documents: the
alerts it holds, their categories ordered by kill-chain stage, first and last seen, the
worst severity and risk, the GB/T 20986-2023 subcategory and an initial grading. Merging is
by sets and maxima, so a replay or a re-raised alert changes nothing.
"""
from __future__ import annotations

import time

from watchkeeper import codec, metrics, schema, timeutil
from watchkeeper.bus import Bus, Names
from watchkeeper.incidents import keep_people_fields
from watchkeeper.store import Store
from watchkeeper.taxonomy import CATEGORY_INFO
from watchkeeper.worker import StepResult

INCIDENT_WINDOW_S = 86_400
LEVELS = {4: "II", 3: "III", 2: "IV", 1: "IV"}   # initial grade by worst severity (national plan)


def incident_id(alert: dict, window_s: int = INCIDENT_WINDOW_S) -> str | None:
    entity = schema.get(alert, "source.ip") or schema.get(alert, "destination.ip")
    if not entity:
        return None
    window = int(timeutil.parse(alert["@timestamp"]) // window_s)
    return schema.stable_id("incident", entity, window)


class Correlator:
    name = "correlate"

    def __init__(self, bus: Bus, store: Store, names: Names = Names()):
        self.store = store
        self.consumer = bus.consumer(names.group(self.name), [names.alerts])

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        if not messages:
            return StepResult()
        grouped: dict[str, list[dict]] = {}
        for msg in messages:
            try:
                alert = schema.validate(codec.decode(msg.value))
            except (codec.DecodeError, schema.ValidationError):
                continue          # the indexer dead-letters it; nothing to correlate
            info = alert["watchkeeper"]["alert"]
            if info.get("incident_id") and not info.get("suppressed_by") \
                    and info.get("status") != "suppressed":
                grouped.setdefault(info["incident_id"], []).append(alert)
        stored = {d["event"]["id"]: d for d in self.store.get_by_ids("incidents", list(grouped))}
        now = time.time()
        # People's fields (level set by a responder, status, reports, links) survive a re-merge.
        docs = [keep_people_fields(stored.get(iid), merge(stored.get(iid), alerts, iid), now)
                for iid, alerts in grouped.items()]
        self.store.bulk_upsert("incidents", docs)
        self.consumer.commit()
        metrics.RECORDS.labels(stage=self.name, outcome="written").inc(len(docs))
        return StepResult(consumed=len(messages), written=len(docs))

    def reset(self) -> None:
        self.consumer.rewind()

    def close(self) -> None:
        self.consumer.close()


def merge(incident: dict | None, alerts: list[dict], iid: str) -> dict:
    state = (incident or {}).get("watchkeeper", {}).get("incident", {})
    ids = set(state.get("alerts", [])) | {a["event"]["id"] for a in alerts}
    categories = set(state.get("categories", [])) | {
        a["watchkeeper"]["alert"]["category"] for a in alerts}
    first = min([*([state["first_seen"]] if state else []),
                 *(a["watchkeeper"]["alert"]["first_seen"] for a in alerts)])
    last = max([*([state["last_seen"]] if state else []),
                *(a["watchkeeper"]["alert"]["last_seen"] for a in alerts)])
    severity = max([state.get("severity", 1), *(a["event"]["severity"] for a in alerts)])
    risk = max([state.get("risk_score", 0), *(a["event"]["risk_score"] for a in alerts)])
    ordered = sorted(categories, key=lambda c: (CATEGORY_INFO[c].stage, c)
                     if c in CATEGORY_INFO else (99, c))
    latest = CATEGORY_INFO.get(ordered[-1])
    entity = state.get("entity") or schema.get(alerts[0], "source.ip") or \
        schema.get(alerts[0], "destination.ip")
    related = sorted(set(state.get("related_ips", [])) |
                     {ip for a in alerts for ip in a.get("related", {}).get("ip", [])})[:200]
    return {
        "@timestamp": first,
        "event": {"id": iid, "kind": "event", "dataset": "watchkeeper.incident",
                  "severity": severity, "risk_score": risk, "start": first, "end": last,
                  "created": (incident or {}).get("event", {}).get("created")
                  or timeutil.format(time.time())},
        "message": f"{entity}: " + " → ".join(ordered),
        # Tenancy: the incident belongs to the site of its first alert that has one.
        **({"labels": {"site": site}} if (site := _site(incident, alerts)) else {}),
        "related": {"ip": related},
        "watchkeeper": {"incident": {
            "entity": entity, "status": state.get("status", "new"),
            "alerts": sorted(ids), "alert_count": len(ids), "categories": ordered,
            "stages": [CATEGORY_INFO[c].stage_name for c in ordered if c in CATEGORY_INFO],
            "first_seen": first, "last_seen": last, "severity": severity, "risk_score": risk,
            "gbt_code": latest.gbt_code if latest else None,
            "gbt_name": latest.gbt_name if latest else None,
            "level": LEVELS[severity],
        }},
    }


def _site(incident: dict | None, alerts: list[dict]) -> str | None:
    kept = ((incident or {}).get("labels") or {}).get("site")
    return kept or next((a["labels"]["site"] for a in alerts
                         if (a.get("labels") or {}).get("site")), None)
