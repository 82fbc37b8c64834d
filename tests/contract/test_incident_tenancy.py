"""Incident routes and tenancy on both backends: a county analyst or responder never sees or
changes a sibling county's or the city's incident — escalated or not — through any incident
route; the city sees its counties' escalations in its queue."""
from __future__ import annotations

import warnings

import pytest

from api import create_app
from alerting.correlate import merge
from watchkeeper.config import AuthSettings
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.incidents import keep_people_fields

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "contract-tests-only-" + "1nc1-" * 5
T0 = 1_767_225_600.0
SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a"}
PLACES = {"inc-a1": "county-a1", "inc-a2": "county-a2", "inc-city": "city-a"}
URL = "/api/v1/incidents"


def _seed(store) -> None:
    for n, (iid, site) in enumerate(PLACES.items()):
        spec = AlertSpec(detector="scan", detector_version="1", category="scan",
                         rule_id="scan.h", rule_name="scan", severity=3, message=f"alert {n}",
                         entity=f"e{n}", first_seen=T0 + n, last_seen=T0 + n + 5,
                         source_ip=f"10.0.0.{n + 1}", destination_ip="10.9.0.1", evidence=[])
        alert = alert_document(spec, created=T0 + n + 10)
        alert["labels"] = {"site": site}
        alert["watchkeeper"]["alert"]["incident_id"] = iid
        store.bulk_upsert("alerts", [alert])
        store.bulk_upsert("incidents", [keep_people_fields(None, merge(None, [alert], iid), T0)])
    store.refresh()


@pytest.fixture
def client(store):
    _seed(store)
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET), sites=SITES,
                     org_types={"county-a1": "cii"})
    app.state.clock = lambda: T0 + 7200
    with TestClient(app) as made:
        yield made


def _headers(client, name: str, role: str, site: str) -> dict:
    client.app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False, "password_hash": "x",
        "failures": 0, "locked_until": 0.0, "created_by": "tests"}, T0)
    return {"Authorization": "Bearer " + issue_access_token(Principal(name, role, site),
                                                            SECRET, 900)}


def _attempts(client, iid: str, headers: dict) -> list:
    return [client.get(f"{URL}/{iid}", headers=headers),
            client.get(f"{URL}/{iid}/alerts", headers=headers),
            client.get(f"{URL}/{iid}/timeline", headers=headers),
            client.patch(f"{URL}/{iid}", json={"status": "closed"}, headers=headers),
            client.post(f"{URL}/{iid}/report", json={"reported_to": "x", "reported_at": T0},
                        headers=headers),
            client.post(f"{URL}/{iid}/escalate", json={"reason": "r"}, headers=headers),
            client.post(f"{URL}/{iid}/comments", json={"text": "t"}, headers=headers),
            client.post(f"{URL}/{iid}/alerts", json={"alert_ids": ["x"]}, headers=headers),
            client.delete(f"{URL}/{iid}/alerts/x", headers=headers)]


def test_a_county_never_reaches_a_siblings_or_the_citys_incident(client):
    a2 = _headers(client, "a2", "analyst", "county-a2")
    assert client.post(f"{URL}/inc-a2/escalate", json={"reason": "r"},
                       headers=a2).status_code == 200
    for role in ("analyst", "responder"):
        a1 = _headers(client, f"a1-{role}", role, "county-a1")
        items = client.get(URL, headers=a1).json()["items"]
        assert [d["event"]["id"] for d in items] == ["inc-a1"]
        assert items[0]["watchkeeper"]["incident"]["org_type"] == "cii"
        assert items[0]["watchkeeper"]["incident"]["overdue"] is True
        assert client.get(URL, params={"escalated_to": "city-a"},
                          headers=a1).json()["total"] == 0
        rows = client.get(f"{URL}/response-times", headers=a1).json()["items"]
        assert {r["site"] for r in rows} == {"county-a1", "*"}
        for iid in ("inc-a2", "inc-city"):
            codes = [r.status_code for r in _attempts(client, iid, a1)]
            assert codes == [404] * len(codes), (role, iid, codes)
        if role == "responder":
            for iid in ("inc-a2", "inc-city"):
                assert client.put(f"{URL}/{iid}/level", json={"level": "I", "reason": "r"},
                                  headers=a1).status_code == 404
    city = _headers(client, "city", "analyst", "city-a")
    queue = client.get(URL, params={"escalated_to": "city-a"}, headers=city).json()["items"]
    assert [d["event"]["id"] for d in queue] == ["inc-a2"]
    root = _headers(client, "root", "analyst", "/")
    untouched = client.get(f"{URL}/inc-city", headers=root).json()["watchkeeper"]["incident"]
    assert untouched["status"] == "new" and untouched["reported_at"] is None
