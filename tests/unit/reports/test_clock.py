"""A report judges an incident's reporting clock by the same rule as the API (one function)."""
from __future__ import annotations

from reports.clock import incident_clock
from watchkeeper import timeutil
from watchkeeper.incidents import IncidentSettings, report_clock

FIRST = "2026-11-05T02:00:00.000Z"      # the first alert (discovery)
GRADED = "2026-11-05T05:00:00.000Z"     # graded three hours later


def _incident(**extra) -> dict:
    return {"@timestamp": FIRST, "event": {"id": "inc-1", "created": GRADED},
            "watchkeeper": {"incident": {"level": "III", "first_seen": FIRST,
                                         "graded_at": GRADED, "org_type": "cii", **extra}}}


def test_without_a_stored_deadline_the_report_uses_the_apis_clock():
    now = timeutil.parse("2026-11-05T04:00:00.000Z")
    hours = {"cii": 1, "state_organ": 2, "other": 4}
    api = report_clock(_incident(), IncidentSettings(), "cii", now)
    clock = incident_clock(_incident(), hours, now)
    assert clock.due == timeutil.parse(api.report_due) == timeutil.parse(FIRST) + 3600
    assert clock.state == "open_overdue" and api.overdue


def test_a_stored_deadline_is_used_as_it_is():
    due = "2026-11-05T09:00:00.000Z"
    clock = incident_clock(_incident(report_due=due), {"cii": 1}, timeutil.parse(GRADED))
    assert clock.due == timeutil.parse(due) and clock.state == "open"
