"""Alert triage through the API: workflow and verdicts, tags, comments, history, bulk changes,
the new search filters and sorts; every bad input a problem-details 4xx, never a 500."""
from __future__ import annotations

import pytest

from watchkeeper.store import triage

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z, as in conftest
URL = "/api/v1/alerts"
PROBLEM = "application/problem+json"


@pytest.fixture
def alerts(store, make_alert):
    docs = [make_alert(n, at=T0 + n * 60, severity=1 + n % 4) for n in range(6)]
    for n, doc in enumerate(docs):
        doc["event"]["risk_score"] = float(10 * ((n * 7) % 6))
        doc["labels"] = {"site": "county-a" if n % 2 else "county-b"}
    store.bulk_upsert("alerts", docs)
    return [d["event"]["id"] for d in docs]


def _patch(client, alert_id: str, **body):
    return client.patch(f"{URL}/{alert_id}", json=body)


def _info(client, alert_id: str) -> dict:
    return client.get(f"{URL}/{alert_id}").json()["watchkeeper"]["alert"]


def test_workflow_with_verdict_reopen_and_timestamps(client, alerts):
    aid = alerts[0]
    assert _patch(client, aid, status="acknowledged").status_code == 200
    closed = _patch(client, aid, status="closed", verdict="benign_positive", comment="scanner")
    assert closed.status_code == 200, closed.text
    info = closed.json()["watchkeeper"]["alert"]
    assert (info["status"], info["verdict"]) == ("closed", "benign_positive")
    assert info["acknowledged_at"] and info["closed_at"] and info["updated_at"]
    reopened = _patch(client, aid, status="investigating").json()["watchkeeper"]["alert"]
    assert (reopened["status"], reopened["verdict"], reopened["reopened"]) == (
        "investigating", None, 1)


@pytest.mark.parametrize("start, body, allowed", [
    ("investigating", {"status": "acknowledged"}, "closed"),
    ("acknowledged", {"status": "new"}, "investigating, closed"),
    ("closed", {"status": "acknowledged"}, "investigating"),
    ("new", {"verdict": "duplicate"}, "a verdict is only set on a closed alert"),
])
def test_an_invalid_move_is_409_naming_the_allowed_ones(client, alerts, start, body, allowed):
    aid = alerts[1]
    if start != "new":
        _patch(client, aid, status=start, **({"verdict": "other"} if start == "closed" else {}))
    response = _patch(client, aid, **body)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM
    assert allowed in response.json()["detail"]
    assert _info(client, aid)["status"] == start


def test_a_verdict_can_be_corrected_on_a_closed_alert(client, alerts):
    aid = alerts[0]
    _patch(client, aid, status="closed", verdict="other")
    assert _patch(client, aid, verdict="duplicate").status_code == 200
    assert _info(client, aid)["verdict"] == "duplicate"


def test_tags_are_added_and_removed_once(client, alerts):
    aid = alerts[0]
    _patch(client, aid, tags_add=["apt", "vpn", "apt"])
    _patch(client, aid, tags_add=["重点"], tags_remove=["vpn", "absent"])
    assert _info(client, aid)["tags"] == ["apt", "重点"]
    listed = client.get(URL, params={"tag": "重点"}).json()
    assert [a["event"]["id"] for a in listed["items"]] == [aid]


def test_comments_are_append_only_with_author_and_time(client, alerts):
    aid = alerts[0]
    first = client.post(f"{URL}/{aid}/comments", json={"text": "查看中"})
    assert first.status_code == 201, first.text
    assert first.json()["user"]["name"] == "li.wei" and first.json()["@timestamp"]
    client.post(f"{URL}/{aid}/comments", json={"text": "second"})
    body = client.get(f"{URL}/{aid}/comments").json()
    assert [c["message"] for c in body["items"]] == ["查看中", "second"] and body["total"] == 2
    page = client.get(f"{URL}/{aid}/comments", params={"limit": 1}).json()
    rest = client.get(f"{URL}/{aid}/comments", params={"cursor": page["next_cursor"]}).json()
    assert [c["message"] for c in page["items"] + rest["items"]] == ["查看中", "second"]
    comment_id = body["items"][0]["event"]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, f"{URL}/{aid}/comments/{comment_id}").status_code in (
            404, 405)
        assert client.request(method, f"{URL}/{aid}/comments").status_code == 405


@pytest.mark.parametrize("body, needle", [
    ({}, "text"), ({"text": ""}, "text"), ({"text": "   "}, "text"),
    ({"text": "x" * 4001}, "text"), ({"text": 5}, "text"), ({"text": "a", "by": "x"}, "by"),
])
def test_bad_comments_are_422(client, alerts, body, needle):
    response = client.post(f"{URL}/{alerts[0]}/comments", json=body)
    assert response.status_code == 422 and needle in response.text
    assert response.headers["content-type"] == PROBLEM


def test_missing_alert_is_404_on_every_triage_route(client):
    for method, path, body in [("GET", "nope/comments", None),
                               ("POST", "nope/comments", {"text": "x"}),
                               ("GET", "nope/history", None)]:
        response = client.request(method, f"{URL}/{path}", json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM


def test_history_shows_who_when_before_and_after(client, alerts):
    aid = alerts[0]
    _patch(client, aid, status="acknowledged", assignee="zhang.min")
    client.post(f"{URL}/{aid}/comments", json={"text": "on it"})
    _patch(client, aid, status="closed", verdict="true_positive", comment="confirmed")
    body = client.get(f"{URL}/{aid}/history").json()
    assert [e["action"] for e in body["items"]] == ["alert.update", "alert.comment",
                                                    "alert.close"]
    first, _, last = body["items"]
    assert first["actor"] == "li.wei" and first["at"].endswith("Z")
    assert first["changes"]["status"] == {"from": "new", "to": "acknowledged"}
    assert first["changes"]["assignee"] == {"from": None, "to": "zhang.min"}
    assert last["changes"]["verdict"] == {"from": None, "to": "true_positive"}
    assert last["message"] == "confirmed" and body["items"][1]["message"] == "on it"
    assert [e["seq"] for e in body["items"]] == sorted(e["seq"] for e in body["items"])


def test_bulk_by_ids_answers_changed_and_refused(client, alerts):
    _patch(client, alerts[0], status="investigating")
    response = client.post(f"{URL}/bulk", json={"ids": [*alerts[:3], "missing"],
                                                "change": {"status": "acknowledged"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["matched"], body["changed"], body["target"]) == (3, 2, "ids")
    assert sorted(body["changed_ids"]) == sorted(alerts[1:3])
    reasons = {r["id"]: r["reason"] for r in body["refused"]}
    assert "closed" in reasons[alerts[0]] and reasons["missing"] == "no alert with this id"
    history = client.get(f"{URL}/{alerts[1]}/history").json()["items"]
    assert [(e["action"], e["actor"], e["changes"]["status"]) for e in history] == [
        ("alert.bulk_update", "li.wei", {"from": "new", "to": "acknowledged"})]


def test_bulk_by_query_uses_the_search_filters(client, alerts):
    response = client.post(f"{URL}/bulk", json={
        "query": {"site": ["county-a"], "severity": ["medium", 4]},
        "change": {"status": "closed", "verdict": "false_positive", "tags_add": ["批量"]}})
    assert response.status_code == 200, response.text
    wanted = client.get(URL, params={"site": "county-a", "severity": [2, 4]}).json()["items"]
    assert sorted(response.json()["changed_ids"]) == sorted(a["event"]["id"] for a in wanted)
    assert all(a["watchkeeper"]["alert"]["verdict"] == "false_positive" for a in wanted)
    closed = client.get(URL, params={"verdict": "false_positive", "tag": "批量"}).json()
    assert closed["total"] == response.json()["changed"] > 0


def test_bulk_refuses_a_query_matching_too_many(client, alerts, monkeypatch):
    monkeypatch.setattr(triage, "MAX_BULK", 2)
    response = client.post(f"{URL}/bulk", json={"query": {}, "change": {"tags_add": ["x"]}})
    assert response.status_code == 422 and "narrow" in response.json()["detail"]
    assert client.get(URL, params={"tag": "x"}).json()["total"] == 0


@pytest.mark.parametrize("body, needle", [
    ({"change": {"status": "acknowledged"}}, "either ids or query"),
    ({"ids": ["a"], "query": {}, "change": {"status": "acknowledged"}}, "either ids or query"),
    ({"ids": [], "change": {"status": "acknowledged"}}, "ids"),
    ({"ids": ["a"] * 1001, "change": {"status": "acknowledged"}}, "ids"),
    ({"ids": ["a"], "change": {}}, "at least one of"),
    ({"ids": ["a"], "change": {"comment": "only words"}}, "POST /alerts/{id}/comments"),
    ({"ids": ["a"], "change": {"status": "closed"}}, "verdict"),
    ({"query": {"severity": ["huge"]}, "change": {"status": "acknowledged"}}, "severity"),
    ({"query": {"since": 10, "until": 5}, "change": {"status": "acknowledged"}}, "until"),
    ({"query": {"ip": "not-an-ip"}, "change": {"status": "acknowledged"}}, "ip"),
    ({"query": {"sort": "severity"}, "change": {"status": "acknowledged"}}, "sort"),
    ({"ids": ["a"]}, "change"),
])
def test_bad_bulk_bodies_are_422(client, alerts, body, needle):
    response = client.post(f"{URL}/bulk", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.text and response.headers["content-type"] == PROBLEM


def test_search_filters_detector_verdict_site_assignee(client, alerts):
    _patch(client, alerts[2], assignee="wang.fang")
    _patch(client, alerts[3], status="closed", verdict="duplicate")
    cases = [({"detector": "det0"}, [alerts[3], alerts[0]]),
             ({"assignee": "wang.fang"}, [alerts[2]]),
             ({"verdict": "duplicate"}, [alerts[3]]),
             ({"status": "closed", "site": "county-a"}, [alerts[3]]),
             ({"site": ["county-a", "nowhere"], "status": "new"}, [alerts[5], alerts[1]])]
    for params, wanted in cases:
        body = client.get(URL, params=params).json()
        assert [a["event"]["id"] for a in body["items"]] == wanted, params


@pytest.mark.parametrize("sort, field", [("severity", "severity"), ("risk", "risk_score")])
def test_sorted_search_pages_highest_first(client, alerts, page_through, sort, field):
    items = page_through(URL, {"sort": sort, "limit": 2})
    keys = [(a["event"][field], a["@timestamp"]) for a in items]
    assert keys == sorted(keys, reverse=True) and len(items) == len(alerts)


def test_oldest_first_and_a_cursor_of_another_sort(client, alerts):
    oldest = client.get(URL, params={"sort": "oldest", "limit": 2}).json()
    assert [a["event"]["id"] for a in oldest["items"]] == alerts[:2]
    answer = client.get(URL, params={"sort": "severity", "cursor": oldest["next_cursor"]})
    assert answer.status_code == 400 and "another sort" in answer.json()["detail"]


@pytest.mark.parametrize("params, needle", [
    ({"sort": "loudest"}, "sort"), ({"verdict": "maybe"}, "verdict"),
    ({"detector": "x" * 129}, "detector"), ({"site": ""}, "site"), ({"tag": ["a"] * 101}, "tag"),
])
def test_bad_search_parameters_are_422(client, alerts, params, needle):
    response = client.get(URL, params=params)
    assert response.status_code == 422 and needle in response.text, response.text


def test_legacy_statuses_read_and_filter_as_the_new_ones(client, store, alerts):
    store.update_alert(alerts[0], {"status": "suppressed", "suppressed_by": "scanner"},
                       actor="old-version")
    info = _info(client, alerts[0])
    assert (info["status"], info["verdict"], info["suppressed_by"]) == (
        "closed", "benign_positive", "scanner")
    listed = client.get(URL, params={"status": "closed"}).json()
    assert [a["event"]["id"] for a in listed["items"]] == [alerts[0]]
    assert listed["items"][0]["watchkeeper"]["alert"]["verdict"] == "benign_positive"
    reopened = _patch(client, alerts[0], status="investigating")
    assert reopened.status_code == 200, reopened.text
    assert store.get_by_ids("alerts", [alerts[0]])[0]["watchkeeper"]["alert"][
        "suppressed_by"] is None


def test_the_app_migrates_stored_legacy_alerts_at_start(store, alerts):
    from tests.unit.api.conftest import make_app
    store.update_alert(alerts[1], {"status": "resolved"}, actor="old-version")
    make_app(store)
    info = store.get_by_ids("alerts", [alerts[1]])[0]["watchkeeper"]["alert"]
    assert (info["status"], info["verdict"]) == ("closed", "other")

