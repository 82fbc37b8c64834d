"""Alert documents as the stores write them: the analyst's fields kept on re-raise, the
stamps taken on write (ingest time, posture weight), changes and their audit records."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from watchkeeper import timeutil
from watchkeeper.posture_weight import alert_points

# Fields an analyst owns on an alert: a detector re-raising the same alert never resets them
# (the triage fields are documented in watchkeeper/store/triage.py).
ANALYST_FIELDS = ("status", "assignee", "incident_id", "verdict", "tags", "acknowledged_at",
                  "closed_at", "updated_at", "suppressed_by", "reopened")
UPDATABLE_ALERT_FIELDS = frozenset(ANALYST_FIELDS)

@dataclass
class Modified:
    """What Store.modify_alerts did to one alert: before/after (the same object when nothing
    changed), or the error that refused it."""
    alert_id: str
    before: dict | None = None
    after: dict | None = None
    error: Exception | None = None

    @property
    def changed(self) -> bool:
        return self.error is None and self.after is not self.before


class AlertConflict(ValueError):
    """A change that does not apply to the alert as it is now (e.g. an invalid transition)."""

    def __init__(self, message: str, allowed: list[str] | None = None):
        super().__init__(message)
        self.allowed = allowed or []


def merge_alert(stored: dict | None, incoming: dict) -> dict:
    """A re-raised alert keeps the analyst's status, assignee and incident link."""
    if not stored:
        return incoming
    kept = stored.get("watchkeeper", {}).get("alert", {})
    merged = json.loads(json.dumps(incoming))
    info = merged.setdefault("watchkeeper", {}).setdefault("alert", {})
    for name in ANALYST_FIELDS:    # all from the stored alert, as Elasticsearch's partial update
        if name in kept:
            info[name] = kept[name]
        else:
            info.pop(name, None)
    return merged


STAMPED_KINDS = ("alerts", "incidents")


def stamp_ingested(kind: str, docs: list[dict], now: float | None = None) -> list[dict]:
    """`event.ingested` = when the store took the document (ECS), on alerts and incidents
    whoever writes them (indexer, correlator): the live feed's cursor for new documents.
    Alerts also get their posture weight (watchkeeper/posture_weight.py) from their
    severity and asset context, so the posture sums one stamped number."""
    if kind not in STAMPED_KINDS:
        return docs
    stamp = timeutil.format(time.time() if now is None else now)
    stamped = [{**doc, "event": {**doc["event"], "ingested": stamp}} for doc in docs]
    return [_with_points(doc) for doc in stamped] if kind == "alerts" else stamped


def _with_points(alert: dict) -> dict:
    info = (alert.get("watchkeeper") or {}).get("alert") or {}
    return {**alert, "watchkeeper": {**(alert.get("watchkeeper") or {}),
                                     "alert": {**info, "weight_points": alert_points(alert)}}}


def apply_alert_changes(alert: dict, changes: dict) -> dict:
    """A copy of `alert` with `changes` set on watchkeeper.alert (None values stored as null)."""
    after = json.loads(json.dumps(alert))
    after.setdefault("watchkeeper", {}).setdefault("alert", {}).update(changes)
    return after


def check_alert_changes(changes: dict) -> None:
    unknown = set(changes) - UPDATABLE_ALERT_FIELDS
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}; changeable: {sorted(UPDATABLE_ALERT_FIELDS)}")


def audit_document(object_id: str, before: dict, after: dict, actor: str, comment: str,
                   now: float) -> dict:
    """Who changed what on an alert, when and why (MLPS 8.1.5.2: audited actions)."""
    from watchkeeper import schema
    changes = {k: {"from": before.get(k), "to": after.get(k)} for k in after
               if before.get(k) != after.get(k)}
    return {
        "@timestamp": timeutil.format(now),
        "event": {"id": schema.stable_id("audit", object_id, now, actor), "kind": "event",
                  "dataset": "watchkeeper.audit", "action": "alert.update",
                  "category": ["configuration"], "type": ["change"]},
        "user": {"name": actor},
        "message": comment,
        "watchkeeper": {"audit": {"object_id": object_id, "object_kind": "alert",
                                  "changes": changes}},
    }
