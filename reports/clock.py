"""Reporting clocks of incidents (2025 reporting measures; DESIGN.md §11), read defensively.

The incidents feature owns the clock (`watchkeeper.incidents.report_clock`, which the API and
the screen show). A stored `report_due` is used as it is; otherwise the deadline comes from that
same function, so a report never judges an incident by another rule than the API does.
"""
from __future__ import annotations

from dataclasses import dataclass

from reports.context import get
from watchkeeper import timeutil
from watchkeeper.incidents import ORG_TYPES, IncidentSettings, report_clock

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
        org = get(doc, "watchkeeper.incident.org_type")
        settings = IncidentSettings(report_hours={k: float(v) for k, v in hours.items()
                                                  if k in ORG_TYPES})
        org = org if org in ORG_TYPES else "other"
        derived = report_clock(doc, settings, org, now).report_due
        due = timeutil.parse(derived) if derived else None
    if reported is not None:
        state = "on_time" if due is None or reported <= due else "late"
    else:
        state = "open_overdue" if due is not None and now > due else "open"
    return Clock(level, due, reported, state)
