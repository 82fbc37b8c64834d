"""Minimal incident and comment operations the playbook actions need.

The shared spine operations (watchkeeper/store/triage.py, incidents.py) are being built in
parallel; until they are on main these small versions keep the same field names
(docs/playbooks.md says which to switch to). Every change is audited.
"""
from __future__ import annotations

from watchkeeper import schema, timeutil
from watchkeeper.store import Store
from watchkeeper.store.audit import audit_record

COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
REPORT_HOURS = {"cii": 1, "state_organ": 2, "other": 4}   # STANDARDS.md §3


def add_comment(store: Store, object_kind: str, object_id: str, text: str, actor: str,
                now: float) -> dict:
    return store.append_audit(audit_record(f"{object_kind}.comment", actor, message=text,
                                           object_kind=object_kind, object_id=object_id))


def open_incident(store: Store, alert: dict, actor: str, now: float) -> tuple[dict, bool]:
    """The alert's incident (the correlator's id when it has one); created if missing."""
    info = alert.get("watchkeeper", {}).get("alert", {})
    iid = info.get("incident_id") or schema.stable_id("incident", "playbook", alert["event"]["id"])
    found = store.get_by_ids("incidents", [iid])
    if found:
        return found[0], False
    entity = schema.get(alert, "source.ip") or schema.get(alert, "destination.ip")
    doc = {"@timestamp": alert["@timestamp"],
           "event": {"id": iid, "kind": "event", "dataset": "watchkeeper.incident",
                     "severity": alert["event"].get("severity", 1),
                     "created": timeutil.format(now)},
           "message": f"{entity}: {info.get('category')}",
           "related": alert.get("related", {"ip": []}),
           "watchkeeper": {"incident": {
               "entity": entity, "status": "new", "alerts": [alert["event"]["id"]],
               "alert_count": 1, "categories": [info.get("category")],
               "first_seen": info.get("first_seen", alert["@timestamp"]),
               "last_seen": info.get("last_seen", alert["@timestamp"]),
               "severity": alert["event"].get("severity", 1),
               "discovered_at": info.get("first_seen", alert["@timestamp"]),
               "updated_at": timeutil.format(now)}}}
    if (alert.get("labels") or {}).get("site"):
        doc["labels"] = {"site": alert["labels"]["site"]}
    store.bulk_upsert("incidents", [doc])
    store.append_audit(audit_record("incident.open", actor, object_kind="incident",
                                    object_id=iid, message=doc["message"]))
    return doc, True


def update_incident(store: Store, iid: str, changes: dict, actor: str, now: float) -> dict:
    found = store.get_by_ids("incidents", [iid])
    if not found:
        raise KeyError(iid)
    doc = found[0]
    info = doc["watchkeeper"]["incident"]
    before = {k: info.get(k) for k in changes}
    info.update(changes, updated_at=timeutil.format(now))
    store.bulk_upsert("incidents", [doc])
    store.append_audit(audit_record("incident.update", actor, object_kind="incident",
                                    object_id=iid, changes={k: {"from": before[k], "to": v}
                                                            for k, v in changes.items()}))
    return doc


def set_level(store: Store, iid: str, level: str, actor: str, now: float,
              org_type: str = "other") -> dict:
    """Grade the incident; level III and above start the reporting clock."""
    changes = {"level": level, "level_set_by": actor, "level_set_at": timeutil.format(now),
               "graded_at": timeutil.format(now), "warning_colour": COLOURS[level],
               "org_type": org_type}
    if level in ("I", "II", "III"):
        changes["report_due"] = timeutil.format(now + REPORT_HOURS[org_type] * 3600)
    return update_incident(store, iid, changes, actor, now)
