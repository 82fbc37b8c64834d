"""What a store read asks and answers (the store contract, watchkeeper/store/base.py): the
filterable fields, Query, pages, buckets and groups."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Fields that can be filtered exactly and aggregated (keyword, ip or numeric in both backends).
TERM_FIELDS = frozenset({
    "event.dataset", "event.kind", "event.severity", "event.module", "event.outcome",
    "event.action",
    "watchkeeper.alert.category", "watchkeeper.alert.status", "watchkeeper.alert.detector",
    "watchkeeper.alert.assignee", "watchkeeper.alert.incident_id", "watchkeeper.alert.entity",
    "watchkeeper.alert.verdict", "watchkeeper.alert.tags", "watchkeeper.alert.suppressed_by",
    "watchkeeper.comment.object_id", "watchkeeper.comment.object_kind",
    "watchkeeper.audit.object_id", "watchkeeper.audit.object_kind",
    "watchkeeper.flow.conn_state", "rule.id", "source.ip", "destination.ip", "destination.port",
    "related.ip", "network.transport", "network.protocol", "network.direction",
    "labels.site", "observer.name", "user.name", "dns.question.name",
    "watchkeeper.incident.status", "watchkeeper.incident.entity",
    "watchkeeper.incident.categories", "watchkeeper.incident.level",
    # asset context (detectors' AlertContext) and collector status documents: posture
    "watchkeeper.asset.source.criticality", "watchkeeper.asset.source.mlps_level",
    "watchkeeper.asset.destination.criticality", "watchkeeper.asset.destination.mlps_level",
    "watchkeeper.collector.name", "watchkeeper.deadletter.stage",
    "watchkeeper.incident.level_suggested", "watchkeeper.incident.escalated_to",
    "watchkeeper.incident.assignee", "watchkeeper.audit.object_id",
    "watchkeeper.report.type", "watchkeeper.report.period", "watchkeeper.report.schedule",
    "watchkeeper.run.playbook", "watchkeeper.run.status", "watchkeeper.run.run_id",
    "watchkeeper.run.target", "watchkeeper.run.trigger.object_id",
    "watchkeeper.run.incident_id",
    "watchkeeper.alert.weight_points",    # stamped on write (watchkeeper/posture_weight.py)
})

_EARLIEST, _LATEST = 0.0, 253402300799.0   # 1970-01-01 .. 9999-12-31T23:59:59Z
# (audit object_id: one id, or a bulk change's list of ids)
ARRAY_FIELDS = frozenset({"related.ip", "watchkeeper.incident.categories",
                          "watchkeeper.alert.tags", "watchkeeper.audit.object_id"})
# Orders a search can page in besides time: numeric fields, ties broken by time then id.
SORT_FIELDS = ("event.severity", "event.risk_score")
MISSING_SORT_VALUE = -1       # a document without the sort field sorts below every real value


@dataclass
class Query:
    since: float | None = None          # epoch seconds, inclusive
    until: float | None = None          # exclusive
    terms: dict[str, list] = field(default_factory=dict)   # TERM_FIELDS -> accepted values
    ip: str | None = None               # any address involved (related.ip)
    q: str | None = None                # substring of `message`
    limit: int = 100
    cursor: str | None = None
    order: Literal["desc", "asc"] = "desc"
    sort: str | None = None             # None = time; or one of SORT_FIELDS (then time, id)
    # Tenancy (watchkeeper/store/scoped.py sets it, nothing else should): None = every
    # document; a list = only documents whose labels.site is in it (site-less ones excluded).
    sites: list[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.terms) - TERM_FIELDS
        if unknown:
            raise ValueError(f"cannot filter on {sorted(unknown)}; filterable: {sorted(TERM_FIELDS)}")
        if self.sort is not None and self.sort not in SORT_FIELDS:
            raise ValueError(f"cannot sort on {self.sort!r}; sortable: time, {SORT_FIELDS}")
        if not 1 <= self.limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _EARLIEST <= value <= _LATEST:
                raise ValueError(f"{name} must be between 1970 and 9999")


@dataclass
class Page:
    items: list[dict]
    total: int
    next_cursor: str | None


@dataclass
class Bucket:
    key: str | int | float
    count: int


@dataclass
class Group:
    """One combination of `group_counts` fields (None: the field is missing) and its count;
    `start` is the interval start (epoch seconds) when an interval was asked for; with a
    `sum_field`, `total` is its sum over the group's documents and `summed` how many of them
    have it (the others are not in `total`)."""
    keys: tuple
    count: int
    start: int | None = None
    total: float | None = None
    summed: int | None = None


class TooManyGroups(ValueError):
    """group_counts would return more than MAX_GROUPS combinations."""


MAX_GROUPS = 200_000    # group_counts refuses to return more combinations than this


# Times the live feed follows (ascending, with a (time, id) cursor): the indexer's stamp on
# every stored alert and incident, and the analysts' last change (triage, incidents owners).
CHANGE_FIELDS = frozenset({"event.ingested", "watchkeeper.alert.updated_at",
                           "watchkeeper.incident.updated_at"})


def check_change_field(time_field: str) -> None:
    if time_field not in CHANGE_FIELDS:
        raise ValueError(f"cannot follow {time_field!r}; one of {sorted(CHANGE_FIELDS)}")


def group_order(group: Group) -> tuple:
    """(start, keys) with missing values first: both backends return groups in this order."""
    return (group.start or 0, tuple((k is not None, k) for k in group.keys))


def check_group_fields(fields: list[str], interval_seconds: int | None = None,
                       sum_field: str | None = None) -> None:
    """Scalar TERM_FIELDS; none at all only with an interval (counts per interval)."""
    if sum_field is not None and (sum_field not in TERM_FIELDS or sum_field in ARRAY_FIELDS):
        raise ValueError(f"cannot sum {sum_field!r}: not a scalar numeric field")
    bad = [f for f in fields if f not in TERM_FIELDS or f in ARRAY_FIELDS]
    if bad or not (fields or interval_seconds):
        raise ValueError(f"cannot group by {bad}; groupable: scalar fields of "
                         f"{sorted(TERM_FIELDS)}")
