"""MTTA / MTTR (8.1.10.12): mean time from discovery to acknowledgement and to closure, per
emergency level, over the incidents of the period that carry those times."""
from __future__ import annotations

from reports.context import ReportContext, get
from reports.model import Row, SectionResult
from watchkeeper import timeutil

KEY = "response"
REPORT_TYPES = ("weekly", "monthly")
MAX_INCIDENTS = 5000


def build(ctx: ReportContext) -> SectionResult:
    acc: dict[str, dict[str, list[float]]] = {}
    for doc in ctx.scoped.scan("incidents", ctx.query(),
                                     limit=MAX_INCIDENTS):
        level = get(doc, "watchkeeper.incident.level") or "—"
        start = _t(doc, "discovered_at") or _t(doc, "first_seen")
        slot = acc.setdefault(level, {"ack": [], "close": []})
        for name, key in (("acknowledged_at", "ack"), ("closed_at", "close")):
            end = _t(doc, name)
            if start is not None and end is not None and end >= start:
                slot[key].append(end - start)
    missing = ctx.word("no_data")
    rows = [{"level": lv, "mtta": _mean(v["ack"], missing), "mttr": _mean(v["close"], missing),
             "acknowledged": len(v["ack"]), "closed": len(v["close"])}
            for lv, v in sorted(acc.items())]
    all_ack = [x for v in acc.values() for x in v["ack"]]
    all_close = [x for v in acc.values() for x in v["close"]]
    data = {"levels": rows, "mtta": _mean(all_ack, missing),
            "mttr": _mean(all_close, missing)}
    status = "pass" if all_ack else "na"
    row = Row("8.1.10.12", status, "response.measured" if all_ack else "response.no_data",
              {"mtta": data["mtta"], "mttr": data["mttr"]})
    return SectionResult(KEY, [row], data)


def _t(doc: dict, name: str) -> float | None:
    value = get(doc, f"watchkeeper.incident.{name}")
    try:
        return timeutil.parse(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _mean(values: list[float], missing: str) -> str:
    """Minutes, shown; `missing` (无数据) when nothing was measured."""
    if not values:
        return missing
    return f"{sum(values) / len(values) / 60:.1f}"
