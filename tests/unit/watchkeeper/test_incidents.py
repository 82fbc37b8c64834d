"""Incident rules without a store: levels and colours, the reporting clock (2025 measures,
STANDARDS.md §3) with frozen time, people's fields kept across a correlator re-merge."""
from __future__ import annotations

import pytest

from watchkeeper import timeutil
from watchkeeper.incidents import (IncidentPolicy, IncidentSettings, keep_people_fields,
                                   present, report_clock, status_times)

T0 = 1_767_225_600.0          # 2026-01-01T00:00:00Z: the first alert's event time
CREATED = T0 + 600            # the correlator graded it 10 minutes later
H = 3600.0


def incident(level: str = "III", **state) -> dict:
    return {"@timestamp": timeutil.format(T0), "labels": {"site": "county-a1"},
            "event": {"id": "inc-1", "created": timeutil.format(CREATED)},
            "watchkeeper": {"incident": {"level": level, "first_seen": timeutil.format(T0),
                                         "alerts": ["a1"], "status": "new", **state}}}


@pytest.mark.parametrize("org_type, hours", [("cii", 1), ("state_organ", 2), ("other", 4)])
def test_level_three_is_due_hours_after_discovery_by_organisation_type(org_type, hours):
    clock = report_clock(incident("III"), IncidentSettings(), org_type, now=T0)
    assert clock.required and clock.hours == hours
    assert clock.report_due == timeutil.format(T0 + hours * H)
    assert not report_clock(incident("III"), IncidentSettings(), org_type,
                            now=T0 + hours * H).overdue          # due at, not yet over
    assert report_clock(incident("III"), IncidentSettings(), org_type,
                        now=T0 + hours * H + 1).overdue


@pytest.mark.parametrize("level, required", [("I", True), ("II", True), ("III", True),
                                             ("IV", False)])
def test_only_level_three_and_above_has_a_clock(level, required):
    clock = report_clock(incident(level), IncidentSettings(), "cii", now=T0 + 100 * H)
    assert clock.required is required
    assert clock.overdue is required and (clock.report_due is not None) is required


def test_the_clock_can_start_at_grading_and_hours_come_from_config():
    settings = IncidentSettings(clock_start="graded", report_hours={"cii": 0.5})
    clock = report_clock(incident("II"), settings, "cii", now=T0)
    assert clock.report_due == timeutil.format(CREATED + 0.5 * H)
    assert settings.hours_for("other") == 4.0            # keys not configured keep the law's
    graded_by_responder = incident("II", level_set_by="zhao", graded_at=timeutil.format(T0 + H))
    assert report_clock(graded_by_responder, settings, "cii", now=T0).report_due == \
        timeutil.format(T0 + 1.5 * H)


def test_a_report_stops_the_clock_but_a_late_one_stays_late():
    on_time = incident("III", reported_at=timeutil.format(T0 + 0.5 * H), reported_to="省网信办")
    assert not report_clock(on_time, IncidentSettings(), "cii", now=T0 + 50 * H).overdue
    late = incident("III", reported_at=timeutil.format(T0 + 2 * H), reported_to="省网信办")
    assert report_clock(late, IncidentSettings(), "cii", now=T0 + 50 * H).overdue


def test_present_shows_level_name_colour_and_clock():
    shown = present(incident("III"), IncidentSettings(), "state_organ", now=T0 + 3 * H)
    state = shown["watchkeeper"]["incident"]
    assert (state["level"], state["level_name"], state["warning_colour"]) == ("III", "较大",
                                                                             "yellow")
    assert state["report_due"] == timeutil.format(T0 + 2 * H) and state["overdue"] is True
    assert state["org_type"] == "state_organ" and state["discovered_at"] == timeutil.format(T0)


def test_the_policy_reads_the_site_organisation_type_defaulting_to_other():
    policy = IncidentPolicy(IncidentSettings(), {"county-a1": "cii"})
    assert policy.clock(incident(), T0).hours == 1
    assert IncidentPolicy(IncidentSettings(), {}).clock(incident(), T0).hours == 4
    siteless = incident()
    del siteless["labels"]
    assert policy.org_type(siteless) == "other"


def test_a_re_merge_keeps_what_people_decided():
    stored = incident("II", level_set_by="zhao", level_set_at="x", status="contained",
                      acknowledged_at="a", reported_at="r", reported_to="t",
                      linked=["manual"], unlinked=["gone"], escalated_to="city-a",
                      alerts=["a1", "manual"])
    fresh = incident("IV", alerts=["a1", "gone", "new"])      # the correlator's view
    merged = keep_people_fields(stored, fresh, now=T0 + H)["watchkeeper"]["incident"]
    assert merged["level"] == "II" and merged["level_suggested"] == "IV"
    assert merged["warning_colour"] == "orange"
    assert (merged["status"], merged["reported_to"], merged["escalated_to"]) == \
        ("contained", "t", "city-a")
    assert merged["alerts"] == ["a1", "manual", "new"] and merged["alert_count"] == 3
    assert merged["updated_at"] == timeutil.format(T0 + H)


def test_without_a_responder_the_suggestion_follows_the_correlator():
    stored = keep_people_fields(None, incident("IV"), now=T0)
    again = keep_people_fields(stored, incident("III"), now=T0)["watchkeeper"]["incident"]
    assert again["level"] == again["level_suggested"] == "III" and again["status"] == "new"
    assert again["graded_at"] == timeutil.format(T0)     # graded again when the grade moved
    assert keep_people_fields(stored, incident("IV"), now=T0 + H)["watchkeeper"]["incident"][
        "graded_at"] == timeutil.format(CREATED)


def test_incident_settings_come_from_config_and_bad_values_name_the_key(tmp_path):
    from watchkeeper.config import ConfigError, load_settings
    good = tmp_path / "good.yaml"
    good.write_text("incidents: {report_hours: {cii: 0.5}, clock_start: graded}\n")
    settings = load_settings(good)
    assert settings.incidents.hours_for("cii") == 0.5 and settings.incidents.clock_start == \
        "graded"
    bad = tmp_path / "bad.yaml"
    for text in ("incidents: {report_hours: {ministry: 3}}", "incidents: {clock_start: x}",
                 "incidents: {report_hours: {cii: -1}}"):
        bad.write_text(text + "\n")
        with pytest.raises(ConfigError, match="incidents"):
            load_settings(bad)


def test_status_times_fill_skipped_stages_and_reopening_clears_closed_at():
    changes = status_times({"status": "new"}, "contained", T0)
    assert changes["acknowledged_at"] == changes["investigating_at"] == \
        changes["contained_at"] == timeutil.format(T0)
    assert "closed_at" not in changes
    reopened = status_times({"status": "closed", "closed_at": "c", "acknowledged_at": "a",
                             "investigating_at": "i"}, "investigating", T0 + H)
    assert reopened == {"status": "investigating", "closed_at": None}


def test_a_write_from_an_older_read_gets_peoples_newer_fields():
    from watchkeeper.incidents import keep_newer_people_fields
    stored = incident("I", level_suggested="III", level_set_by="zhao", status="contained",
                      people_rev=3, unlinked=["a1"], alerts=["a2"])
    stale = incident("III", alerts=["a1", "a2", "a3"], people_rev=1)       # the correlator's
    state = keep_newer_people_fields(stored, stale)["watchkeeper"]["incident"]
    assert (state["level"], state["status"], state["people_rev"]) == ("I", "contained", 3)
    assert state["alerts"] == ["a2", "a3"] and state["warning_colour"] == "red"
    current = incident("II", people_rev=3, status="closed")                # not older: as is
    assert keep_newer_people_fields(stored, current)["watchkeeper"]["incident"]["status"] == \
        "closed"
    assert keep_newer_people_fields(None, stale) is stale
