"""Alerts written with the status vocabulary before triage, upgraded to the current one.

Old statuses (`in_progress`, `resolved`, `false_positive`, `suppressed`) map to a current
status and, for closed ones, a verdict (watchkeeper.schema.LEGACY_ALERT_STATUSES). An
allowlisted alert (`suppressed`) becomes closed + benign_positive + `suppressed_by` (its old
reason, else "allowlist"). Applied to every alert written (bulk_upsert, both backends) and
read (the API), and once to the stored ones (triage.migrate_legacy_alerts).
"""
from __future__ import annotations

import json

from watchkeeper.schema import LEGACY_ALERT_STATUSES


def is_legacy(doc: dict) -> bool:
    return (_info(doc).get("status") or "new") in LEGACY_ALERT_STATUSES


def legacy_changes(doc: dict) -> dict:
    """The field changes that bring `doc` to the current vocabulary ({} if it already is)."""
    info = _info(doc)
    old = info.get("status")
    if old not in LEGACY_ALERT_STATUSES:
        return {}
    status, verdict = LEGACY_ALERT_STATUSES[old]
    changes: dict = {"status": status}
    if status == "closed":
        changes["verdict"] = info.get("verdict") or verdict
        changes["closed_at"] = info.get("closed_at") or _when(doc)
    if old == "suppressed":
        changes["suppressed_by"] = info.get("suppressed_by") or "allowlist"
    return changes


def upgraded(doc: dict) -> dict:
    """`doc` in the current vocabulary (the same dict when nothing changes)."""
    changes = legacy_changes(doc)
    if not changes:
        return doc
    copy = json.loads(json.dumps(doc))
    copy["watchkeeper"]["alert"].update(changes)
    return copy


def _info(doc: dict) -> dict:
    return ((doc.get("watchkeeper") or {}).get("alert")) or {}


def _when(doc: dict) -> str | None:
    """A legacy alert's closing time is unknown: its creation is the best stand-in."""
    return (doc.get("event") or {}).get("created") or doc.get("@timestamp")
