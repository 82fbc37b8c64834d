"""Tenancy through the API on both backends: a county analyst never sees a sibling county's,
the city's, the region's or a site-less document through any route, filter or aggregation;
a city analyst sees the city and its counties; the root sees everything."""
from __future__ import annotations

import warnings

import pytest

from api import create_app
from alerting.correlate import merge
from watchkeeper.config import AuthSettings
from watchkeeper.documents import AlertSpec, FlowRecord, alert_document, flow_document
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.networks import InternalNetworks
from watchkeeper.store.base import Query

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "contract-tests-only-" + "s1te-" * 5
T0 = 1_767_225_600.0
SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a",
         "city-b": "region", "county-b1": "city-b"}
PLACES = ["county-a1", "county-a2", "city-a", "city-b", "county-b1", "region", None]
VISIBLE = {
    "county-a1": {"county-a1"},
    "city-a": {"county-a1", "county-a2", "city-a"},
    "/": set(PLACES),
}


def _flow(n: int, site: str | None) -> dict:
    record = FlowRecord(uid=f"F{n}", start=T0 + n, end=T0 + n + 1, proto=6,
                        orig_ip="10.0.0.5", orig_port=40000 + n, resp_ip=f"10.9.0.{n + 1}",
                        resp_port=22, orig_pkts=3, resp_pkts=3, orig_bytes=10, resp_bytes=10,
                        orig_ip_bytes=100, resp_ip_bytes=100, conn_state="SF",
                        history="ShADadFf", service="ssh")
    return flow_document(record, observer="s", networks=InternalNetworks(), site=site)


def _alert(n: int, site: str | None, evidence: list[str]) -> dict:
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="scan.h",
                     rule_name="scan", severity=3, message=f"shared words alert {n}",
                     entity=f"e{n}", first_seen=T0 + n * 60, last_seen=T0 + n * 60 + 5,
                     source_ip="10.0.0.5", destination_ip=f"10.9.0.{n + 1}", evidence=evidence)
    doc = alert_document(spec, created=T0 + n * 60 + 10)
    if site:
        doc["labels"] = {"site": site}
    return doc


@pytest.fixture
def world(store):
    """One flow, one alert and one incident at every place; every alert's evidence lists
    every flow (so evidence lookups could leak, if anything did)."""
    flows = [_flow(n, site) for n, site in enumerate(PLACES)]
    ids = [f["event"]["id"] for f in flows]
    alerts = [_alert(n, site, ids) for n, site in enumerate(PLACES)]
    incidents = [merge(None, [a], f"inc-{n}") for n, a in enumerate(alerts)]
    for incident, alert in zip(incidents, alerts):     # each incident lists every alert
        incident["watchkeeper"]["incident"]["alerts"] = [a["event"]["id"] for a in alerts]
    store.bulk_upsert("events", flows)
    store.bulk_upsert("alerts", alerts)
    store.bulk_upsert("incidents", incidents)
    store.refresh()
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET), sites=SITES)
    with TestClient(app) as client:
        yield client, {"events": flows, "alerts": alerts, "incidents": incidents}


def _as(client, site: str, role: str = "analyst") -> dict:
    name = f"{role}-{site.strip('/') or 'root'}"
    client.app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False, "password_hash": "x",
        "failures": 0, "locked_until": 0.0}, T0)
    return {"Authorization": f"Bearer {issue_access_token(Principal(name, role, site), SECRET, 600)}"}


def _site(doc: dict) -> str | None:
    return (doc.get("labels") or {}).get("site")


def _ids(items: list[dict]) -> set[str]:
    return {d["event"]["id"] for d in items}


LIST_FILTERS = [{}, {"category": "scan"}, {"severity": "high"}, {"status": "new"},
                {"ip": "10.0.0.5"}, {"q": "shared words"}, {"since": T0 - 10, "until": T0 + 9999},
                {"limit": 2}]


@pytest.mark.parametrize("site", sorted(VISIBLE))
def test_lists_and_filters_show_only_the_subtree(world, site):
    client, docs = world
    headers = _as(client, site)
    for kind in ("alerts", "events", "incidents"):
        wanted = _ids([d for d in docs[kind] if _site(d) in VISIBLE[site]])
        for params in LIST_FILTERS if kind == "alerts" else [{}, {"ip": "10.0.0.5"}]:
            seen, cursor = set(), None
            while True:
                page = client.get(f"/api/v1/{kind}", headers=headers,
                                  params={**params, **({"cursor": cursor} if cursor else {})})
                assert page.status_code == 200, page.text
                seen |= _ids(page.json()["items"])
                assert page.json()["total"] == len(wanted), (kind, params)
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
            assert seen == wanted, (kind, params)


@pytest.mark.parametrize("site", sorted(VISIBLE))
def test_aggregations_count_only_the_subtree(world, site):
    client, docs = world
    body = client.get("/api/v1/stats/alerts", headers=_as(client, site), params={
        "interval": 60}).json()
    visible = len(VISIBLE[site])
    assert body["total"] == visible
    for name in ("by_category", "by_severity", "by_status"):
        assert sum(b["count"] for b in body[name]) == visible, name
    assert sum(b["count"] for b in body["histogram"]["buckets"]) == visible


def test_a_county_analyst_gets_404_for_everything_outside(world, store):
    client, docs = world
    headers = _as(client, "county-a1")
    for doc in docs["alerts"]:
        inside = _site(doc) == "county-a1"
        aid = doc["event"]["id"]
        for path in (f"/api/v1/alerts/{aid}", f"/api/v1/alerts/{aid}/evidence"):
            assert client.get(path, headers=headers).status_code == (200 if inside else 404)
        patched = client.patch(f"/api/v1/alerts/{aid}", headers=headers,
                               json={"status": "acknowledged"})
        assert patched.status_code == (200 if inside else 404)
    for doc in docs["incidents"]:
        iid = doc["event"]["id"]
        inside = _site(doc) == "county-a1"
        assert client.get(f"/api/v1/incidents/{iid}", headers=headers).status_code == \
            (200 if inside else 404)
    store.refresh()
    updates = store.search("audit", Query(terms={"event.action": ["alert.update"]}))
    assert updates.total == 1                           # only the county's own alert changed


def test_evidence_and_incident_alerts_never_leak(world):
    client, docs = world
    headers = _as(client, "county-a1")
    own = next(a for a in docs["alerts"] if _site(a) == "county-a1")
    evidence = client.get(f"/api/v1/alerts/{own['event']['id']}/evidence", headers=headers).json()
    assert {_site(e) for e in evidence["items"]} == {"county-a1"}
    assert len(evidence["missing"]) == len(PLACES) - 1   # outside: as if past retention
    incident = next(i for i in docs["incidents"] if _site(i) == "county-a1")
    linked = client.get(f"/api/v1/incidents/{incident['event']['id']}/alerts",
                        headers=headers).json()
    assert [_site(a) for a in linked] == ["county-a1"]


def test_an_api_key_is_scoped_like_a_user(world):
    client, docs = world
    _, whole = client.app.state.access.accounts.create_key("county screen", "viewer",
                                                           "county-a1", "tests")
    body = client.get("/api/v1/stats/alerts", headers={"X-API-Key": whole}).json()
    assert body["total"] == 1
    assert client.get("/api/v1/alerts", headers={"X-API-Key": whole}).status_code == 403


def test_triage_routes_never_reach_outside_the_subtree(world, store):
    """Comments, history, bulk by ids and bulk by query (empty, filtered, naming a sibling's
    site): a county analyst changes and reads only the county's alert."""
    client, docs = world
    headers = _as(client, "county-a1")
    ids = [a["event"]["id"] for a in docs["alerts"]]
    own = next(a["event"]["id"] for a in docs["alerts"] if _site(a) == "county-a1")
    root = _as(client, "/")
    for aid in ids:
        assert client.post(f"/api/v1/alerts/{aid}/comments", headers=root,
                           json={"text": f"root note on {aid}"}).status_code == 201
    for aid in ids:
        inside = aid == own
        for path in (f"/api/v1/alerts/{aid}/comments", f"/api/v1/alerts/{aid}/history"):
            answer = client.get(path, headers=headers)
            assert answer.status_code == (200 if inside else 404), path
        posted = client.post(f"/api/v1/alerts/{aid}/comments", headers=headers,
                             json={"text": "mine?"})
        assert posted.status_code == (201 if inside else 404)
    comments = client.get(f"/api/v1/alerts/{own}/comments", headers=headers).json()
    assert [c["message"] for c in comments["items"]] == [f"root note on {own}", "mine?"]
    bulk = "/api/v1/alerts/bulk"
    change = {"status": "acknowledged"}
    for query in ({}, {"category": ["scan"]}, {"site": ["county-a2", "city-a"]},
                  {"q": "shared words"}):
        answer = client.post(bulk, headers=headers, json={"query": query, "change": change})
        assert answer.status_code == 200, answer.text
        assert answer.json()["changed_ids"] in ([own], [])
    by_ids = client.post(bulk, headers=headers, json={"ids": ids, "change": {
        "status": "closed", "verdict": "other"}}).json()
    assert by_ids["changed_ids"] == [own] and by_ids["matched"] == 1
    assert {r["id"] for r in by_ids["refused"]} == set(ids) - {own}
    assert {r["reason"] for r in by_ids["refused"]} == {"no alert with this id"}
    store.refresh()
    changed = store.search("audit", Query(terms={"event.action": ["alert.bulk_update"]})).items
    assert {i for r in changed for i in r["watchkeeper"]["audit"]["object_id"]} == {own}
    statuses = {a["event"]["id"]: a["watchkeeper"]["alert"]["status"]
                for a in store.get_by_ids("alerts", ids)}
    assert statuses == {aid: "closed" if aid == own else "new" for aid in ids}


def test_new_search_filters_and_sorts_stay_in_the_subtree(world):
    client, docs = world
    headers = _as(client, "county-a1")
    own = [a["event"]["id"] for a in docs["alerts"] if _site(a) == "county-a1"]
    for params, wanted in [({"site": "county-a2"}, []), ({"site": ["city-a", "region"]}, []),
                           ({"site": "county-a1"}, own), ({"sort": "severity"}, own),
                           ({"sort": "risk", "limit": 1}, own), ({"detector": "scan"}, own),
                           ({"status": "closed"}, []), ({"tag": "x"}, [])]:
        body = client.get("/api/v1/alerts", headers=headers, params=params).json()
        assert [a["event"]["id"] for a in body["items"]] == wanted, params
        assert body["total"] == len(wanted), params
