"""Posture on both backends with a seeded dataset and a frozen `now`: the formula of
docs/api-posture.md, the roll-up of the site tree, tenancy, trends, tops, collector health."""
from __future__ import annotations

import warnings

import pytest

from alerting.correlate import merge
from api import create_app
from api.deps import get_clock
from watchkeeper import posture
from watchkeeper.config import AuthSettings
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.incidents import keep_people_fields
from watchkeeper.status import status_document
from watchkeeper.store.base import Group, Query

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "contract-tests-only-" + "p0st-" * 5
NOW = 1_767_225_600.0 + 10 * 86400 + 1800      # 2026-01-11T00:30:00Z
SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a",
         "city-b": "region"}


def _alert(n: int, site: str | None, *, age_h: float, severity: int = 3, crit: int | None = None,
           mlps: int | None = None, status: str = "new", category: str = "scan",
           src: str = "203.0.113.7", dst: str = "10.1.0.9") -> dict:
    at = NOW - age_h * 3600
    spec = AlertSpec(detector="scan", detector_version="1", category=category, rule_id="r",
                     rule_name="r", severity=severity, message=f"a{n}", entity=f"e{n}",
                     first_seen=at, last_seen=at + 5, source_ip=src, destination_ip=dst)
    doc = alert_document(spec, created=at + 9)
    doc["watchkeeper"]["alert"]["status"] = status
    if site:
        doc["labels"] = {"site": site}
    if crit is not None:
        doc["watchkeeper"]["asset"] = {"destination": {"site": site, "criticality": crit,
                                                       "mlps_level": mlps}}
    return doc


# age 0.5 h -> the hour bucket [now-30min, now+30min) starts at NOW-1800; its midpoint is
# NOW+0 s, so decay = 1 exactly: the expected scores below need no rounding games.
SEED = [
    _alert(1, "county-a1", age_h=0.5, severity=4, crit=5, mlps=4),   # 10 × 5/3 × 4/2 = 33.33
    _alert(2, "county-a1", age_h=0.5, severity=3),                   # 6 (no asset: factor 1)
    _alert(3, "county-a2", age_h=24.5, severity=3, crit=3, mlps=2),  # 6 × 1 × 0.5 (a day old)
    _alert(4, "city-b", age_h=0.5, severity=2, status="closed"),     # closed: no score
    _alert(5, "city-a", age_h=0.5, severity=1, crit=3, mlps=3,
           category="brute_force", src="198.51.100.1"),              # 1 × 1 × 1.5 = 1.5
    _alert(6, None, age_h=0.5, severity=2),                          # no site: root only, 3
    _alert(7, "county-a2", age_h=9 * 24, severity=4),                # older than 7 days
]


@pytest.fixture
def seeded(store):
    store.bulk_upsert("alerts", SEED)
    store.bulk_upsert("events", [
        status_document("capture", {"packets": 1000, "kernel_drops": 4, "malformed": 1},
                        "sensor-1", NOW - 600, NOW - 40, 10, "county-a1"),
        status_document("capture", {"packets": 1500, "kernel_drops": 6, "malformed": 2},
                        "sensor-1", NOW - 600, NOW - 30, 10, "county-a1"),
        status_document("syslog", {"parsed": 50}, "sensor-2", NOW - 7200, NOW - 3600, 10,
                        "city-b")])
    store.refresh()
    return store


@pytest.fixture
def api(seeded):
    app = create_app(seeded, auth_settings=AuthSettings(secret_key=SECRET), sites=SITES)
    app.dependency_overrides[get_clock] = lambda: NOW
    with TestClient(app) as client:
        yield client


def _get(client, site: str, role: str = "viewer", focus: str | None = None,
         status: int = 200) -> dict:
    name = f"{role}-{site.strip('/') or 'root'}"
    client.app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False, "password_hash": "x",
        "failures": 0, "locked_until": 0.0}, NOW)
    token = issue_access_token(Principal(name, role, site), SECRET, 600)
    response = client.get("/api/v1/posture", headers={"Authorization": f"Bearer {token}"},
                          params={"site": focus} if focus else {})
    assert response.status_code == status, response.text
    return response.json()


def test_group_counts_is_the_same_on_both_backends(seeded):
    query = Query(terms={"watchkeeper.alert.status": ["new"]}, limit=1)
    groups = seeded.group_counts("alerts", ["labels.site", "event.severity"], query)
    assert groups == [Group((None, 2), 1), Group(("city-a", 1), 1),
                      Group(("county-a1", 3), 1), Group(("county-a1", 4), 1),
                      Group(("county-a2", 3), 1), Group(("county-a2", 4), 1)]
    hourly = seeded.group_counts("alerts", ["event.severity"],
                                 Query(since=NOW - 3600, limit=1), 3600)
    assert {(g.start, g.keys, g.count) for g in hourly} == {
        (NOW - 1800, (1,), 1), (NOW - 1800, (2,), 2), (NOW - 1800, (3,), 1),
        (NOW - 1800, (4,), 1)}
    with pytest.raises(ValueError):
        seeded.group_counts("alerts", ["related.ip"], query)


def test_summarise_answers_as_each_aggregation_asked_alone(seeded):
    terms = {"sources": ("source.ip", 2), "sites": ("labels.site", 10),
             "severity": ("event.severity", 3), "first": ("watchkeeper.alert.category", 1)}
    series = {"by_severity": ("event.severity", 3600),
              "by_category": ("watchkeeper.alert.category", 3600),
              "by_status_half_hour": ("watchkeeper.alert.status", 1800)}   # a second width
    for query in (Query(since=NOW - 86400, limit=1),
                  Query(terms={"watchkeeper.alert.status": ["new"]}, sites=["county-a1"]),
                  Query(since=NOW + 3600)):                         # nothing matches
        got = seeded.summarise("alerts", query, terms, series)
        assert got == {
            **{name: seeded.terms("alerts", f, query, size) for name, (f, size) in terms.items()},
            **{name: seeded.group_counts("alerts", [f], query, interval)
               for name, (f, interval) in series.items()}}
    day = seeded.summarise("alerts", Query(since=NOW - 86400), terms, series)
    assert sum(b.count for b in day["sites"]) == 4 and len(day["sources"]) == 2
    assert sum(g.count for g in day["by_category"]) == 5
    with pytest.raises(ValueError):
        seeded.summarise("alerts", Query(), {}, {"bad": ("related.ip", 3600)})


def test_group_counts_sums_the_stamped_weight_on_both_backends(seeded):
    # weight_points = SEVERITY_WEIGHT × criticality × MLPS (defaults 3, 2), stamped on write
    assert seeded.get_by_ids("alerts", [SEED[0]["event"]["id"]])[0][
        "watchkeeper"]["alert"]["weight_points"] == 10 * 5 * 4
    query = Query(terms={"watchkeeper.alert.status": ["new"]}, limit=1)
    groups = seeded.group_counts("alerts", ["labels.site"], query,
                                 sum_field="watchkeeper.alert.weight_points")
    assert [(g.keys, g.count, g.total, g.summed) for g in groups] == [
        ((None,), 1, 3 * 6, 1), (("city-a",), 1, 1 * 3 * 3, 1),
        (("county-a1",), 2, 200 + 6 * 6, 2), (("county-a2",), 2, 6 * 6 + 10 * 6, 2)]
    hourly = seeded.group_counts("alerts", [], Query(since=NOW - 3600, limit=1), 3600,
                                 "watchkeeper.alert.weight_points")
    assert [(g.start, g.keys, g.count, g.total) for g in hourly] == [
        (NOW - 1800, (), 5, 200 + 36 + 3 * 6 + 9 + 18)]
    with pytest.raises(ValueError):
        seeded.group_counts("alerts", [], query)              # no field and no interval
    with pytest.raises(ValueError):
        seeded.group_counts("alerts", ["labels.site"], query, sum_field="related.ip")


def test_alerts_stored_before_the_weight_stamp_weigh_the_same(api, seeded):
    stamped = _get(api, "/")
    for doc in SEED[:3]:        # as an older version stored them: no weight_points
        seeded.modify("alerts", doc["event"]["id"], _without_points)
    seeded.refresh()
    legacy = _get(api, "/")
    assert legacy["score"] == pytest.approx(stamped["score"], abs=0.01)
    assert legacy["open_alerts"] == stamped["open_alerts"] == 5
    assert [(s["site"], s["open_alerts"], s["level"]) for s in legacy["sites"]] == [
        (s["site"], s["open_alerts"], s["level"]) for s in stamped["sites"]]
    assert [s["score"] for s in legacy["sites"]] == pytest.approx(
        [s["score"] for s in stamped["sites"]], abs=0.01)
    assert [p["score"] for p in legacy["trend_24h"]["points"]] == pytest.approx(
        [p["score"] for p in stamped["trend_24h"]["points"]], abs=0.01)


def _without_points(doc: dict) -> dict:
    doc["watchkeeper"]["alert"].pop("weight_points", None)
    return doc


def test_root_posture_follows_the_documented_formula(api):
    body = _get(api, "/")
    a1, a2, city_a = 10 * 5 / 3 * 2 + 6, 3.0, 1.5
    assert body["score"] == pytest.approx(a1 + a2 + city_a + 3, abs=0.01)
    assert body["open_alerts"] == 5
    assert body["level"] == posture.level_of(body["score"]) == "yellow"
    sites = {s["site"]: s for s in body["sites"]}
    assert [s["site"] for s in body["sites"]][:1] == ["region"]      # parents first
    assert sites["county-a1"]["own_score"] == pytest.approx(a1, abs=0.01)
    assert sites["county-a1"]["tier"] == "county" and sites["county-a1"]["parent"] == "city-a"
    assert sites["city-a"]["score"] == pytest.approx(a1 + a2 + city_a, abs=0.01)
    assert sites["city-a"]["open_alerts"] == 4 and sites["city-a"]["tier"] == "city"
    assert sites["region"]["score"] == pytest.approx(a1 + a2 + city_a, abs=0.01)
    assert sites["city-b"]["score"] == 0 and sites["city-b"]["level"] == "blue"
    assert body["deadletters_by_stage"] == {}


def test_a_county_sees_only_its_county(api):
    body = _get(api, "county-a2")
    assert [s["site"] for s in body["sites"]] == ["county-a2"]
    assert body["score"] == pytest.approx(3.0, abs=0.01) and body["open_alerts"] == 1
    assert body["top"]["sites"] == [] or {b["key"] for b in body["top"]["sites"]} == {"county-a2"}
    assert body["collectors"] == [] and body["deadletters_by_stage"] is None
    assert sum(p["raised"] for p in body["trend_30d"]["points"]) == 2


def test_trends_series_and_tops(api):
    body = _get(api, "/", role="analyst")
    day = body["trend_24h"]
    assert day["interval"] == 3600 and len(day["points"]) == 24
    assert day["points"][-1]["start"] == NOW - 1800
    assert day["points"][-1]["raised"] == 5              # every alert of the last hour
    assert day["points"][0]["score"] > 0                 # the day-old alert, decayed
    month = body["trend_30d"]
    assert month["interval"] == 86400 and len(month["points"]) == 30
    assert sum(p["raised"] for p in month["points"]) == len(SEED)
    severity = {(b["key"], b["count"]) for b in body["by_severity"]["buckets"]}
    assert severity == {(1, 1), (2, 2), (3, 1), (4, 1)}
    assert {b["key"] for b in body["by_category"]["buckets"]} == {"scan", "brute_force"}
    assert body["top"]["sources"][0] == {"key": "203.0.113.7", "count": 4}
    assert body["top"]["targets"][0] == {"key": "10.1.0.9", "count": 5}


def test_collector_health(api):
    collectors = {c["collector"]: c for c in _get(api, "/")["collectors"]}
    capture = collectors["capture"]
    assert capture["events_per_second"] == pytest.approx(50.0)    # 500 packets in 10 s
    assert capture["kernel_drops"] == 6 and capture["dead_letters"] == 2
    assert capture["silent"] is False and capture["site"] == "county-a1"
    assert collectors["syslog"]["silent"] is True                 # an hour without a report
    assert collectors["syslog"]["events_per_second"] == pytest.approx(50 / 3600, abs=0.001)


def test_the_month_is_kept_five_minutes_per_scope(api, seeded):
    first = _get(api, "/")["trend_30d"]
    seeded.bulk_upsert("alerts", [_alert(99, "city-b", age_h=0.2, severity=4)])
    seeded.refresh()
    again = _get(api, "/")
    assert again["trend_30d"] == first                       # cached
    assert again["trend_24h"]["points"][-1]["raised"] == 6   # the rest is live
    assert _get(api, "city-b")["trend_30d"]["points"][-1]["raised"] == 2   # its own scope
    api.app.dependency_overrides[get_clock] = lambda: NOW + 301
    later = _get(api, "/")["trend_30d"]
    assert sum(p["raised"] for p in later["points"]) == len(SEED) + 1


def test_a_tile_focuses_on_its_subtree_within_the_callers(api):
    city = _get(api, "/", focus="city-a")
    assert city["scope"] == "city-a" and city["open_alerts"] == 4
    assert city["score"] == pytest.approx(10 * 5 / 3 * 2 + 6 + 3 + 1.5, abs=0.01)
    assert {s["site"] for s in city["sites"]} == {"city-a", "county-a1", "county-a2"}
    assert sum(p["raised"] for p in city["trend_30d"]["points"]) == 5
    assert city["deadletters_by_stage"] is None
    county = _get(api, "city-a", focus="county-a1")
    assert county["open_alerts"] == 2
    for site, focus in (("county-a1", "city-a"), ("county-a1", "county-a2"), ("/", "nowhere")):
        problem = _get(api, site, focus=focus, status=404)
        assert problem["status"] == 404


def _incidents(store) -> None:
    """An open incident in each county and a closed one in county-a1."""
    for iid, n, status in (("inc-a1", 1, "new"), ("inc-a2", 3, "investigating"),
                           ("inc-a1-old", 2, "closed")):
        alert = SEED[n - 1]
        doc = keep_people_fields(None, merge(None, [alert], iid), NOW - 600)
        doc["watchkeeper"]["incident"]["status"] = status
        store.bulk_upsert("incidents", [doc])
    store.refresh()


def test_open_incidents_reach_a_viewer_within_its_subtree(api, seeded):
    """The wall screen's key is a viewer, which may not search incidents: the posture carries
    the open ones, presented with level and reporting clock, and only those of its subtree."""
    _incidents(seeded)
    root = _get(api, "/")
    assert {i["event"]["id"] for i in root["open_incidents"]} == {"inc-a1", "inc-a2"}
    shown = next(i for i in root["open_incidents"] if i["event"]["id"] == "inc-a2")
    assert shown["watchkeeper"]["incident"]["status"] == "investigating"
    assert shown["watchkeeper"]["incident"]["level"] in ("I", "II", "III", "IV")
    assert shown["watchkeeper"]["incident"]["warning_colour"] in ("red", "orange", "yellow",
                                                                  "blue")
    assert "report_due" in shown["watchkeeper"]["incident"]         # the reporting clock
    county = _get(api, "county-a1")
    assert [i["event"]["id"] for i in county["open_incidents"]] == ["inc-a1"]
    focused = _get(api, "/", focus="county-a2")
    assert [i["event"]["id"] for i in focused["open_incidents"]] == ["inc-a2"]
    assert _get(api, "city-b")["open_incidents"] == []
