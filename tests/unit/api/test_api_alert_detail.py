"""One alert: read, evidence lookup, and the analyst's PATCH (written, audited, re-read)."""
from __future__ import annotations

import pytest

from api.deps import get_current_actor
from watchkeeper.store.base import Query

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z, as in conftest
URL = "/api/v1/alerts"
UPDATES = Query(terms={"event.action": ["alert.update", "alert.close", "alert.reopen"]})


@pytest.fixture
def alert(store, make_alert, make_flow):
    flows = [make_flow(f"C{n}", at=T0 + n, dport=22) for n in range(3)]
    store.bulk_upsert("events", flows)
    evidence = [f["event"]["id"] for f in flows] + ["gone-past-retention"]
    doc = make_alert(1, category="brute_force", severity=3, evidence=evidence)
    store.bulk_upsert("alerts", [doc])
    return doc


def test_read_one(client, alert):
    response = client.get(f"{URL}/{alert['event']['id']}")
    assert response.status_code == 200
    stored = response.json()
    assert stored["event"].pop("ingested")      # the store stamps when it took the alert
    # and the posture weight: severity 3 (6) × criticality 3 × MLPS 2 without asset context
    assert stored["watchkeeper"]["alert"].pop("weight_points") == 6 * 3 * 2
    assert stored == alert


def test_read_missing_is_404(client, alert):
    response = client.get(f"{URL}/no-such-alert")
    assert response.status_code == 404
    assert "no-such-alert" in response.json()["detail"]


def test_evidence_returns_the_events_in_order(client, alert):
    body = client.get(f"{URL}/{alert['event']['id']}/evidence").json()
    wanted = alert["watchkeeper"]["alert"]["evidence"]
    assert [e["event"]["id"] for e in body["items"]] == wanted[:3]
    assert body["items"][0]["@timestamp"] and body["items"][0]["destination"]["port"] == 22
    assert body["missing"] == ["gone-past-retention"]
    assert body["alert_id"] == alert["event"]["id"]


def test_evidence_of_missing_alert_is_404(client):
    assert client.get(f"{URL}/nope/evidence").status_code == 404


def test_evidence_empty(client, store, make_alert):
    doc = make_alert(2)
    store.bulk_upsert("alerts", [doc])
    body = client.get(f"{URL}/{doc['event']['id']}/evidence").json()
    assert body["items"] == [] and body["missing"] == []


def test_patch_writes_audits_and_rereads(client, store, alert):
    alert_id = alert["event"]["id"]
    response = client.patch(f"{URL}/{alert_id}", json={
        "status": "investigating", "assignee": "li.wei", "comment": "looking into it"})
    assert response.status_code == 200, response.text
    assert response.json()["watchkeeper"]["alert"]["status"] == "investigating"
    again = client.get(f"{URL}/{alert_id}").json()["watchkeeper"]["alert"]
    assert again["status"] == "investigating" and again["assignee"] == "li.wei"
    assert again["category"] == "brute_force"                     # the rest untouched
    audit = store.search("audit", UPDATES).items
    assert len(audit) == 1 and audit[0]["user"]["name"] == "li.wei"    # the logged-in analyst
    assert audit[0]["message"] == "looking into it"
    assert audit[0]["watchkeeper"]["audit"]["changes"]["status"] == {
        "from": "new", "to": "investigating"}
    listed = client.get(URL, params={"status": "investigating"}).json()
    assert [a["event"]["id"] for a in listed["items"]] == [alert_id]


def test_patch_only_what_was_sent(client, alert):
    alert_id = alert["event"]["id"]
    client.patch(f"{URL}/{alert_id}", json={"assignee": "zhang.min"})
    client.patch(f"{URL}/{alert_id}", json={"status": "closed", "verdict": "true_positive"})
    info = client.get(f"{URL}/{alert_id}").json()["watchkeeper"]["alert"]
    assert info["assignee"] == "zhang.min" and info["status"] == "closed"
    client.patch(f"{URL}/{alert_id}", json={"assignee": None})    # unassign
    assert client.get(f"{URL}/{alert_id}").json()["watchkeeper"]["alert"]["assignee"] is None


def test_patch_survives_redetection(client, store, alert):
    alert_id = alert["event"]["id"]
    client.patch(f"{URL}/{alert_id}", json={"status": "closed", "verdict": "false_positive"})
    store.bulk_upsert("alerts", [alert])                          # the detector re-raises it
    info = client.get(f"{URL}/{alert_id}").json()["watchkeeper"]["alert"]
    assert (info["status"], info["verdict"]) == ("closed", "false_positive")


def test_patch_uses_current_actor(client, store, alert):
    client.app.dependency_overrides[get_current_actor] = lambda: "analyst-7"
    client.patch(f"{URL}/{alert['event']['id']}", json={"status": "acknowledged"})
    assert store.search("audit", UPDATES).items[0]["user"]["name"] == "analyst-7"


def test_patch_missing_is_404(client):
    response = client.patch(f"{URL}/no-such-alert", json={"status": "acknowledged"})
    assert response.status_code == 404 and "no-such-alert" in response.json()["detail"]


@pytest.mark.parametrize("body, needle", [
    ({"status": "done"}, "investigating"),         # lists the allowed statuses
    ({"status": "closed"}, "closing needs a verdict"),
    ({"status": "acknowledged", "verdict": "other"}, "only given when closing"),
    ({"verdict": "maybe"}, "benign_positive"),     # lists the verdicts
    ({"verdict": None}, "verdict cannot be null"),
    ({"tags_add": [""]}, "tags_add"),
    ({"tags_add": ["a\u0000b"]}, "tags_add"),
    ({"tags_add": "apt"}, "tags_add"),             # a list, not a string
    ({"status": None}, "status cannot be null"),
    ({}, "at least one of"),
    ({"severity": 4}, "severity"),                 # not an analyst field
    ({"assignee": ""}, "assignee"),
    ({"assignee": "x" * 129}, "assignee"),
    ({"comment": "x" * 2001}, "comment"),
    ({"status": 3}, "status"),
])
def test_patch_bad_body_is_422(client, store, alert, body, needle):
    response = client.patch(f"{URL}/{alert['event']['id']}", json=body)
    assert response.status_code == 422, response.text
    assert needle in response.text
    assert store.search("audit", UPDATES).total == 0               # nothing written
