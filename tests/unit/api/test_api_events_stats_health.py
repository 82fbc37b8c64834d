"""Events search, alert statistics, /health and the OpenAPI pages."""
from __future__ import annotations

import warnings

import pytest

from api import create_app
from watchkeeper.config import AuthSettings
from watchkeeper.store.base import StoreUnavailable

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z, as in conftest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # starlette's httpx deprecation notice
    from fastapi.testclient import TestClient


@pytest.fixture
def flows(store, make_flow):
    docs = [make_flow(f"C{n}", at=T0 + n * 60, src=f"10.0.0.{n % 4}") for n in range(30)]
    dns = make_flow("D1", at=T0 + 5000, src="10.0.0.9", dst="8.8.8.8", dport=53)
    dns["event"]["dataset"] = "watchkeeper.dns"
    store.bulk_upsert("events", docs + [dns])
    return docs, dns


def test_events_newest_first_and_filters(client, flows):
    docs, dns = flows
    body = client.get("/api/v1/events").json()
    assert body["total"] == 31 and body["items"][0] == dns
    flow_only = client.get("/api/v1/events", params={"dataset": "watchkeeper.flow"}).json()
    assert flow_only["total"] == 30
    both = client.get("/api/v1/events", params={"dataset": ["watchkeeper.flow",
                                                            "watchkeeper.dns"]}).json()
    assert both["total"] == 31
    by_ip = client.get("/api/v1/events", params={"ip": "10.0.0.1"}).json()
    assert by_ip["total"] == 8 and all("10.0.0.1" in e["related"]["ip"] for e in by_ip["items"])
    window = client.get("/api/v1/events", params={"since": str(T0 + 600),
                                                  "until": str(T0 + 1200)}).json()
    assert window["total"] == 10
    combined = client.get("/api/v1/events", params={
        "dataset": "watchkeeper.flow", "ip": "10.0.0.2", "since": str(T0 + 600)}).json()
    assert {e["event"]["id"] for e in combined["items"]} == {
        d["event"]["id"] for n, d in enumerate(docs) if n % 4 == 2 and n >= 10}


def test_events_pagination(client, store, make_flow, page_through):
    docs = [make_flow(f"S{n}", at=T0) for n in range(45)]       # one shared timestamp
    store.bulk_upsert("events", docs)
    seen = page_through("/api/v1/events", {"limit": 4})
    assert len(seen) == len({e["event"]["id"] for e in seen}) == 45


def test_alert_stats(client, store, make_alert):
    store.bulk_upsert("alerts", [
        make_alert(1, at=T0, category="scan", severity=1),
        make_alert(2, at=T0 + 100, category="scan", severity=3, status="closed"),
        make_alert(3, at=T0 + 3700, category="dos", severity=4),
        make_alert(4, at=T0 + 7300, category="scan", severity=3),
    ])
    body = client.get("/api/v1/stats/alerts").json()
    assert body["total"] == 4
    assert body["by_category"] == [{"key": "scan", "count": 3}, {"key": "dos", "count": 1}]
    assert body["by_severity"] == [{"key": 3, "count": 2}, {"key": 1, "count": 1},
                                   {"key": 4, "count": 1}]
    assert body["by_status"] == [{"key": "new", "count": 3}, {"key": "closed", "count": 1}]
    assert body["histogram"] == {"interval": 3600, "buckets": [
        {"key": int(T0), "count": 2}, {"key": int(T0) + 3600, "count": 1},
        {"key": int(T0) + 7200, "count": 1}]}
    daily = client.get("/api/v1/stats/alerts", params={"interval": 86400}).json()
    assert daily["histogram"]["buckets"] == [{"key": int(T0), "count": 4}]
    later = client.get("/api/v1/stats/alerts", params={"since": str(T0 + 3600)}).json()
    assert later["total"] == 2 and later["by_category"][0] == {"key": "dos", "count": 1}
    # a bounded range (the screen's) is one store request: the same answers
    bounded = client.get("/api/v1/stats/alerts", params={"since": str(T0),
                                                         "until": str(T0 + 4 * 3600)}).json()
    assert bounded == body
    store.bulk_upsert("alerts", [make_alert(5, at=T0 + 200, status="acknowledged")])
    minutes = client.get("/api/v1/stats/alerts", params={
        "since": str(T0), "until": str(T0 + 3600), "interval": 60}).json()
    assert minutes["total"] == 3 and minutes["histogram"]["buckets"] == [
        {"key": int(T0), "count": 1}, {"key": int(T0) + 60, "count": 1},
        {"key": int(T0) + 180, "count": 1}]


def test_health_ok(client, store, make_alert):
    store.bulk_upsert("alerts", [make_alert(1)])
    assert client.get("/health").json() == {"status": "ok", "store": "sqlite", "alerts": 1}


def test_health_503_when_store_fails(client, store, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("cannot reach Elasticsearch at http://127.0.0.1:9200")
    monkeypatch.setattr(store, "search", down)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["store"] == "sqlite"
    assert "cannot reach Elasticsearch" in body["reason"]


def test_health_503_when_store_closed(store):
    from fastapi.testclient import TestClient
    client = TestClient(create_app(store))
    store.close()
    response = client.get("/health")
    assert response.status_code == 503 and "closed" in response.json()["reason"]
    store.close = lambda: None                                   # fixture teardown


def test_store_error_on_a_route_is_503(client, store, monkeypatch):
    def down(*args, **kwargs):
        raise StoreUnavailable("cannot reach Elasticsearch at http://127.0.0.1:9200")
    monkeypatch.setattr(store, "search", down)
    response = client.get("/api/v1/events")
    assert response.status_code == 503 and "cannot reach" in response.json()["detail"]


def test_docs_and_openapi_only_when_configured(store, client):
    assert client.get("/docs").status_code == 404          # not public by default
    assert client.get("/openapi.json").status_code == 404
    public = create_app(store, auth_settings=AuthSettings(public_docs=True))
    with TestClient(public) as anonymous:
        assert anonymous.get("/docs").status_code == 200
        spec = anonymous.get("/openapi.json").json()
        assert spec["info"]["title"] == "Watchkeeper"
        for path in ("/health", "/api/v1/alerts", "/api/v1/alerts/{alert_id}",
                     "/api/v1/alerts/{alert_id}/evidence", "/api/v1/events", "/api/v1/stats/alerts"):
            assert path in spec["paths"], path
        assert "patch" in spec["paths"]["/api/v1/alerts/{alert_id}"]


def test_title_is_configurable(store):
    assert create_app(store, title="WK test").title == "WK test"
