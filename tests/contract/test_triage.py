"""Alert triage on both backends: workflow, verdicts, tags, bulk changes within a tenant scope,
comments, history from the audit chain, legacy statuses, sorted search."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store import Query
from watchkeeper.store import audit as chain
from watchkeeper.store.base import AlertConflict
from watchkeeper.store.comments import add_comment, list_comments
from watchkeeper.store.scoped import ScopedStore
from watchkeeper.store import triage
from watchkeeper.store.triage import (AlertChange, change_alert, change_alerts, history,
                                      history_entry, migrate_legacy_alerts, status_filter)

T0 = timeutil.parse("2026-05-10T12:00:00+00:00")


def _alert(n: int, site: str | None = None, severity: int = 2, risk: float | None = None,
           at: float = T0) -> dict:
    spec = AlertSpec("scan", "1", "scan", "wk.scan", "scan", severity, f"alert {n}",
                     f"e{n}", at, at + 5, source_ip="10.0.0.5")
    doc = alert_document(spec, created=at + 6)
    if site:
        doc["labels"] = {"site": site}
    if risk is None:
        doc["event"].pop("risk_score", None)
    else:
        doc["event"]["risk_score"] = risk
    return doc


def _info(store, alert_id: str) -> dict:
    return store.get_by_ids("alerts", [alert_id])[0]["watchkeeper"]["alert"]


def _put(store, docs: list[dict]) -> list[str]:
    store.bulk_upsert("alerts", docs)
    store.refresh()
    return [d["event"]["id"] for d in docs]


def test_workflow_timestamps_reopen_and_history(store):
    [aid] = _put(store, [_alert(1)])
    change_alert(store, aid, AlertChange(status="acknowledged"), "li.wei", T0 + 100)
    change_alert(store, aid, AlertChange(status="investigating", set_assignee=True,
                                         assignee="li.wei", tags_add=("apt", "vpn")),
                 "li.wei", T0 + 200)
    closed = change_alert(store, aid, AlertChange(status="closed", verdict="true_positive",
                                                  comment="confirmed"), "zhang.min", T0 + 300)
    info = closed["watchkeeper"]["alert"]
    assert (info["status"], info["verdict"], info["assignee"], info["tags"]) == (
        "closed", "true_positive", "li.wei", ["apt", "vpn"])
    assert info["acknowledged_at"] == timeutil.format(T0 + 100)
    assert info["closed_at"] == info["updated_at"] == timeutil.format(T0 + 300)
    change_alert(store, aid, AlertChange(status="investigating", tags_remove=("vpn",)),
                 "zhang.min", T0 + 400)
    info = _info(store, aid)
    assert (info["status"], info["verdict"], info["closed_at"], info["reopened"],
            info["tags"]) == ("investigating", None, None, 1, ["apt"])
    assert info["acknowledged_at"] == timeutil.format(T0 + 100)   # MTTA keeps the first
    records = history(store, "alert", aid).items
    assert [r["event"]["action"] for r in records] == [
        "alert.update", "alert.update", "alert.close", "alert.reopen"]
    assert [r["user"]["name"] for r in records] == ["li.wei", "li.wei", "zhang.min", "zhang.min"]
    assert records[2]["watchkeeper"]["audit"]["changes"]["status"] == {
        "from": "investigating", "to": "closed"}
    assert records[2]["message"] == "confirmed"
    assert chain.verify(store).ok


def test_invalid_transitions_name_the_allowed_ones_and_write_nothing(store):
    [aid] = _put(store, [_alert(1)])
    change_alert(store, aid, AlertChange(status="investigating"), "li.wei", T0)
    with pytest.raises(AlertConflict) as refused:
        change_alert(store, aid, AlertChange(status="acknowledged"), "li.wei", T0 + 1)
    assert refused.value.allowed == ["closed"] and "closed" in str(refused.value)
    with pytest.raises(AlertConflict):         # a verdict needs a closed alert
        change_alert(store, aid, AlertChange(verdict="duplicate"), "li.wei", T0 + 2)
    with pytest.raises(ValueError, match="verdict"):
        AlertChange(status="closed")
    with pytest.raises(KeyError):
        change_alert(store, "no-such-alert", AlertChange(status="closed", verdict="other"),
                     "li.wei", T0)
    assert _info(store, aid)["status"] == "investigating"
    assert len(history(store, "alert", aid).items) == 1


def test_concurrent_changes_are_never_lost(store):
    """Eight writers tag the same alert at once: each read-decide-write sees the others'."""
    [aid] = _put(store, [_alert(1)])

    def tag(n: int) -> None:
        change_alert(store, aid, AlertChange(tags_add=(f"t{n}",)), f"analyst-{n}", T0 + n)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(tag, range(8)))
    assert sorted(_info(store, aid)["tags"]) == [f"t{n}" for n in range(8)]
    assert len(history(store, "alert", aid).items) == 8
    assert chain.verify(store).ok


def test_concurrent_bulk_changes_are_never_lost(store):
    """Four bulk changes of the same alerts at once (Elasticsearch: the same versions read,
    so most conditional writes conflict and are redone): every alert carries every tag."""
    ids = _put(store, [_alert(n) for n in range(30)])

    def tag(n: int) -> list[str]:
        return change_alerts(store, ids, AlertChange(tags_add=(f"b{n}",)), f"a{n}", T0).changed
    with ThreadPoolExecutor(4) as pool:
        changed = list(pool.map(tag, range(4)))
    assert all(sorted(c) == sorted(ids) for c in changed)
    for alert in store.get_by_ids("alerts", ids):
        assert sorted(alert["watchkeeper"]["alert"]["tags"]) == ["b0", "b1", "b2", "b3"]


def test_a_re_raised_alert_keeps_the_triage_fields(store):
    doc = _alert(1)
    [aid] = _put(store, [doc])
    change_alert(store, aid, AlertChange(status="closed", verdict="false_positive",
                                         tags_add=("noise",)), "li.wei", T0)
    doc["watchkeeper"]["alert"]["count"] = 9
    _put(store, [doc])
    info = _info(store, aid)
    assert (info["status"], info["verdict"], info["tags"], info["count"]) == (
        "closed", "false_positive", ["noise"], 9)


def test_bulk_by_ids_counts_changes_and_refusals(store):
    ids = _put(store, [_alert(n) for n in range(4)])
    change_alert(store, ids[0], AlertChange(status="investigating"), "li.wei", T0)
    result = change_alerts(store, [*ids, "missing"], AlertChange(status="acknowledged"),
                           "li.wei", T0 + 10)
    assert sorted(result.changed) == sorted(ids[1:])
    assert set(result.refused) == {ids[0], "missing"} and result.matched == 4
    again = change_alerts(store, ids[1:], AlertChange(status="acknowledged"), "li.wei", T0)
    assert again.changed == [] and again.matched == 3        # already there: no change
    [bulk] = [history_entry(r, ids[2]) for r in history(store, "alert", ids[2]).items]
    assert (bulk["action"], bulk["actor"]) == ("alert.bulk_update", "li.wei")
    assert bulk["changes"]["status"] == {"from": "new", "to": "acknowledged"}
    assert [r["event"]["action"] for r in history(store, "alert", ids[0]).items] == [
        "alert.update"]                                       # refused: nothing recorded


def test_a_large_bulk_change_is_audited_in_chunks(store, monkeypatch):
    monkeypatch.setattr(triage, "BULK_AUDIT_CHUNK", 2)
    ids = _put(store, [_alert(n) for n in range(5)])
    result = change_alerts(store, Query(), AlertChange(tags_add=("x",)), "li.wei", T0)
    assert sorted(result.changed) == sorted(ids)
    records = store.search("audit", Query(order="asc")).items
    assert [len(r["watchkeeper"]["audit"]["object_id"]) for r in records] == [2, 2, 1]
    for alert_id in ids:
        [entry] = [history_entry(r, alert_id) for r in history(store, "alert", alert_id).items]
        assert entry["changes"]["tags"] == {"from": None, "to": ["x"]}
    assert chain.verify(store).ok


def test_bulk_by_query_never_touches_a_sibling_site(store):
    ids = _put(store, [_alert(1, "county-a1"), _alert(2, "county-a2"), _alert(3, "city-a"),
                       _alert(4)])
    county = ScopedStore(store, ["county-a1"])
    result = change_alerts(county, Query(), AlertChange(status="closed", verdict="other"),
                           "county-analyst", T0)
    assert result.changed == [ids[0]]
    by_ids = change_alerts(county, ids, AlertChange(status="acknowledged"), "county-analyst", T0)
    assert by_ids.changed == [] and set(by_ids.refused) == set(ids)  # closed / not visible
    assert [_info(store, i)["status"] for i in ids] == ["closed", "new", "new", "new"]
    with pytest.raises(KeyError):
        change_alert(county, ids[1], AlertChange(status="acknowledged"), "county-analyst", T0)


def test_comments_are_kept_in_order_and_scoped(store):
    ids = _put(store, [_alert(1, "county-a1"), _alert(2, "county-a2")])
    county = ScopedStore(store, ["county-a1"])
    add_comment(county, "alert", ids[0], "first look", "li.wei", T0)
    add_comment(store, "alert", ids[0], "  second  ", "zhang.min", T0 + 5)
    store.refresh()
    listed = list_comments(county, "alert", ids[0]).items
    assert [(c["message"], c["user"]["name"]) for c in listed] == [
        ("first look", "li.wei"), ("second", "zhang.min")]
    assert listed[0]["@timestamp"] == timeutil.format(T0)
    add_comment(store, "alert", ids[1], "elsewhere", "wang.fang", T0)
    store.refresh()
    assert list_comments(county, "alert", ids[1]).items == []
    with pytest.raises(KeyError):
        add_comment(county, "alert", ids[1], "not mine", "li.wei", T0)
    with pytest.raises(ValueError):
        add_comment(store, "alert", ids[0], "   ", "li.wei", T0)
    actions = [r["event"]["action"] for r in history(store, "alert", ids[0]).items]
    assert actions == ["alert.comment", "alert.comment"]


def test_legacy_statuses_are_upgraded_on_write_and_migrated_when_stored(store):
    suppressed = _alert(1)
    suppressed["watchkeeper"]["alert"].update(status="suppressed", suppressed_by="scanner")
    [sid] = _put(store, [suppressed])
    info = _info(store, sid)
    assert (info["status"], info["verdict"], info["suppressed_by"]) == (
        "closed", "benign_positive", "scanner")
    ids = _put(store, [_alert(2), _alert(3)])
    store.update_alert(ids[0], {"status": "in_progress"}, actor="old-version")
    store.update_alert(ids[1], {"status": "false_positive"}, actor="old-version")
    found = store.search("alerts", Query(terms={
        "watchkeeper.alert.status": status_filter(["investigating"])})).items
    assert [a["event"]["id"] for a in found] == [ids[0]]
    assert migrate_legacy_alerts(store) == 2
    assert _info(store, ids[0])["status"] == "investigating"
    assert (_info(store, ids[1])["status"], _info(store, ids[1])["verdict"]) == (
        "closed", "false_positive")
    assert history(store, "alert", ids[1]).items[-1]["user"]["name"] == "system:migration"
    assert migrate_legacy_alerts(store) == 0


def test_sorted_search_pages_through_everything_once(store):
    docs = [_alert(n, severity=1 + n % 4, risk=None if n % 5 == 0 else float(n % 7) * 10.3,
                   at=T0 + n // 3) for n in range(23)]
    _put(store, docs)
    for sort, order in [("event.severity", "desc"), ("event.risk_score", "desc"),
                        ("event.severity", "asc")]:
        seen, cursor = [], None
        for _ in range(10):
            page = store.search("alerts", Query(sort=sort, order=order, limit=4, cursor=cursor))
            seen += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(d["event"]["id"] for d in seen) == sorted(d["event"]["id"] for d in docs)
        field = sort.split(".")[1]
        keys = [(d["event"].get(field, -1), d["@timestamp"], d["event"]["id"]) for d in seen]
        assert keys == sorted(keys, reverse=order == "desc"), (sort, order)
    time_cursor = store.search("alerts", Query(limit=2)).next_cursor
    with pytest.raises(ValueError, match="another sort"):
        store.search("alerts", Query(sort="event.severity", cursor=time_cursor))


def test_an_alerts_index_from_an_older_version_gets_the_triage_fields(es_url, unique):
    from elasticsearch import Elasticsearch

    from watchkeeper.store.elastic import ElasticStore
    prefix = f"wktest-{unique}"
    es = Elasticsearch(es_url)
    es.indices.create(index=f"{prefix}-alerts", mappings={"properties": {
        "watchkeeper": {"properties": {"alert": {"properties": {"status": {"type": "keyword"}}}}}}})
    try:
        store = ElasticStore(es_url, prefix=prefix)
        mapped = es.indices.get_mapping(index=f"{prefix}-alerts")[f"{prefix}-alerts"]
        alert = mapped["mappings"]["properties"]["watchkeeper"]["properties"]["alert"]
        assert alert["properties"]["closed_at"] == {"type": "date"}
        assert alert["properties"]["tags"]["type"] == "keyword"
        store.close()
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
