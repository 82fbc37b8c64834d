"""Store contract: SQLite and Elasticsearch answer the same (DESIGN.md §5)."""
from __future__ import annotations

import pytest

from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, FlowRecord, alert_document, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Query

T0 = timeutil.parse("2026-05-10T12:00:00+00:00")
NETS = InternalNetworks()


def _flow(i: int, start: float, src: str = "10.0.0.1") -> dict:
    record = FlowRecord(uid=f"C{i}", start=start, end=start + 1, proto=6, orig_ip=src,
                        orig_port=40000 + i, resp_ip="10.0.9.9", resp_port=80,
                        orig_pkts=3, resp_pkts=2, conn_state="SF")
    return flow_document(record, "sensor-1", NETS)


def _alert(entity: str, category: str = "scan", severity: int = 2, at: float = T0,
           message: str = "probe", evidence: list[str] | None = None) -> dict:
    spec = AlertSpec("scan", "1", category, f"wk.{category}", category, severity,
                     f"{entity} {message}", entity, at, at + 5, source_ip=entity,
                     evidence=evidence or [], subscores={"fanout": 0.5})
    return alert_document(spec, created=at + 6)


def _write(store, kind, docs):
    assert store.bulk_upsert(kind, docs) == len(docs)
    store.refresh()


def test_upsert_by_id_never_duplicates(store):
    docs = [_flow(i, T0 + i) for i in range(20)]
    _write(store, "events", docs)
    _write(store, "events", docs[:10])          # a replay
    page = store.search("events", Query(limit=100))
    assert page.total == 20
    assert len({d["event"]["id"] for d in page.items}) == 20


def test_pages_cover_everything_once_even_with_equal_timestamps(store):
    docs = [_flow(i, T0 + (i // 10)) for i in range(95)]  # ten per timestamp
    _write(store, "events", docs)
    seen, cursor = [], None
    for _ in range(20):
        page = store.search("events", Query(limit=7, cursor=cursor))
        seen += [d["event"]["id"] for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(d["event"]["id"] for d in docs)
    times = [timeutil.parse(d["@timestamp"]) for d in store.search("events", Query(limit=95)).items]
    assert times == sorted(times, reverse=True)


def test_scan_walks_every_page_and_stops_at_the_limit(store, monkeypatch):
    docs = [_flow(i, T0 + (i // 10)) for i in range(95)]  # ten per timestamp
    _write(store, "events", docs)
    monkeypatch.setattr("watchkeeper.store.base.SCAN_PAGE", 7)      # 14 pages, not one
    query = Query(limit=3)
    ids = [d["event"]["id"] for d in store.scan("events", query)]
    assert sorted(ids) == sorted(d["event"]["id"] for d in docs)   # each once
    assert [d["event"]["id"] for d in store.scan("events", query, limit=20)] == ids[:20]
    assert list(store.scan("events", query, limit=0)) == []
    assert query.limit == 3 and query.cursor is None                # the caller's query is kept
    asc = [timeutil.parse(d["@timestamp"]) for d in store.scan("events", Query(order="asc"))]
    assert asc == sorted(asc)


@pytest.mark.parametrize("query, expected", [
    (Query(terms={"watchkeeper.alert.category": ["dos"]}), {"10.0.0.3"}),
    (Query(terms={"event.severity": [4]}), {"10.0.0.4"}),
    (Query(terms={"watchkeeper.alert.category": ["scan"], "event.severity": [2]}),
     {"10.0.0.1", "10.0.0.2"}),
    (Query(ip="10.0.0.2"), {"10.0.0.2"}),
    (Query(q="flooding"), {"10.0.0.3"}),
    (Query(since=T0 + 50), {"10.0.0.4"}),
    (Query(until=T0 + 1), {"10.0.0.1"}),
    (Query(since=T0 + 1, until=T0 + 50), {"10.0.0.2", "10.0.0.3"}),
])
def test_filters(store, query, expected):
    _write(store, "alerts", [
        _alert("10.0.0.1", at=T0), _alert("10.0.0.2", at=T0 + 10),
        _alert("10.0.0.3", "dos", 3, T0 + 20, "flooding"), _alert("10.0.0.4", "scan", 4, T0 + 60),
    ])
    page = store.search("alerts", query)
    assert {d["source"]["ip"] for d in page.items} == expected
    assert page.total == len(expected)


def test_text_search_finds_the_zh_cn_wording_too(store):
    """Analysts search in Chinese: `q` matches the English `message` or the zh-CN one."""
    alerts = [_alert("10.0.0.1", message="vertical scan"), _alert("10.0.0.2", "dos")]
    alerts[0]["watchkeeper"]["alert"]["message_zh"] = "内网主机 10.0.0.1 纵向扫描：192 次首次连接"
    alerts[1]["watchkeeper"]["alert"]["message_zh"] = "针对 10.0.0.9 的 SYN 洪泛攻击"
    _write(store, "alerts", alerts)
    for q, expected in (("纵向扫描", {"10.0.0.1"}), ("洪泛", {"10.0.0.2"}),
                        ("vertical", {"10.0.0.1"}), ("横向扫描", set())):
        assert {d["source"]["ip"] for d in store.search("alerts", Query(q=q)).items} == \
            expected, q


def test_terms_and_histogram(store):
    _write(store, "alerts", [_alert(f"10.0.0.{i}", "scan" if i < 5 else "dos", at=T0 + i * 60)
                             for i in range(8)])
    buckets = store.terms("alerts", "watchkeeper.alert.category", Query())
    assert [(b.key, b.count) for b in buckets] == [("scan", 5), ("dos", 3)]
    hist = store.date_histogram("alerts", 300, Query())
    assert sum(b.count for b in hist) == 8
    assert [b.key for b in hist] == sorted(b.key for b in hist)
    assert all(b.key % 300 == 0 for b in hist)
    assert store.terms("alerts", "event.severity", Query())[0].key == 2


def test_terms_of_addresses_count_and_order_like_any_field(store):
    # Elasticsearch counts address fields by hashing the matching values (execution_hint map)
    ips = ["10.0.0.9", "10.0.0.2", "10.0.0.9", "10.0.0.3", "10.0.0.2", "10.0.0.9", "10.0.0.1"]
    alerts = [_alert(f"10.1.0.{i}", at=T0 + i) for i in range(len(ips))]  # distinct ids
    for alert, ip in zip(alerts, ips):
        alert["source"]["ip"] = ip
    _write(store, "alerts", alerts)
    buckets = store.terms("alerts", "source.ip", Query(), 3)
    assert [(b.key, b.count) for b in buckets] == [("10.0.0.9", 3), ("10.0.0.2", 2),
                                                   ("10.0.0.1", 1)]
    late = store.terms("alerts", "source.ip", Query(since=T0 + 3), 10)
    assert [(b.key, b.count) for b in late] == [("10.0.0.1", 1), ("10.0.0.2", 1),
                                                ("10.0.0.3", 1), ("10.0.0.9", 1)]


def test_evidence_lookup_by_ids(store):
    flows = [_flow(i, T0 + i) for i in range(5)]
    _write(store, "events", flows)
    wanted = [flows[3]["event"]["id"], flows[1]["event"]["id"], "missing"]
    found = store.get_by_ids("events", wanted)
    assert [d["event"]["id"] for d in found] == wanted[:2]


def test_alert_update_is_audited_and_survives_a_re_raise(store):
    alert = _alert("10.0.0.7")
    _write(store, "alerts", [alert])
    alert_id = alert["event"]["id"]
    updated = store.update_alert(alert_id, {"status": "acknowledged", "assignee": "li.wei"},
                                 actor="li.wei", comment="looking")
    assert updated["watchkeeper"]["alert"]["status"] == "acknowledged"
    again = _alert("10.0.0.7")
    again["watchkeeper"]["alert"]["count"] = 9  # the detector re-raises with a new count
    _write(store, "alerts", [again])
    stored = store.get_by_ids("alerts", [alert_id])[0]["watchkeeper"]["alert"]
    assert (stored["status"], stored["assignee"], stored["count"]) == ("acknowledged", "li.wei", 9)
    audit = store.search("audit", Query()).items
    assert len(audit) == 1 and audit[0]["user"]["name"] == "li.wei"
    assert audit[0]["watchkeeper"]["audit"]["changes"]["status"] == {"from": "new",
                                                                      "to": "acknowledged"}
    with pytest.raises(KeyError):
        store.update_alert("no-such-alert", {"status": "resolved"}, actor="x")
    with pytest.raises(ValueError):
        store.update_alert(alert_id, {"severity": 1}, actor="x")


def test_retention_drops_whole_old_days_only(store):
    day = 86400
    _write(store, "events", [_flow(i, T0 - i * day) for i in range(4)])
    dropped = store.delete_events_before(timeutil.day(T0 - 1 * day))
    store.refresh()
    assert dropped == [timeutil.day(T0 - 3 * day), timeutil.day(T0 - 2 * day)]
    assert store.search("events", Query()).total == 2


def test_bad_queries_are_refused():
    with pytest.raises(ValueError):
        Query(terms={"no.such.field": ["x"]})
    with pytest.raises(ValueError):
        Query(limit=0)


def test_foreign_cursor_is_refused(store):
    with pytest.raises(ValueError):
        store.search("events", Query(cursor="bm90LWEtY3Vyc29y"))
