"""Incidents through the API (SQLite; both backends: tests/contract/test_incidents.py): level
by responders only, status times, reporting clock with a frozen app clock, links, escalation,
timeline, MTTA/MTTR, tenancy (a county never sees a sibling's or the city's incident) and bad
input as problem details."""
from __future__ import annotations

import pytest

from alerting.correlate import merge
from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.incidents import keep_people_fields
from watchkeeper.store.audit import iter_audit

T0 = 1_767_225_600.0
H = 3600.0
SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a"}
PLACES = {"inc-a1": "county-a1", "inc-a2": "county-a2", "inc-city": "city-a"}
URL = "/api/v1/incidents"


def _alert(n: int, site: str, iid: str) -> dict:
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="scan.h",
                     rule_name="scan", severity=3, message=f"alert {n}", entity=f"e{n}",
                     first_seen=T0 + n, last_seen=T0 + n + 5, source_ip=f"10.0.0.{n + 1}",
                     destination_ip="10.9.0.1", evidence=[])
    doc = alert_document(spec, created=T0 + n + 10)
    doc["labels"] = {"site": site}
    doc["watchkeeper"]["alert"]["incident_id"] = iid
    return doc


@pytest.fixture
def world(store, sited_client):
    for n, (iid, site) in enumerate(PLACES.items()):
        alert = _alert(n, site, iid)
        store.bulk_upsert("alerts", [alert])
        store.bulk_upsert("incidents", [keep_people_fields(None, merge(None, [alert], iid), T0)])
    store.bulk_upsert("alerts", [_alert(9, "county-a1", "inc-other")])   # not in inc-a1
    client, bearer = sited_client(SITES)
    client.app.state.clock = lambda: T0 + 0.5 * H
    client.app.state.incident_policy.org_types.update({"county-a1": "cii"})
    return client, lambda name, role, site: bearer(client, name, role, site)


def _state(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["watchkeeper"]["incident"]


def test_detail_shows_level_colour_and_the_running_clock(world):
    client, who = world
    headers = who("a1", "analyst", "county-a1")
    state = _state(client.get(f"{URL}/inc-a1", headers=headers))
    assert (state["level"], state["level_name"], state["warning_colour"]) == ("III", "较大",
                                                                             "yellow")
    assert state["org_type"] == "cii" and state["report_due"] == timeutil.format(T0 + H)
    assert state["overdue"] is False
    client.app.state.clock = lambda: T0 + 2 * H
    assert _state(client.get(f"{URL}/inc-a1", headers=headers))["overdue"] is True
    other = _state(client.get(f"{URL}/inc-city", headers=who("root", "analyst", "/")))
    assert other["org_type"] == "other" and other["report_due"] == timeutil.format(T0 + 2 + 4 * H)


def test_only_a_responder_sets_the_level_with_a_reason_and_it_is_audited(world, store):
    client, who = world
    body = {"level": "I", "reason": "门户网站瘫痪"}
    analyst = client.put(f"{URL}/inc-a1/level", json=body, headers=who("a", "analyst", "/"))
    assert analyst.status_code == 403
    responder = who("zhao", "responder", "county-a1")
    for bad in ({"level": "V", "reason": "x"}, {"level": "I"}, {"level": "I", "reason": "  "}):
        response = client.put(f"{URL}/inc-a1/level", json=bad, headers=responder)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    state = _state(client.put(f"{URL}/inc-a1/level", json=body, headers=responder))
    assert (state["level"], state["warning_colour"], state["level_suggested"]) == \
        ("I", "red", "III")
    assert state["level_set_by"] == "zhao"
    record = [r for r in iter_audit(store) if r["event"]["action"] == "incident.level"][-1]
    assert record["user"]["name"] == "zhao" and record["message"] == "门户网站瘫痪"
    assert record["watchkeeper"]["audit"]["changes"]["level"] == {"from": "III", "to": "I"}


def test_status_workflow_sets_times_and_a_report_stops_the_clock(world):
    client, who = world
    headers = who("a1", "analyst", "county-a1")
    state = _state(client.patch(f"{URL}/inc-a1", json={"status": "investigating"},
                                headers=headers))
    assert state["acknowledged_at"] == state["investigating_at"] == \
        timeutil.format(T0 + 0.5 * H)
    client.app.state.clock = lambda: T0 + 5 * H
    reported = _state(client.post(f"{URL}/inc-a1/report", headers=headers, json={
        "reported_to": "省委网信办", "reported_at": "2026-01-01T08:40:00+08:00"}))
    assert reported["reported_at"] == timeutil.format(T0 + 40 * 60)
    assert reported["reported_to"] == "省委网信办" and reported["overdue"] is False
    future = client.post(f"{URL}/inc-a1/report", headers=headers,
                         json={"reported_to": "x", "reported_at": T0 + 6 * H})
    assert future.status_code == 400
    assert client.patch(f"{URL}/inc-a1", json={"status": "closed"},
                        headers=headers).json()["watchkeeper"]["incident"]["closed_at"]


def test_link_and_unlink_update_the_alerts_incident(world, store):
    client, who = world
    headers = who("a1", "analyst", "county-a1")
    loose = _alert(9, "county-a1", "inc-other")["event"]["id"]
    sibling_alert = _alert(1, "county-a2", "inc-a2")["event"]["id"]
    body = client.post(f"{URL}/inc-a1/alerts", headers=headers,
                       json={"alert_ids": [loose, sibling_alert], "reason": "same actor"}).json()
    assert body["changed"] == [loose] and body["missing"] == [sibling_alert]
    assert loose in body["incident"]["watchkeeper"]["incident"]["alerts"]
    assert store.get_by_ids("alerts", [loose])[0]["watchkeeper"]["alert"]["incident_id"] == \
        "inc-a1"
    gone = client.delete(f"{URL}/inc-a1/alerts/{loose}", headers=headers)
    assert gone.status_code == 200 and loose not in gone.json()["incident"]["watchkeeper"][
        "incident"]["alerts"]
    assert client.delete(f"{URL}/inc-a1/alerts/{loose}", headers=headers).status_code == 404
    timeline = client.get(f"{URL}/inc-a1/timeline", headers=headers).json()["items"]
    assert [e["kind"] for e in timeline if e["kind"] in ("link", "unlink")] == ["link", "unlink"]


def test_escalation_reaches_the_parent_and_stops_at_your_level(world):
    client, who = world
    county, city = who("a1", "analyst", "county-a1"), who("c", "analyst", "city-a")
    assert client.get(URL, params={"escalated_to": "city-a"}, headers=city).json()["total"] == 0
    response = client.post(f"{URL}/inc-a1/escalate", json={"reason": "需要市级支援"},
                           headers=county)
    assert _state(response)["escalated_to"] == "city-a"
    queue = client.get(URL, params={"escalated_to": "city-a"}, headers=city).json()["items"]
    assert [d["event"]["id"] for d in queue] == ["inc-a1"]
    again = client.post(f"{URL}/inc-a1/escalate", json={"reason": "more"}, headers=county)
    assert again.status_code == 403
    top = client.post(f"{URL}/inc-a1/escalate", json={"reason": "r"},
                      headers=who("root", "responder", "/"))
    assert _state(top)["escalated_to"] == "region"
    assert client.post(f"{URL}/inc-a1/escalate", json={"reason": "r"},
                       headers=who("root", "responder", "/")).status_code == 400


def test_a_county_never_sees_or_changes_a_siblings_or_the_citys_incident(world):
    client, who = world
    client.post(f"{URL}/inc-a2/escalate", json={"reason": "r"}, headers=who("a2", "analyst",
                                                                             "county-a2"))
    for role in ("analyst", "responder"):
        headers = who(f"a1-{role}", role, "county-a1")
        ids = [d["event"]["id"] for d in client.get(URL, headers=headers).json()["items"]]
        assert ids == ["inc-a1"]
        assert client.get(URL, params={"escalated_to": "city-a"},
                          headers=headers).json()["total"] == 0
        for iid in ("inc-a2", "inc-city"):
            calls = [client.get(f"{URL}/{iid}", headers=headers),
                     client.get(f"{URL}/{iid}/alerts", headers=headers),
                     client.get(f"{URL}/{iid}/timeline", headers=headers),
                     client.patch(f"{URL}/{iid}", json={"status": "closed"}, headers=headers),
                     client.put(f"{URL}/{iid}/level", json={"level": "I", "reason": "r"},
                                headers=headers),
                     client.post(f"{URL}/{iid}/report", headers=headers,
                                 json={"reported_to": "x", "reported_at": T0}),
                     client.post(f"{URL}/{iid}/escalate", json={"reason": "r"}, headers=headers),
                     client.post(f"{URL}/{iid}/comments", json={"text": "t"}, headers=headers),
                     client.post(f"{URL}/{iid}/alerts", json={"alert_ids": ["x"]},
                                 headers=headers)]
            allowed = [c for c in calls if c.status_code != 404]
            assert not allowed or (role == "analyst" and all(
                c.status_code == 403 and c.request.url.path.endswith("/level")
                for c in allowed)), [(c.request.url.path, c.status_code) for c in allowed]
    state = _state(client.get(f"{URL}/inc-city", headers=who("root", "analyst", "/")))
    assert state["status"] == "new" and state["reported_at"] is None


def test_response_times_from_acknowledged_and_closed_times(world):
    client, who = world
    headers = who("root", "responder", "/")
    client.app.state.clock = lambda: T0 + 600
    client.patch(f"{URL}/inc-a1", json={"status": "acknowledged"}, headers=headers)
    client.app.state.clock = lambda: T0 + 3600
    client.patch(f"{URL}/inc-a1", json={"status": "closed"}, headers=headers)
    rows = client.get(f"{URL}/response-times", headers=headers).json()["items"]
    a1 = next(r for r in rows if r["site"] == "county-a1")
    assert (a1["level"], a1["acknowledged"], a1["closed"]) == ("III", 1, 1)
    assert a1["mtta_seconds"] == pytest.approx(600) and a1["mttr_seconds"] == pytest.approx(3600)
    scoped = client.get(f"{URL}/response-times",
                        headers=who("a2", "analyst", "county-a2")).json()["items"]
    assert {r["site"] for r in scoped} == {"county-a2", "*"}


@pytest.mark.parametrize("method, path, body", [
    ("PATCH", "/inc-a1", {}), ("PATCH", "/inc-a1", {"status": "resolved"}),
    ("PATCH", "/inc-a1", {"status": None}), ("PATCH", "/inc-a1", {"level": "I"}),
    ("POST", "/inc-a1/report", {"reported_to": "x", "reported_at": "yesterday"}),
    ("POST", "/inc-a1/report", {"reported_to": "x", "reported_at": 1e300}),
    ("POST", "/inc-a1/report", {"reported_to": "", "reported_at": 0}),
    ("POST", "/inc-a1/alerts", {"alert_ids": []}), ("POST", "/inc-a1/alerts", [1, 2]),
    ("POST", "/inc-a1/comments", {"text": ""}), ("POST", "/inc-a1/escalate", {}),
    ("GET", "/response-times?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", None),
    ("GET", "?level=V", None), ("GET", "?escalated_to=", None),
])
def test_bad_input_is_a_problem_never_a_500(world, method, path, body):
    client, who = world
    response = client.request(method, URL + path, json=body,
                              headers=who("zhao", "responder", "/"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
