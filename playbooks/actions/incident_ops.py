"""Incident and comment operations the playbook actions need.

Grading, status and incident comments are the spine's (watchkeeper/store/incidents.py, the
same operations people use through the API). Opening an incident for an alert the correlator
has not grouped, and comments on alerts (watchkeeper/store/triage.py is not on main yet), are
small versions here with the shared field names. Every change is audited.
"""
from __future__ import annotations

from watchkeeper import schema, timeutil
from watchkeeper.incidents import IncidentSettings, report_clock
from watchkeeper.store import Store
from watchkeeper.store import incidents as spine
from watchkeeper.store.audit import audit_record



def add_comment(store: Store, object_kind: str, object_id: str, text: str, actor: str,
                now: float) -> dict | None:
    if object_kind == "incident":
        spine.add_comment(store, object_id, text, actor, now)
        return None
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
    return spine.update(store, iid, changes, actor, now, comment=f"{actor}")


def set_level(store: Store, iid: str, level: str, actor: str, now: float,
              org_type: str = "other") -> tuple[dict, str | None]:
    """Grade the incident (the spine's operation); level III and above have a report due."""
    doc = spine.set_level(store, iid, level, actor, now, reason=f"{actor} 剧本定级")
    return doc, report_clock(doc, IncidentSettings(), org_type, now).report_due
