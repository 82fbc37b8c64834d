"""Generated compliance reports in the store (kind `reports`): metadata plus the PDF bytes.

Shared by the report generator (reports/) that writes them and the API that lists and serves
them. Two documents per report, the same on SQLite and Elasticsearch: the metadata in kind
`reports` (small: lists and searches never carry the bytes) and the PDF and HTML, base64, in a
blob document of kind `state` (`report-blob:<id>`, never searched), written first so a listed
report always has its bytes. A report belongs to the site whose subtree it covers (`labels.site`), so tenancy
(watchkeeper/store/scoped.py) applies to reports like to alerts: a county officer sees the
county's reports and nothing above it. Reports covering the whole deployment carry no site
and only root principals see them.

Scheduled runs are claimed with `Store.insert_new` on a `state` document keyed by
schedule + period: whichever scheduler process inserts it first produces the report, every
other one sees False and skips; so a report is generated and sent once per deployment.
"""
from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass

from watchkeeper import schema, timeutil
from watchkeeper.store.base import Query, Store

LIST_FIELDS = ("type", "period", "period_start", "period_end", "schedule", "sha256", "lang",
               "incident_id", "generated_by", "size", "deliveries")


@dataclass
class StoredReport:
    """What a caller needs to write one report."""
    report_id: str
    report_type: str            # daily | weekly | monthly | incident
    period: str                 # label, e.g. 2026-11, 2026-W45, 2026-11-05
    period_start: float         # epoch seconds, UTC
    period_end: float
    site: str | None            # scope: the root of the subtree covered; None = everything
    pdf: bytes
    html: str
    lang: str = "zh-CN"
    schedule: str | None = None
    incident_id: str | None = None
    generated_by: str = "cli"
    sections: dict | None = None   # per-section figures, for machine checks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_id(report_id: str) -> str:
    return f"report-blob:{report_id}"


def report_document(report: StoredReport, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    info = {
        "type": report.report_type, "period": report.period,
        "period_start": timeutil.format(report.period_start),
        "period_end": timeutil.format(report.period_end),
        "sha256": sha256(report.pdf), "size": len(report.pdf), "lang": report.lang,
        "generated_by": report.generated_by, "deliveries": [],
        "sections": report.sections or {},
    }
    if report.schedule:
        info["schedule"] = report.schedule
    if report.incident_id:
        info["incident_id"] = report.incident_id
    doc = {"@timestamp": timeutil.format(now),
           "event": {"id": report.report_id, "kind": "event", "dataset": "watchkeeper.report"},
           "message": f"{report.report_type} {report.period}",
           "watchkeeper": {"report": info}}
    if report.site:
        doc["labels"] = {"site": report.site}
    return doc


def blob_document(report: StoredReport, now: float | None = None) -> dict:
    return {"@timestamp": timeutil.format(time.time() if now is None else now),
            "event": {"id": blob_id(report.report_id), "kind": "state",
                      "dataset": "watchkeeper.report_blob"},
            "watchkeeper": {"state": {"pdf": base64.b64encode(report.pdf).decode(),
                                      "html": base64.b64encode(report.html.encode()).decode()}}}


def save_report(store: Store, report: StoredReport, now: float | None = None) -> dict:
    store.bulk_upsert("state", [blob_document(report, now)])
    doc = report_document(report, now)
    store.bulk_upsert("reports", [doc])
    # Both: a list shows the report and its download reads the blob right away (an ES search
    # by ids sees only refreshed writes).
    store.refresh("state")
    store.refresh("reports")
    return doc


def summary(doc: dict) -> dict:
    """A stored report without its bytes (what a list shows)."""
    info = doc.get("watchkeeper", {}).get("report", {})
    return {"id": schema.get(doc, "event.id"), "generated_at": doc.get("@timestamp"),
            "site": (doc.get("labels") or {}).get("site"),
            **{k: info.get(k) for k in LIST_FIELDS}}


def _blob(store: Store, doc: dict) -> dict:
    """The bytes of a report whose metadata the caller may see (tenancy is checked on `doc`,
    read through the scoped store; the blob itself is looked up by id in the whole store)."""
    found = store.get_by_ids("state", [blob_id(schema.get(doc, "event.id"))])
    if not found:
        raise KeyError(f"report {schema.get(doc, 'event.id')}: its PDF is missing")
    return found[0]["watchkeeper"]["state"]


def pdf_bytes(store: Store, doc: dict) -> bytes:
    return base64.b64decode(_blob(store, doc)["pdf"])


def html_text(store: Store, doc: dict) -> str:
    return base64.b64decode(_blob(store, doc)["html"]).decode()


def list_reports(store, report_type: str | None = None, limit: int = 100,
                 cursor: str | None = None):
    """Newest first; `store` may be a ScopedStore (tenancy) or a Store."""
    terms = {"watchkeeper.report.type": [report_type]} if report_type else {}
    return store.search("reports", Query(terms=terms, limit=limit, cursor=cursor))


def record_delivery(store: Store, report_id: str, attempt: dict) -> dict | None:
    """Append one delivery attempt (channel, target, ok, error, at) to the report."""
    found = store.get_by_ids("reports", [report_id])
    if not found:
        return None
    doc = found[0]
    doc["watchkeeper"]["report"].setdefault("deliveries", []).append(attempt)
    store.bulk_upsert("reports", [doc])
    store.refresh("reports")
    return doc


def claim_id(schedule: str, period: str) -> str:
    return f"report-claim:{schedule}:{period}"


def claim_run(store: Store, schedule: str, period: str, owner: str,
              now: float | None = None) -> bool:
    """True for the one process that may produce this schedule's report for this period."""
    now = time.time() if now is None else now
    doc = {"@timestamp": timeutil.format(now),
           "event": {"id": claim_id(schedule, period), "kind": "state",
                     "dataset": "watchkeeper.report_claim"},
           "message": f"{schedule} {period} claimed by {owner}",
           "watchkeeper": {"state": {"schedule": schedule, "period": period, "owner": owner}}}
    return store.insert_new("state", doc)
