"""Incident operations people perform, on either backend (only the Store interface is used):
level, status, report, links, escalation, comments; each one audited with who, when and why.

`store` is the caller's view: a tenant `ScopedStore` (an incident or alert outside the
subtree is a KeyError, i.e. 404) or a whole `Store` (CLI, playbooks, reports). Reads go
through it; writes go to the backing store. `now` is always passed in, so the clocks can be
tested with frozen time. Each change is applied to the freshest stored incident with no write
in between (Store.modify: SQLite's lock, Elasticsearch's if_seq_no), and bumps `people_rev`,
so a correlator write computed from an older read keeps people's newer fields
(watchkeeper.incidents.keep_newer_people_fields, applied by both backends' bulk_upsert).
Read-side views (timeline, MTTA/MTTR) are in watchkeeper/store/incident_views.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from watchkeeper import schema, timeutil
from watchkeeper.incidents import (LEVELS, STATUSES, WARNING_COLOURS, effective_level, info,
                                   status_times)
from watchkeeper.store.audit import audit_record

MAX_LINK = 500


def backing(store):
    """The whole store behind a ScopedStore (writes, audit), or the store itself."""
    return getattr(store, "store", store)


def load(store, incident_id: str) -> dict:
    found = store.get_by_ids("incidents", [incident_id])
    if not found:
        raise KeyError(incident_id)
    return found[0]


def _audit(store, action: str, actor: str, incident_id: str, before: dict, after: dict,
           message: str, now: float) -> None:
    changes = {k: {"from": before.get(k), "to": after.get(k)} for k in after
               if before.get(k) != after.get(k)}
    record = audit_record(f"incident.{action}", actor, message=message,
                          object_kind="incident", object_id=incident_id, changes=changes)
    record["watchkeeper"]["audit"]["at"] = timeutil.format(now)   # when it took effect
    backing(store).append_audit(record)


def _change(store, incident_id: str, action: str, actor: str, now: float, message: str,
            compute) -> dict:
    """`compute(state)` gives the changes; applied to the freshest stored incident with no
    other write in between (Store.modify), people_rev bumped, then audited."""
    load(store, incident_id)                       # visible to the caller, or KeyError
    seen: dict = {}

    def change(doc: dict) -> dict:
        state = info(doc)
        changes = compute(state)
        seen.update(before={k: state.get(k) for k in changes}, changes=changes)
        state.update(changes)
        state["people_rev"] = int(state.get("people_rev") or 0) + 1
        state["updated_at"] = timeutil.format(now)
        state["warning_colour"] = WARNING_COLOURS[effective_level(state)]
        return doc
    doc = backing(store).modify("incidents", incident_id, change)
    _audit(store, action, actor, incident_id, seen["before"], seen["changes"], message, now)
    return doc


def open_for_alert(store, alert: dict, actor: str, now: float) -> tuple[dict, bool]:
    """The alert's incident, opened by a person or a playbook when the correlator has not
    made it (yet): the alerting layer's id when the alert has one, else one derived from the
    alert. Created only if absent (`insert_new`: a correlator write in between wins, and
    later merges into it by sets); audited as `incident.open`. (incident, created now)."""
    state = alert.get("watchkeeper", {}).get("alert", {})
    iid = state.get("incident_id") or schema.stable_id("incident", "opened", alert["event"]["id"])
    found = store.get_by_ids("incidents", [iid])
    if found:
        return found[0], False
    entity = schema.get(alert, "source.ip") or schema.get(alert, "destination.ip")
    first = state.get("first_seen", alert["@timestamp"])
    severity = alert["event"].get("severity", 1)
    doc = {"@timestamp": alert["@timestamp"],
           "event": {"id": iid, "kind": "event", "dataset": "watchkeeper.incident",
                     "severity": severity, "created": timeutil.format(now)},
           "message": f"{entity}: {state.get('category')}",
           "related": alert.get("related", {"ip": []}),
           "watchkeeper": {"incident": {
               "entity": entity, "status": "new", "alerts": [alert["event"]["id"]],
               "alert_count": 1, "categories": [state.get("category")],
               "first_seen": first, "last_seen": state.get("last_seen", alert["@timestamp"]),
               "severity": severity, "discovered_at": first, "updated_at": timeutil.format(now),
               "opened_by": actor}}}
    if (alert.get("labels") or {}).get("site"):
        doc["labels"] = {"site": alert["labels"]["site"]}
    if not backing(store).insert_new("incidents", doc):
        return load(store, iid), False
    _audit(store, "open", actor, iid, {}, {"status": "new"}, doc["message"], now)
    return doc, True


def set_level(store, incident_id: str, level: str, actor: str, now: float,
              reason: str) -> dict:
    """A responder grades the incident (the correlator's grade stays as level_suggested)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    if not reason.strip():
        raise ValueError("a reason is required to set the level")

    def compute(state: dict) -> dict:
        if not state.get("level_set_by"):
            state.setdefault("level_suggested", state.get("level"))
        return {"level": level, "level_set_by": actor, "level_set_at": timeutil.format(now),
                "level_reason": reason, "graded_at": timeutil.format(now)}
    return _change(store, incident_id, "level", actor, now, reason, compute)


def update(store, incident_id: str, changes: dict, actor: str, now: float,
           comment: str = "") -> dict:
    """Status (with its timestamps) and assignee."""
    unknown = set(changes) - {"status", "assignee"}
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)} here")
    if "status" in changes and changes["status"] not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")

    def compute(state: dict) -> dict:
        out = dict(changes)
        if "status" in changes and changes["status"] != state.get("status"):
            out.update(status_times(state, changes["status"], now))
        return out
    return _change(store, incident_id, "update", actor, now, comment, compute)


def record_report(store, incident_id: str, reported_to: str, reported_at: float, actor: str,
                  now: float, comment: str = "") -> dict:
    """"Reported to X at T": stops the reporting clock (a later record corrects it)."""
    if not reported_to.strip():
        raise ValueError("say whom the incident was reported to")
    if reported_at > now + 300:
        raise ValueError("reported_at is in the future")

    def compute(state: dict) -> dict:
        return {"reported_to": reported_to.strip(), "reported_at": timeutil.format(reported_at),
                "reported_by": actor}
    return _change(store, incident_id, "report", actor, now, comment, compute)


def add_comment(store, incident_id: str, text: str, actor: str, now: float) -> None:
    """Append-only: a comment is an audit record on the incident (shown in its timeline)."""
    if not text.strip():
        raise ValueError("a comment needs text")
    load(store, incident_id)                       # visible to the caller, or KeyError
    _audit(store, "comment", actor, incident_id, {}, {}, text, now)

    def touch(doc: dict) -> dict:                  # updated_at moves (live feed)
        info(doc)["updated_at"] = timeutil.format(now)
        return doc
    backing(store).modify("incidents", incident_id, touch)


@dataclass
class LinkResult:
    incident: dict
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)    # not found or not visible


def link_alerts(store, incident_id: str, alert_ids: list[str], actor: str, now: float,
                reason: str = "") -> LinkResult:
    """Attach alerts (the caller must see them); each leaves the incident it was in."""
    wanted = list(dict.fromkeys(alert_ids))[:MAX_LINK]
    doc = load(store, incident_id)
    alerts = {a["event"]["id"]: a for a in store.get_by_ids("alerts", wanted)}
    if not alerts:
        return LinkResult(doc, [], wanted)          # nothing to do: nothing audited
    for alert_id, alert in alerts.items():
        previous = (alert.get("watchkeeper", {}).get("alert") or {}).get("incident_id")
        if previous and previous != incident_id:
            _detach(backing(store), previous, [alert_id], actor, now, f"moved to {incident_id}")
        _set_alert_incident(store, alert_id, incident_id, actor, reason)
    ids = sorted(alerts)

    def compute(state: dict) -> dict:
        return _membership(state, add=ids)
    doc = _change(store, incident_id, "link", actor, now, reason, compute)
    return LinkResult(doc, ids, [i for i in wanted if i not in alerts])


def unlink_alerts(store, incident_id: str, alert_ids: list[str], actor: str, now: float,
                  reason: str = "") -> LinkResult:
    """Detach alerts; a re-merge by the correlator does not bring them back."""
    doc = load(store, incident_id)
    held = set(info(doc).get("alerts", []))
    ids = [i for i in dict.fromkeys(alert_ids) if i in held]
    missing = [i for i in dict.fromkeys(alert_ids) if i not in held]
    if not ids:
        return LinkResult(doc, [], missing)
    doc = _detach(store, incident_id, ids, actor, now, reason)
    for alert_id in ids:
        if store.get_by_ids("alerts", [alert_id]):
            _set_alert_incident(store, alert_id, None, actor, reason)
    return LinkResult(doc, ids, missing)


def _detach(store, incident_id: str, ids: list[str], actor: str, now: float,
            reason: str) -> dict:
    def compute(state: dict) -> dict:
        return _membership(state, remove=ids)
    try:
        return _change(store, incident_id, "unlink", actor, now, reason, compute)
    except KeyError:
        return {}           # the other incident is gone: nothing to detach from


def _membership(state: dict, add: list[str] = (), remove: list[str] = ()) -> dict:
    alerts = (set(state.get("alerts", [])) | set(add)) - set(remove)
    linked = (set(state.get("linked", [])) | set(add)) - set(remove)
    unlinked = (set(state.get("unlinked", [])) | set(remove)) - set(add)
    return {"alerts": sorted(alerts), "alert_count": len(alerts), "linked": sorted(linked),
            "unlinked": sorted(unlinked)}


def _set_alert_incident(store, alert_id: str, incident_id: str | None, actor: str,
                        reason: str) -> None:
    try:
        store.update_alert(alert_id, {"incident_id": incident_id}, actor=actor, comment=reason)
    except KeyError:
        pass                # the alert left the store (retention): the incident still changes


def escalate(store, incident_id: str, parents: dict[str, str | None] | None, actor: str,
             actor_sites: list[str] | None, now: float, reason: str) -> dict:
    """One level up the site tree (the parent then has it in its escalated queue). The
    caller must work at the incident's current level: its own site or above it."""
    if not reason.strip():
        raise ValueError("a reason is required to escalate")
    doc = load(store, incident_id)
    state = info(doc)
    current = state.get("escalated_to") or (doc.get("labels") or {}).get("site")
    if actor_sites is not None and current not in actor_sites:
        raise PermissionError(f"the incident is already escalated to {current}, above you")
    target = (parents or {}).get(current) if current else None
    if not target:
        raise ValueError(f"{current or 'the root'} has no parent site to escalate to")

    def compute(state: dict) -> dict:
        entry = {"from": current, "to": target, "by": actor, "at": timeutil.format(now),
                 "reason": reason}
        return {"escalated_to": target, "escalations": [*state.get("escalations", []), entry]}
    return _change(store, incident_id, "escalate", actor, now, reason, compute)
