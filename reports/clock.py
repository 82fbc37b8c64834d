"""Reporting clocks of incidents (2025 reporting measures; DESIGN.md §11), read defensively.

The incidents feature owns `report_due` / `reported_at` (docs: /tmp contracts, incidents
owner). Where an incident does not carry `report_due` yet, it is derived here the same way:
graded_at (or discovered_at, or first_seen) + the hours for the site's org_type, for level III
and above only.
"""
from __future__ import annotations

from dataclasses import dataclass

from reports.context import get
from watchkeeper import timeutil

REPORTABLE_LEVELS = ("I", "II", "III")


@dataclass
class Clock:
    level: str | None
    due: float | None
    reported: float | None
    state: str        # on_time | late | open_overdue | open | not_required


def _time(doc: dict, name: str) -> float | None:
    value = get(doc, f"watchkeeper.incident.{name}")
    try:
        return timeutil.parse(value) if isinstance(value, str) else None
    except ValueError:
        return None


def incident_clock(doc: dict, hours: dict[str, float], now: float) -> Clock:
    level = get(doc, "watchkeeper.incident.level")
    reported = _time(doc, "reported_at")
    if level not in REPORTABLE_LEVELS:
        return Clock(level, None, reported, "not_required")
    due = _time(doc, "report_due")
    if due is None:
        start = _time(doc, "graded_at") or _time(doc, "discovered_at") or \
            _time(doc, "first_seen")
        org = get(doc, "watchkeeper.incident.org_type") or "other"
        if start is not None:
            due = start + 3600 * float(hours.get(org, hours.get("other", 4)))
    if reported is not None:
        state = "on_time" if due is None or reported <= due else "late"
    else:
        state = "open_overdue" if due is not None and now > due else "open"
    return Clock(level, due, reported, state)
