"""A fixed dataset for the report tests: November 2026 (Beijing time) and October before it.

Alerts across categories, severities, sites and the month boundary (Beijing midnight is 16:00
UTC the day before), incidents with levels and reporting times, collector statuses, flows for
the retention check and audit records.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

from watchkeeper import schema, timeutil
from watchkeeper.assets import Asset, Inventory, Site
from watchkeeper.store.audit import audit_record

CATEGORIES = ["scan", "brute_force", "dos", "beaconing", "exfiltration", "ioc_match"]
SITES = ["city-a", "county-a1", "city-b"]


def utc(*parts) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


def inventory() -> Inventory:
    inv = Inventory(sites={s.id: s for s in (
        Site(id="region", name="区域中心"), Site(id="city-a", name="A市", parent="region"),
        Site(id="county-a1", name="A1县", parent="city-a"),
        Site(id="city-b", name="B市", parent="region"))})
    import ipaddress
    for cidr, site, name, level in (("10.1.0.0/16", "city-a", "A市政务外网门户", 3),
                                    ("10.2.0.0/16", "county-a1", "A1县社保系统", 2),
                                    ("10.3.0.0/16", "city-b", "B市数据中心", 3)):
        inv._nets[4].append((ipaddress.ip_network(cidr),
                             Asset(cidr=cidr, site=site, name=name, mlps_level=level)))
    return inv


def alert(ts: float, category: str, severity: int, site: str, src: str, dst: str,
          status: str = "new") -> dict:
    iso = timeutil.format(ts)
    return {"@timestamp": iso,
            "event": {"id": schema.stable_id("seed-alert", ts, category, src, dst),
                      "kind": "alert", "severity": severity, "risk_score": severity * 20,
                      "dataset": "watchkeeper.alert", "created": iso},
            "message": f"{category} from {src}", "labels": {"site": site},
            "source": {"ip": src}, "destination": {"ip": dst}, "related": {"ip": [src, dst]},
            "rule": {"id": category, "name": category},
            "watchkeeper": {"alert": {"category": category, "detector": category,
                                      "status": status, "first_seen": iso, "last_seen": iso,
                                      "count": 1, "entity": src}}}


def alerts() -> list[dict]:
    rng = random.Random(11)
    out = []
    site_net = {"city-a": "10.1", "county-a1": "10.2", "city-b": "10.3"}
    for month_start, n in ((utc(2026, 10, 31, 16), 180), (utc(2026, 9, 30, 16), 90)):
        for i in range(n):
            ts = month_start + rng.uniform(0, 29.9 * 86400)
            site = rng.choice(SITES)
            src = f"203.0.113.{rng.randint(1, 12)}"
            dst = f"{site_net[site]}.0.{rng.randint(1, 6)}"
            status = rng.choice(["new", "acknowledged", "closed", "closed"])
            out.append(alert(ts, rng.choice(CATEGORIES), rng.choice([1, 2, 2, 3, 4]), site,
                             src, dst, status))
    # Beijing-month boundary: 23:59 on 31 Oct is October, 00:30 on 1 Nov is November.
    out.append(alert(utc(2026, 10, 31, 15, 59), "scan", 2, "city-a", "198.51.100.1", "10.1.0.9"))
    out.append(alert(utc(2026, 10, 31, 16, 30), "scan", 2, "city-a", "198.51.100.2", "10.1.0.9"))
    return out


def incident(iid: str, ts: float, level: str, site: str, *, due: float | None = None,
             reported: float | None = None, ack: float | None = None,
             closed: float | None = None, status: str = "new") -> dict:
    info = {"entity": "203.0.113.5", "status": status, "alerts": [], "alert_count": 0,
            "categories": ["brute_force"], "level": level, "first_seen": timeutil.format(ts),
            "last_seen": timeutil.format(ts + 600), "discovered_at": timeutil.format(ts),
            "gbt_code": "NACRED", "gbt_name": "凭据攻击事件", "org_type": "other"}
    for name, value in (("report_due", due), ("reported_at", reported),
                        ("acknowledged_at", ack), ("closed_at", closed)):
        if value is not None:
            info[name] = timeutil.format(value)
    return {"@timestamp": timeutil.format(ts),
            "event": {"id": iid, "kind": "event", "dataset": "watchkeeper.incident",
                      "severity": 3},
            "labels": {"site": site}, "message": iid, "watchkeeper": {"incident": info}}


def incidents() -> list[dict]:
    t = utc(2026, 11, 10, 2)
    return [
        incident("inc-on-time", t, "III", "city-a", due=t + 4 * 3600, reported=t + 3600,
                 ack=t + 600, closed=t + 7200, status="closed"),
        incident("inc-late", t + 86400, "II", "county-a1", due=t + 86400 + 4 * 3600,
                 reported=t + 86400 + 6 * 3600, ack=t + 86400 + 1200),
        incident("inc-overdue", t + 2 * 86400, "III", "city-b", due=t + 2 * 86400 + 4 * 3600,
                 status="investigating"),
        incident("inc-minor", t + 3 * 86400, "IV", "city-a", ack=t + 3 * 86400 + 300,
                 closed=t + 3 * 86400 + 3600, status="closed"),
        incident("inc-october", utc(2026, 10, 5), "IV", "city-b"),
    ]


def collector_status(ts: float, observer: str, site: str) -> dict:
    return {"@timestamp": timeutil.format(ts),
            "event": {"id": schema.stable_id("seed-status", observer, ts), "kind": "metric",
                      "dataset": "watchkeeper.collector"},
            "observer": {"name": observer, "type": "sensor"}, "labels": {"site": site},
            "watchkeeper": {"collector": {"name": "capture",
                                          "counters": {"packets": 1000, "dropped": 3}}}}


def flow(ts: float, site: str) -> dict:
    return {"@timestamp": timeutil.format(ts),
            "event": {"id": schema.stable_id("seed-flow", ts, site), "kind": "event",
                      "dataset": "watchkeeper.flow"},
            "labels": {"site": site}, "source": {"ip": "10.1.0.1"},
            "destination": {"ip": "10.1.0.2"}}


def events() -> list[dict]:
    docs = []
    start = utc(2026, 10, 31, 16)
    for hour in range(0, 30 * 24, 6):       # every 6 h: 1 hour in 6 heard
        docs.append(collector_status(start + hour * 3600, "sensor-a", "city-a"))
    for hour in range(0, 30 * 24):           # every hour: 100 %
        docs.append(collector_status(start + hour * 3600 + 3540, "sensor-b", "city-b"))
    # Flows since April (more than six months), on a few days only: each day is a daily
    # Elasticsearch index, and creating many makes the contract test slow.
    for month in (4, 6, 9, 11):
        docs.append(flow(utc(2026, month, 1, 3), "city-a"))
    docs.append(flow(utc(2026, 11, 3), "city-b"))
    return docs


AUDIT_TIMES = [utc(2026, 10, 20), utc(2026, 11, 2), utc(2026, 11, 15), utc(2026, 11, 29),
               utc(2026, 12, 2)]


def seed(store) -> Inventory:
    alert_docs, incident_docs = alerts(), incidents()
    # The late incident (county-a1, 11 Nov) links that day's county alerts: its timeline.
    linked = sorted(a["event"]["id"] for a in alert_docs if a["labels"]["site"] == "county-a1"
                    and "2026-11-11" <= a["@timestamp"] < "2026-11-12")
    incident_docs[1]["watchkeeper"]["incident"].update(alerts=linked, alert_count=len(linked))
    store.bulk_upsert("alerts", alert_docs)
    store.bulk_upsert("incidents", incident_docs)
    store.bulk_upsert("events", events())
    seed_audit(store)
    store.refresh()
    return inventory()


def seed_audit(store) -> None:
    """Audit records at fixed past times: the chain takes its clock from the module's `time`,
    replaced here by a fixed one for each record (the chain itself is the real one)."""
    import types

    from watchkeeper.store import audit as audit_module
    real = audit_module.time
    try:
        for i, moment in enumerate(AUDIT_TIMES):
            audit_module.time = types.SimpleNamespace(time=lambda m=moment: m)
            store.append_audit(audit_record("report.test", f"user{i}", message="seed"))
    finally:
        audit_module.time = real
