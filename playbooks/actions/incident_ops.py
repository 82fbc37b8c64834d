"""Incident and comment operations the playbook actions need.

Opening, grading, status and incident comments are the spine's (watchkeeper/store/
incidents.py, the same operations people use through the API). Comments on alerts stay audit
records here (the worker can be ahead of the indexer, and triage's comments need the stored
alert). Every change is audited.
"""
from __future__ import annotations

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
    return spine.open_for_alert(store, alert, actor, now)


def update_incident(store: Store, iid: str, changes: dict, actor: str, now: float) -> dict:
    return spine.update(store, iid, changes, actor, now, comment=f"{actor}")


def set_level(store: Store, iid: str, level: str, actor: str, now: float,
              org_type: str = "other") -> tuple[dict, str | None]:
    """Grade the incident (the spine's operation); level III and above have a report due."""
    doc = spine.set_level(store, iid, level, actor, now, reason=f"{actor} 剧本定级")
    return doc, report_clock(doc, IncidentSettings(), org_type, now).report_due
