"""Suppression rules through the API: the security administrator's CRUD, a rule from an alert's
verdict (closing the stored open alerts it matches), tenancy by site subtree, 4xx on bad input."""
from __future__ import annotations

import pytest

from watchkeeper.store import Query

from tests.unit.api.conftest import build_alert

SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a"}
URL = "/api/v1/suppressions"


def _alert(n: int, src: str, site: str | None, status: str | None = None) -> dict:
    doc = build_alert(n, source_ip=src, destination_ip="10.10.2.20", status=status)
    if site:
        doc["labels"] = {"site": site}
    return doc


@pytest.fixture
def world(sited_client, store):
    docs = [_alert(0, "10.10.1.50", "county-a1"), _alert(3, "10.10.1.50", "county-a1"),
            _alert(6, "10.10.1.50", "county-a2"), _alert(9, "10.10.1.51", "county-a1"),
            _alert(12, "10.10.1.50", "county-a1", status="closed")]
    store.bulk_upsert("alerts", docs)
    store.refresh()
    client, bearer = sited_client(SITES)
    return client, bearer, [d["event"]["id"] for d in docs]


def _info(client, headers, alert_id) -> dict:
    return client.get(f"/api/v1/alerts/{alert_id}", headers=headers).json()[
        "watchkeeper"]["alert"]


def test_closing_an_alert_as_false_positive_makes_a_rule_that_closes_its_likes(world):
    client, bearer, ids = world
    analyst = bearer(client, "an.a1", "analyst", "county-a1")
    answer = client.post(f"/api/v1/alerts/{ids[0]}/suppress", headers=analyst, json={
        "verdict": "false_positive", "reason": "backup server sweeps its clients"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    rule = body["rule"]
    # same detector (det0) and actor, inside county-a1: ids[0] and ids[1]; not the other
    # county's, not another actor's, not one already closed
    assert body["closed"] == 2
    assert (rule["detector"], rule["source_cidr"], rule["site"], rule["sites"]) == (
        "det0", "10.10.1.50/32", "county-a1", ["county-a1"])
    assert rule["active"] and rule["created_by"] == "an.a1"
    for alert_id in ids[:2]:
        info = _info(client, analyst, alert_id)
        assert (info["status"], info["verdict"], info["suppressed_by"]) == (
            "closed", "false_positive", rule["id"])
    root = bearer(client, "an.root", "analyst", "/")
    assert _info(client, root, ids[2])["status"] == "new"
    assert _info(client, analyst, ids[3])["status"] == "new"
    # still searchable: closed alerts are listed with their status
    listed = client.get("/api/v1/alerts", headers=analyst, params={"status": "closed"}).json()
    assert {a["event"]["id"] for a in listed["items"]} == {ids[0], ids[1], ids[4]}


def test_security_admin_lists_edits_and_expires_within_the_subtree(world):
    client, bearer, ids = world
    city = bearer(client, "sec.city", "security_admin", "city-a")
    county = bearer(client, "sec.a2", "security_admin", "county-a2")
    made = client.post(URL, headers=city, json={"category": "scan", "reason": "lab scans",
                                                "expires_at": "2099-01-01T00:00:00Z"})
    assert made.status_code == 422                       # more than 366 days ahead
    made = client.post(URL, headers=city, json={"category": "scan", "source_cidr": "10.10.1.0/24",
                                                "reason": "lab scans"})
    assert made.status_code == 201, made.text
    rule = made.json()["rule"]
    assert made.json()["closed"] == 4                    # every open scan alert of city-a
    assert set(rule["sites"]) == {"city-a", "county-a1", "county-a2"}
    assert [r["id"] for r in client.get(URL, headers=city).json()["items"]] == [rule["id"]]
    # a county below cannot see or touch the city's rule: 404, as if it did not exist
    assert client.get(URL, headers=county).json() == {"items": [], "total": 0}
    assert client.get(f"{URL}/{rule['id']}", headers=county).status_code == 404
    assert client.post(f"{URL}/{rule['id']}/expire", headers=county).status_code == 404
    assert client.post(URL, headers=county, json={"detector": "scan", "reason": "x" * 5,
                                                  "site": "city-a"}).status_code == 422
    edited = client.patch(f"{URL}/{rule['id']}", headers=city, json={"reason": "lab scans, 42"})
    assert edited.status_code == 200 and edited.json()["reason"] == "lab scans, 42"
    expired = client.post(f"{URL}/{rule['id']}/expire", headers=city).json()
    assert expired["expired"] and not expired["active"]
    audit = client.app.state.store.search("audit", Query(limit=100)).items
    actions = [r["event"]["action"] for r in audit]
    assert {"suppression.create", "suppression.update", "suppression.expire"} <= set(actions)


@pytest.mark.parametrize("body", [
    {}, {"reason": "no match at all"}, {"detector": "scan"}, {"detector": "scan", "reason": "ab"},
    {"source_cidr": "10.0.0.0/33", "reason": "bad cidr"}, {"category": "nope", "reason": "xyz"},
    {"detector": "scan", "reason": "xyz", "verdict": "true_positive"},
    {"detector": "scan", "reason": "xyz", "expires_at": "2020-01-01T00:00:00Z"},
    {"detector": "scan", "reason": "xyz", "expires_at": "tomorrow"},
    {"detector": "scan", "reason": "xyz", "site": "atlantis"},
    {"detector": "scan", "reason": "xyz", "extra": 1},
])
def test_bad_rules_are_422_problems(world, body):
    client, bearer, _ = world
    answer = client.post(URL, headers=bearer(client, "sec.root", "security_admin"), json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_suppress_refuses_a_missing_or_foreign_alert_and_bad_bodies(world):
    client, bearer, ids = world
    other = bearer(client, "an.a2", "analyst", "county-a2")
    body = {"verdict": "benign_positive", "reason": "known"}
    assert client.post(f"/api/v1/alerts/{ids[0]}/suppress", headers=other,
                       json=body).status_code == 404
    assert client.post("/api/v1/alerts/nope/suppress", headers=other, json=body).status_code == 404
    for bad in ({"verdict": "duplicate", "reason": "known"}, {"verdict": "false_positive"},
                {**body, "match": []}, {**body, "match": ["owner"]}):
        assert client.post(f"/api/v1/alerts/{ids[2]}/suppress", headers=other,
                           json=bad).status_code == 422
