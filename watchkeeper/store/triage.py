"""Alert triage: the status workflow, verdicts, assignee, tags, bulk changes and the history.

The one place these rules live: the API and playbooks call these functions with a Store or a
tenant-scoped one (watchkeeper/store/scoped.py), never write the fields themselves.

Workflow: new -> acknowledged -> investigating -> closed. Moving forward may skip a step (an
obvious false positive goes from new straight to closed); the only way back is reopening
(closed -> investigating), which clears the verdict and `closed_at` and counts `reopened`.
Closing needs a verdict (schema.VERDICTS); a verdict is only set on a closed alert.
Timestamps (UTC ISO): `acknowledged_at` when the alert first leaves `new` (MTTA), `closed_at`
when it is closed (MTTR), `updated_at` on every analyst change (the live feed follows it).
Every change is one audit record (who, when, before and after); `history` reads them back.
Comments (comments.py) are their own append-only records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from watchkeeper import timeutil
from watchkeeper.schema import ALERT_STATUSES, LEGACY_ALERT_STATUSES, VERDICTS
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import AlertConflict, Page, Query
from watchkeeper.store.legacy import legacy_changes, upgraded

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged", "investigating", "closed"),
    "acknowledged": ("investigating", "closed"),
    "investigating": ("closed",),
    "closed": ("investigating",),          # reopening
}
MAX_TAGS = 32
TAG = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MAX_BULK = 10_000                     # alerts one bulk change may touch
# A bulk change is audited as one record per this many alerts (object_id: their ids, changes:
# per id): one record per alert cost an audit-chain append each (~20-100 ms on Elasticsearch).
BULK_AUDIT_CHUNK = 500
MIGRATION_ACTOR = "system:migration"


@dataclass(frozen=True)
class AlertChange:
    """What an analyst (or a playbook) asks for; unset parts are left alone."""
    status: str | None = None
    verdict: str | None = None
    set_assignee: bool = False             # assignee=None with set_assignee unassigns
    assignee: str | None = None
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    suppressed_by: str | None = None       # closing because a suppression rule matched
    comment: str = ""                      # the reason, kept in the audit record

    def __post_init__(self) -> None:
        check_change(self)


def check_change(change: AlertChange) -> None:
    """Refusals that do not depend on the alert (ValueError: the caller's input)."""
    if change.status is not None and change.status not in ALERT_STATUSES:
        raise ValueError(f"status {change.status!r} is not one of {list(ALERT_STATUSES)}")
    if change.verdict is not None and change.verdict not in VERDICTS:
        raise ValueError(f"verdict {change.verdict!r} is not one of {list(VERDICTS)}")
    if change.status == "closed" and change.verdict is None:
        raise ValueError(f"closing needs a verdict: one of {list(VERDICTS)}")
    if change.status not in (None, "closed") and change.verdict is not None:
        raise ValueError("a verdict is only given when closing")
    if change.suppressed_by is not None and change.status != "closed":
        raise ValueError("suppressed_by is only given when closing")
    for tag in (*change.tags_add, *change.tags_remove):
        if not isinstance(tag, str) or not TAG.match(tag):
            raise ValueError(f"tag {tag!r}: 1-64 characters, no control characters")


@dataclass
class BulkResult:
    matched: int = 0                       # alerts the ids or the query named (visible ones)
    changed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)   # id -> why


def status_filter(statuses: list[str]) -> list[str]:
    """Stored values a status filter matches: legacy documents count as their new status."""
    legacy = [old for old, (new, _) in LEGACY_ALERT_STATUSES.items() if new in statuses]
    return list(dict.fromkeys([*statuses, *legacy]))


def decide(change: AlertChange, now: float):
    """The `decide` function Store.modify_alert calls on the latest stored alert."""
    stamp = timeutil.format(now)

    def decide_on(alert: dict) -> dict:
        info = upgraded(alert)["watchkeeper"]["alert"]
        current = info.get("status")
        if current not in TRANSITIONS:     # none (or a value no writer of ours makes): new
            current = "new"
        changes = {**_status_changes(change, info, current, stamp),
                   **_owner_changes(change, info)}
        if changes:
            changes["updated_at"] = stamp
        # An alert stored in the old vocabulary is upgraded by the same write.
        return {**legacy_changes(alert), **changes}
    return decide_on


def _status_changes(change: AlertChange, info: dict, current: str, stamp: str) -> dict:
    wanted = change.status or current
    if wanted == current:
        if change.verdict and current != "closed":
            raise AlertConflict(f"a verdict is only set on a closed alert; this one is {current}",
                                list(TRANSITIONS[current]))
        return {"verdict": change.verdict} if change.verdict and \
            change.verdict != info.get("verdict") else {}
    if wanted not in TRANSITIONS[current]:
        raise AlertConflict(f"cannot go from {current} to {wanted}; allowed from {current}: "
                            f"{', '.join(TRANSITIONS[current])}", list(TRANSITIONS[current]))
    changes: dict = {"status": wanted}
    if current == "new" and not info.get("acknowledged_at"):
        changes["acknowledged_at"] = stamp
    if wanted == "closed":
        changes.update(verdict=change.verdict, closed_at=stamp)
        if change.suppressed_by:
            changes["suppressed_by"] = change.suppressed_by
    if current == "closed":                # reopened: the old verdict no longer holds
        changes.update(verdict=None, closed_at=None, suppressed_by=None,
                       reopened=int(info.get("reopened") or 0) + 1)
    return changes


def _owner_changes(change: AlertChange, info: dict) -> dict:
    changes: dict = {}
    if change.set_assignee and change.assignee != info.get("assignee"):
        changes["assignee"] = change.assignee
    old = [t for t in info.get("tags") or [] if isinstance(t, str)]
    tags = [t for t in old if t not in change.tags_remove]
    tags += [t for t in dict.fromkeys(change.tags_add) if t not in tags
             and t not in change.tags_remove]
    if tags != old:
        if len(tags) > MAX_TAGS:
            raise AlertConflict(f"an alert carries at most {MAX_TAGS} tags")
        changes["tags"] = tags
    return changes


def _action(before: dict, after: dict) -> str:
    old, new = (d.get("watchkeeper", {}).get("alert", {}).get("status") for d in (before, after))
    if old != new and new == "closed":
        return "alert.close"
    if old == "closed" and new != "closed":
        return "alert.reopen"
    return "alert.update"


def field_changes(before: dict, after: dict) -> dict:
    old, new = before["watchkeeper"]["alert"], after["watchkeeper"]["alert"]
    return {k: {"from": old.get(k), "to": new.get(k)} for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)}


def audit_change(store, alert_id: str, before: dict, after: dict, actor: str,
                 comment: str = "") -> None:
    changes = field_changes(before, after)
    if changes:
        store.append_audit(audit_record(_action(before, after), actor, message=comment,
                                        object_kind="alert", object_id=alert_id,
                                        changes=changes))


def audit_bulk(store, changed: list[tuple[str, dict, dict]], actor: str, comment: str) -> None:
    """One record per BULK_AUDIT_CHUNK changed alerts: object_id lists them, changes maps
    each id to its {field: {from, to}} (history_entry reads one alert's part back)."""
    for start in range(0, len(changed), BULK_AUDIT_CHUNK):
        chunk = changed[start:start + BULK_AUDIT_CHUNK]
        record = audit_record("alert.bulk_update", actor, message=comment, object_kind="alert")
        record["watchkeeper"]["audit"].update(
            object_id=[alert_id for alert_id, _, _ in chunk],
            changes={alert_id: field_changes(before, after) for alert_id, before, after in chunk})
        store.append_audit(record)


def change_alert(store, alert_id: str, change: AlertChange, actor: str, now: float) -> dict:
    """Apply `change` to one alert (audited, visible to reads on return); the alert after it.
    KeyError: no such alert (or outside the scope); AlertConflict: not from its state."""
    before, after = store.modify_alert(alert_id, decide(change, now))
    if after is not before:
        audit_change(store, alert_id, before, after, actor, change.comment)
        store.refresh("alerts")
    return upgraded(after)


def change_alerts(store, target: list[str] | Query, change: AlertChange, actor: str,
                  now: float) -> BulkResult:
    """Apply `change` to every alert named (ids) or matched (a query, through `store`'s
    scope); each alert is refused or changed on its own. ValueError if the query matches
    more than MAX_BULK alerts."""
    if isinstance(target, Query):
        total = store.search("alerts", replace(target, limit=1, cursor=None)).total
        if total > MAX_BULK:
            raise ValueError(f"the query matches {total} alerts; a bulk change takes at most "
                             f"{MAX_BULK}: narrow it")
        ids = [a["event"]["id"] for a in store.scan("alerts", replace(target, cursor=None))]
    else:
        ids = list(dict.fromkeys(target))
    result = BulkResult()
    changed: list[tuple[str, dict, dict]] = []
    for done in store.modify_alerts(ids, decide(change, now)):
        if isinstance(done.error, KeyError):
            result.refused[done.alert_id] = "no alert with this id"
            continue
        result.matched += 1
        if done.error is not None:
            result.refused[done.alert_id] = str(done.error)
        elif done.changed:
            changed.append((done.alert_id, done.before, done.after))
            result.changed.append(done.alert_id)
    if changed:
        audit_bulk(store, changed, actor, change.comment)
        store.refresh("alerts")
    return result


def history(store, object_kind: str, object_id: str, *, cursor: str | None = None,
            limit: int = 100) -> Page:
    """Every audited change of one object, oldest first (the caller checks it may see it:
    audit records are not tenant documents)."""
    query = Query(terms={"watchkeeper.audit.object_id": [object_id],
                         "watchkeeper.audit.object_kind": [object_kind]},
                  order="asc", cursor=cursor, limit=limit)
    return store.search("audit", query)


def history_entry(record: dict, object_id: str) -> dict:
    """One audit record as a history line of `object_id`: at, actor, action, message,
    changes ({field: {from, to}}), seq. A bulk record contributes this object's part."""
    audit = record.get("watchkeeper", {}).get("audit", {})
    changes = audit.get("changes") or {}
    if isinstance(audit.get("object_id"), list):
        changes = changes.get(object_id) or {}
    return {"at": record["@timestamp"], "actor": (record.get("user") or {}).get("name", ""),
            "action": (record.get("event") or {}).get("action", ""),
            "message": record.get("message") or "", "changes": changes, "seq": audit.get("seq")}


def migrate_legacy_alerts(store) -> int:
    """Rewrite stored alerts of the old status vocabulary (audited, by MIGRATION_ACTOR)."""
    query = Query(terms={"watchkeeper.alert.status": list(LEGACY_ALERT_STATUSES)})
    ids = [a["event"]["id"] for a in store.scan("alerts", query, limit=MAX_BULK)]
    for alert_id in ids:
        try:
            before, after = store.modify_alert(alert_id, legacy_changes)
        except KeyError:
            continue
        audit_change(store, alert_id, before, after, MIGRATION_ACTOR,
                     "status vocabulary upgraded (triage workflow)")
    if ids:
        store.refresh("alerts")
    return len(ids)
