"""Bad input gets a 4xx that says what is wrong, never a 500."""
from __future__ import annotations

import base64
import json

import pytest

from watchkeeper.store.base import encode_cursor


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize("url, params, status, needles", [
    ("/api/v1/alerts", {"since": "yesterday"}, 422, ["since", "ISO-8601"]),
    ("/api/v1/alerts", {"until": "2026-01-01T00:00:00"}, 422, ["until", "zone"]),   # naive
    ("/api/v1/alerts", {"since": "nan"}, 422, ["since"]),
    ("/api/v1/alerts", {"since": "inf"}, 422, ["since"]),
    ("/api/v1/alerts", {"since": "1e20"}, 422, ["since", "9999"]),
    ("/api/v1/alerts", {"until": "-5"}, 422, ["until", "1970"]),
    ("/api/v1/alerts", {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
     422, ["until", "later than since"]),
    ("/api/v1/alerts", {"category": "port_scan"}, 422, ["category", "brute_force", "scan"]),
    ("/api/v1/alerts", {"category": ["scan", "bogus"]}, 422, ["category", "bogus"]),
    ("/api/v1/alerts", {"severity": "5"}, 422, ["severity", "low, medium, high, critical"]),
    ("/api/v1/alerts", {"severity": "0"}, 422, ["severity"]),
    ("/api/v1/alerts", {"severity": "severe"}, 422, ["severity", "severe"]),
    ("/api/v1/alerts", {"status": "open"}, 422, ["status", "investigating"]),
    ("/api/v1/alerts", {"ip": "10.0.0.256"}, 422, ["ip", "not an IPv4 or IPv6 address"]),
    ("/api/v1/alerts", {"ip": "example.org"}, 422, ["ip"]),
    ("/api/v1/alerts", {"q": "x" * 201}, 422, ["q", "200"]),
    ("/api/v1/alerts", {"limit": "0"}, 422, ["limit", "greater than or equal to 1"]),
    ("/api/v1/alerts", {"limit": "1001"}, 422, ["limit", "less than or equal to 1000"]),
    ("/api/v1/alerts", {"limit": "ten"}, 422, ["limit", "integer"]),
    ("/api/v1/alerts", {"cursor": "not-a-cursor"}, 400, ["cursor"]),
    ("/api/v1/alerts", {"cursor": "%%%"}, 400, ["cursor"]),
    ("/api/v1/alerts", {"cursor": _b64([1, 2])}, 400, ["cursor"]),
    ("/api/v1/alerts", {"cursor": _b64(["not a time", "id"])}, 400, ["cursor"]),
    ("/api/v1/alerts", {"cursor": _b64(["2026-01-01T00:00:00", "id"])}, 400, ["cursor"]),
    ("/api/v1/alerts", {"cursor": "x" * 5000}, 422, ["cursor"]),
    ("/api/v1/events", {"since": "soon"}, 422, ["since"]),
    ("/api/v1/events", {"ip": "::g"}, 422, ["ip"]),
    ("/api/v1/events", {"limit": "5000"}, 422, ["limit"]),
    ("/api/v1/events", {"cursor": "garbage"}, 400, ["cursor"]),
    ("/api/v1/events", {"dataset": ""}, 422, ["dataset"]),
    ("/api/v1/stats/alerts", {"interval": "0"}, 422, ["interval"]),
    ("/api/v1/stats/alerts", {"interval": "hourly"}, 422, ["interval"]),
    ("/api/v1/stats/alerts", {"until": "noon"}, 422, ["until"]),
])
def test_bad_query_is_4xx_with_reason(client, url, params, status, needles):
    response = client.get(url, params=params)
    assert response.status_code == status, response.text
    for needle in needles:
        assert needle in response.text, (needle, response.text)


def test_a_cursor_for_another_position_still_works(client, store, make_alert):
    store.bulk_upsert("alerts", [make_alert(n) for n in range(3)])
    cursor = encode_cursor("2099-01-01T00:00:00Z", "zzzz")     # well-formed: everything is older
    assert client.get("/api/v1/alerts", params={"cursor": cursor}).json()["total"] == 3


def test_unknown_route_and_method(client):
    assert client.get("/api/v1/nothing").status_code == 404
    assert client.delete("/api/v1/alerts/abc").status_code == 405


def test_store_refusal_maps_to_400(client, store, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("cannot filter on that")
    monkeypatch.setattr(store, "search", refuse)
    response = client.get("/api/v1/alerts")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Bad Request", "status": 400,
                               "detail": "cannot filter on that", "instance": "/api/v1/alerts"}
