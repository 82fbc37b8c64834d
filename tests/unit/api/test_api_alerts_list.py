"""GET /api/v1/alerts: filters one by one and combined, order, and cursor pagination."""
from __future__ import annotations

import pytest

from watchkeeper import timeutil

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z, as in conftest
URL = "/api/v1/alerts"


@pytest.fixture
def seeded(store, make_alert):
    docs = [
        make_alert(1, at=T0, category="scan", severity=1, source_ip="10.0.0.1",
                   message="Horizontal scan of 120 hosts"),
        make_alert(2, at=T0 + 3600, category="brute_force", severity=3, source_ip="10.0.0.2",
                   destination_ip="10.0.9.9", message="SSH password guessing"),
        make_alert(3, at=T0 + 7200, category="dos", severity=4, source_ip="203.0.113.7",
                   message="SYN flood against web"),
        make_alert(4, at=T0 + 10800, category="scan", severity=2, source_ip="2001:db8::1",
                   message="Vertical SCAN of one host", status="closed"),
        make_alert(5, at=T0 + 14400, category="beaconing", severity=3, source_ip="10.0.0.1",
                   message="Beacon every 60 s", status="acknowledged"),
    ]
    store.bulk_upsert("alerts", docs)
    return {n + 1: d["event"]["id"] for n, d in enumerate(docs)}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["event"]["id"] for item in response.json()["items"]]


def test_lists_newest_first_with_ecs_names(client, seeded):
    body = client.get(URL).json()
    assert body["total"] == 5 and body["next_cursor"] is None
    assert [i["event"]["id"] for i in body["items"]] == [seeded[n] for n in (5, 4, 3, 2, 1)]
    first = body["items"][0]
    assert first["@timestamp"] == timeutil.format(T0 + 14400)
    assert first["watchkeeper"]["alert"]["category"] == "beaconing"
    assert first["rule"]["id"] == "beaconing.rule" and first["related"]["ip"] == ["10.0.0.1"]


@pytest.mark.parametrize("params, expected", [
    ({"since": timeutil.format(T0 + 7200)}, [5, 4, 3]),
    ({"since": str(T0 + 7200)}, [5, 4, 3]),                       # epoch seconds
    ({"since": "2026-01-01T02:00:00+01:00"}, [5, 4, 3, 2]),       # another zone
    ({"until": timeutil.format(T0 + 7200)}, [2, 1]),              # exclusive
    ({"since": str(T0 + 3600), "until": str(T0 + 10800)}, [3, 2]),
    ({"category": "scan"}, [4, 1]),
    ({"category": ["scan", "dos"]}, [4, 3, 1]),
    ({"severity": "3"}, [5, 2]),
    ({"severity": ["critical", "1"]}, [3, 1]),
    ({"severity": "HIGH"}, [5, 2]),
    ({"status": "new"}, [3, 2, 1]),
    ({"status": ["closed", "acknowledged"]}, [5, 4]),
    ({"ip": "10.0.0.1"}, [5, 1]),
    ({"ip": "10.0.9.9"}, [2]),                                    # destination counts too
    ({"ip": "2001:0db8:0000::0001"}, [4]),                        # normalised IPv6
    ({"q": "scan"}, [4, 1]),                                      # case-insensitive text
    ({"q": "password"}, [2]),
    ({"q": "nothing like this"}, []),
    ({"category": "scan", "severity": "low", "ip": "10.0.0.1"}, [1]),
    ({"category": ["scan", "beaconing"], "status": "new", "since": str(T0)}, [1]),
    ({"ip": "10.0.0.1", "q": "beacon", "severity": "high", "until": str(T0 + 20000)}, [5]),
])
def test_filters(client, seeded, params, expected):
    response = client.get(URL, params=params)
    assert ids(response) == [seeded[n] for n in expected]
    assert response.json()["total"] == len(expected)


def test_pagination_many_alerts_sharing_a_timestamp(client, store, make_alert,
                                                     page_through):
    docs = [make_alert(n, at=T0 + (0 if n < 60 else n)) for n in range(150)]
    store.bulk_upsert("alerts", docs)
    first = client.get(URL, params={"limit": 7}).json()
    assert first["total"] == 150 and len(first["items"]) == 7 and first["next_cursor"]
    seen = page_through(URL, {"limit": 7})
    seen_ids = [d["event"]["id"] for d in seen]
    assert len(seen_ids) == len(set(seen_ids)) == 150           # no duplicates, no gaps
    assert set(seen_ids) == {d["event"]["id"] for d in docs}
    stamps = [timeutil.parse(d["@timestamp"]) for d in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_pagination_keeps_filters(client, store, make_alert, page_through):
    docs = [make_alert(n, at=T0, category="scan" if n % 2 else "dos") for n in range(40)]
    store.bulk_upsert("alerts", docs)
    seen = page_through(URL, {"limit": 3, "category": "dos"})
    assert len({d["event"]["id"] for d in seen}) == len(seen) == 20
    assert {d["watchkeeper"]["alert"]["category"] for d in seen} == {"dos"}


def test_limit_default_and_bounds(client, store, make_alert):
    store.bulk_upsert("alerts", [make_alert(n, at=T0 + n) for n in range(120)])
    assert len(client.get(URL).json()["items"]) == 100
    assert len(client.get(URL, params={"limit": 1000}).json()["items"]) == 120
    assert len(client.get(URL, params={"limit": 1}).json()["items"]) == 1


def test_empty_store(client):
    assert client.get(URL).json() == {"items": [], "total": 0, "next_cursor": None}
