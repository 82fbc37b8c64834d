"""Incident domain rules without a store: emergency levels, the status workflow, reporting
clocks and the fields people own (docs/api-incidents.md).

- Levels I–IV (特别重大/重大/较大/一般) with warning colours red/orange/yellow/blue
  (national emergency response plan, STANDARDS.md §3). The correlator's grade is only a
  suggestion (`level_suggested`); a responder's `level` wins and is never reset by a re-merge.
- Reporting clock (国家网络安全事件报告管理办法, 2025, STANDARDS.md §3): for level III (较大)
  and above the report is due `hours[org_type]` after the start point (discovery = the first
  alert's event time, or the grading time), CII 1 h, central/state organs 2 h, others 4 h.
  Recording "reported to X at T" stops it; `overdue` is computed against an explicit `now`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchkeeper import timeutil

LEVELS = ("I", "II", "III", "IV")
LEVEL_NAMES = {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
WARNING_COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
REPORTABLE_LEVELS = frozenset({"I", "II", "III"})       # 较大 or above
STATUSES = ("new", "acknowledged", "investigating", "contained", "closed")
ORG_TYPES = ("cii", "state_organ", "other")
Level = Literal["I", "II", "III", "IV"]
Status = Literal["new", "acknowledged", "investigating", "contained", "closed"]
OrgType = Literal["cii", "state_organ", "other"]

# Fields people own on an incident: the correlator re-merging alerts never resets them.
PEOPLE_FIELDS = (
    "level", "level_set_by", "level_set_at", "level_reason", "graded_at",
    "status", "acknowledged_at", "investigating_at", "contained_at", "closed_at", "assignee",
    "reported_at", "reported_to", "reported_by",
    "linked", "unlinked", "escalated_to", "escalations",
)


# Always in an incident as read (null until set), so clients see one shape.
SHOWN_EVEN_IF_UNSET = ("level_set_by", "level_set_at", "acknowledged_at", "closed_at",
                       "reported_at", "reported_to", "assignee", "escalated_to")


class IncidentSettings(BaseModel):
    """Reporting clocks (config key `incidents`)."""
    model_config = ConfigDict(extra="forbid")

    report_hours: dict[OrgType, float] = Field(
        default_factory=lambda: {"cii": 1.0, "state_organ": 2.0, "other": 4.0},
        description="hours to report a level III+ incident, by the site's organisation type "
                    "(2025 reporting measures: CII 1 h, central/state organs 2 h, others 4 h)")
    clock_start: Literal["discovery", "graded"] = Field(
        "discovery", description="discovery: the first alert's event time; graded: when the "
                                 "incident was graded (by a responder, else by the correlator)")

    @field_validator("report_hours")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        for org_type, hours in value.items():
            if not 0 < hours <= 720:
                raise ValueError(f"{org_type}: hours must be > 0 and <= 720")
        return value

    def hours_for(self, org_type: str) -> float:
        defaults = IncidentSettings.model_fields["report_hours"].default_factory()
        return float(self.report_hours.get(org_type, defaults.get(org_type, 4.0)))


@dataclass
class ReportClock:
    required: bool                 # level III or above
    org_type: str
    start: str                     # discovery | graded
    discovered_at: str | None
    graded_at: str | None
    hours: float | None
    report_due: str | None
    reported_at: str | None
    reported_to: str | None
    overdue: bool


def info(doc: dict) -> dict:
    return doc.setdefault("watchkeeper", {}).setdefault("incident", {})


def effective_level(state: dict) -> str:
    """The responder's level if set, else the correlator's suggestion (older documents: level)."""
    if state.get("level_set_by") and state.get("level") in LEVELS:
        return state["level"]
    found = state.get("level_suggested") or state.get("level")
    return found if found in LEVELS else "IV"


def report_clock(doc: dict, settings: IncidentSettings, org_type: str, now: float) -> ReportClock:
    state = info(doc)
    level = effective_level(state)
    discovered = state.get("first_seen") or doc.get("@timestamp")
    graded = state.get("graded_at") or (doc.get("event") or {}).get("created") or discovered
    required = level in REPORTABLE_LEVELS
    start = discovered if settings.clock_start == "discovery" else graded
    hours = settings.hours_for(org_type) if required else None
    due = timeutil.format(timeutil.parse(start) + hours * 3600) if required and start else None
    reported = state.get("reported_at")
    if due is None:
        overdue = False
    elif reported:
        overdue = timeutil.parse(reported) > timeutil.parse(due)   # reported late stays late
    else:
        overdue = now > timeutil.parse(due)
    return ReportClock(required, org_type, settings.clock_start, discovered, graded, hours, due,
                       reported, state.get("reported_to"), overdue)


def present(doc: dict, settings: IncidentSettings, org_type: str, now: float) -> dict:
    """The incident as people read it: effective level, colour, clock and overdue filled in."""
    shown = json.loads(json.dumps(doc))
    state = info(shown)
    level = effective_level(state)
    state.setdefault("level_suggested", state.get("level") if not state.get("level_set_by")
                     else None)
    state.update(level=level, level_name=LEVEL_NAMES[level],
                 warning_colour=WARNING_COLOURS[level],
                 status=state.get("status") if state.get("status") in STATUSES else "new")
    for name in SHOWN_EVEN_IF_UNSET:
        state.setdefault(name, None)
    clock = asdict(report_clock(shown, settings, org_type, now))
    state.update(org_type=org_type, discovered_at=clock["discovered_at"],
                 graded_at=clock["graded_at"], report_required=clock["required"],
                 report_due=clock["report_due"], overdue=clock["overdue"],
                 report_hours=clock["hours"], clock_start=clock["start"])
    return shown


def keep_people_fields(stored: dict | None, merged: dict, now: float) -> dict:
    """The correlator's fresh merge, with everything people decided kept (like
    store.base.merge_alert for alerts): its grade becomes `level_suggested`; the level a
    responder set, the status and its times, reports, manual links and unlinks, escalation."""
    state = info(merged)
    state["level_suggested"] = state.get("level")
    kept = info(stored) if stored else {}
    for name in PEOPLE_FIELDS:
        if name in kept:
            state[name] = kept[name]
    if "people_rev" in kept:
        state["people_rev"] = kept["people_rev"]
    if not kept.get("level_set_by") and \
            kept.get("level_suggested") not in (None, state["level_suggested"]):
        state["graded_at"] = timeutil.format(now)          # re-graded by the correlator
    state.setdefault("status", "new")
    state.setdefault("graded_at", (merged.get("event") or {}).get("created"))
    _derive(state)
    state["discovered_at"] = state.get("first_seen")
    state["updated_at"] = timeutil.format(now)
    return merged


def _derive(state: dict) -> None:
    """Fields that follow from people's fields and the correlator's: level, membership, colour."""
    if not state.get("level_set_by"):
        state["level"] = state.get("level_suggested") or state.get("level")
    ids = (set(state.get("alerts", [])) | set(state.get("linked", []))) - \
        set(state.get("unlinked", []))
    state["alerts"], state["alert_count"] = sorted(ids), len(ids)
    state["warning_colour"] = WARNING_COLOURS[effective_level(state)]


def keep_newer_people_fields(stored: dict | None, incoming: dict) -> dict:
    """The store's rule for every incident write (both backends, atomically): a document
    computed from an older read (the correlator's step) never regresses what people changed
    since. People's operations bump `people_rev`; a write carrying a lower one gets the
    stored people's fields instead of its own."""
    if not stored:
        return incoming
    kept = info(stored)
    if int(kept.get("people_rev") or 0) <= int(info(incoming).get("people_rev") or 0):
        return incoming
    state = info(incoming)
    for name in (*PEOPLE_FIELDS, "people_rev"):
        if name in kept:
            state[name] = kept[name]
        else:
            state.pop(name, None)
    _derive(state)
    return incoming


def status_times(state: dict, new_status: str, now: float) -> dict:
    """Timestamps a status change sets: each stage's first arrival, acknowledged_at whenever
    work starts (skipping `acknowledged` still acknowledges), closed_at cleared on reopening."""
    stamp, changes = timeutil.format(now), {"status": new_status}
    order = STATUSES.index(new_status)
    for stage in STATUSES[1:order + 1]:
        if not state.get(f"{stage}_at"):
            changes[f"{stage}_at"] = stamp
    if new_status != "closed" and state.get("closed_at"):
        changes["closed_at"] = None
    return changes


@dataclass
class IncidentPolicy:
    """What reading an incident needs beyond the document: the clock settings and each
    site's organisation type (from the inventory; a site not listed is `other`)."""
    settings: IncidentSettings
    org_types: dict[str, str]

    def org_type(self, doc: dict) -> str:
        site = (doc.get("labels") or {}).get("site")
        found = self.org_types.get(site) if site else None
        return found if found in ORG_TYPES else "other"

    def present(self, doc: dict, now: float) -> dict:
        return present(doc, self.settings, self.org_type(doc), now)

    def clock(self, doc: dict, now: float) -> ReportClock:
        return report_clock(doc, self.settings, self.org_type(doc), now)
