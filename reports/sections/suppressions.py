"""Suppressions in force at the period's end: who made them, why, until when. The rules are the
alerting feature's (kind `suppressions`); until that kind exists the section says 无数据."""
from __future__ import annotations

from reports.context import ReportContext, get
from reports.model import SectionResult
from watchkeeper.store.base import KINDS, Query

KEY = "suppressions"
REPORT_TYPES = ("weekly", "monthly")
LISTED = 100


def build(ctx: ReportContext) -> SectionResult:
    if "suppressions" not in KINDS:
        return SectionResult(KEY, [], {"available": False, "rules": []})
    rules = []
    for doc in ctx.store.scan("suppressions", Query(until=ctx.period.end), limit=LISTED):
        rule = get(doc, "watchkeeper.suppression", {}) or {}
        site = get(doc, "labels.site")
        if ctx.scoped.sites is not None and site not in ctx.scoped.sites:
            continue
        until = rule.get("expires_at") or rule.get("until")
        if until and until < _iso(ctx.period.end):
            continue      # expired before the period ended
        rules.append({"id": get(doc, "event.id"), "who": rule.get("created_by")
                      or get(doc, "user.name") or ctx.word("no_data"), "why": rule.get("reason") or ctx.word("no_data"),
                      "until": until or ctx.word("indefinite"), "enabled": rule.get("enabled", True)})
    return SectionResult(KEY, [], {"available": True, "rules": rules})


def _iso(epoch: float) -> str:
    from watchkeeper import timeutil
    return timeutil.format(epoch)
