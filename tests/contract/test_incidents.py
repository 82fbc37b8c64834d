"""Incident operations on both backends with frozen time: level (audited, suggestion kept),
status times, reports stop the clock, link/unlink/move alerts, escalation, timeline,
MTTA/MTTR, and the correlator's re-merge never resetting what people decided."""
from __future__ import annotations

import pytest

from alerting.correlate import merge
from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.incidents import IncidentPolicy, IncidentSettings, keep_people_fields
from watchkeeper.store import incident_views
from watchkeeper.store import incidents as ops
from watchkeeper.store.base import Query
from watchkeeper.store.scoped import ScopedStore

T0 = 1_767_225_600.0
H = 3600.0
PARENTS = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a"}


def _alert(n: int, site: str = "county-a1", severity: int = 3, source: str = "10.0.0.5",
           incident: str = "inc-1"):
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="scan.h",
                     rule_name="scan", severity=severity, message=f"alert {n}", entity=f"e{n}",
                     first_seen=T0 + n * 60, last_seen=T0 + n * 60 + 5, source_ip=source,
                     destination_ip="10.9.0.1", evidence=[])
    doc = alert_document(spec, created=T0 + n * 60 + 10)
    doc["labels"] = {"site": site}
    doc["watchkeeper"]["alert"]["incident_id"] = incident     # set at birth (correlate.py)
    return doc


def _correlate(store, alerts: list[dict], iid: str, now: float) -> dict:
    """What the correlator does for one incident (alerting/correlate.py Correlator.step)."""
    stored = (store.get_by_ids("incidents", [iid]) or [None])[0]
    doc = keep_people_fields(stored, merge(stored, alerts, iid), now)
    store.bulk_upsert("incidents", [doc])
    store.refresh()
    return doc


@pytest.fixture
def world(store):
    alerts = [_alert(n) for n in range(3)]
    store.bulk_upsert("alerts", alerts)
    _correlate(store, alerts[:2], "inc-1", T0 + H)
    return store, alerts


def _state(store, iid: str = "inc-1") -> dict:
    return ops.load(store, iid)["watchkeeper"]["incident"]


def test_a_responder_sets_the_level_and_a_re_merge_keeps_it(world):
    store, alerts = world
    assert _state(store)["level_suggested"] == "III" and _state(store)["level"] == "III"
    ops.set_level(store, "inc-1", "I", "zhao.resp", T0 + 2 * H, "portal down 24 h")
    _correlate(store, [_alert(5, severity=2)], "inc-1", T0 + 3 * H)
    state = _state(store)
    assert (state["level"], state["level_set_by"], state["warning_colour"]) == \
        ("I", "zhao.resp", "red")
    assert state["level_suggested"] == "III" and state["alert_count"] == 3
    with pytest.raises(ValueError):
        ops.set_level(store, "inc-1", "II", "zhao.resp", T0, " ")


def test_status_report_links_and_escalation_survive_a_re_merge(world):
    store, alerts = world
    ops.update(store, "inc-1", {"status": "investigating", "assignee": "li"}, "li", T0 + 2 * H)
    ops.record_report(store, "inc-1", "省委网信办", T0 + 2.5 * H, "li", T0 + 3 * H)
    ops.unlink_alerts(store, "inc-1", [alerts[0]["event"]["id"]], "li", T0 + 3 * H, "noise")
    ops.escalate(store, "inc-1", PARENTS, "li", None, T0 + 3 * H, "needs the city")
    _correlate(store, alerts, "inc-1", T0 + 4 * H)       # re-raises the unlinked one too
    state = _state(store)
    assert state["status"] == "investigating" and state["assignee"] == "li"
    assert state["acknowledged_at"] == state["investigating_at"] == timeutil.format(T0 + 2 * H)
    assert state["reported_to"] == "省委网信办"
    assert state["reported_at"] == timeutil.format(T0 + 2.5 * H)
    assert state["escalated_to"] == "city-a"
    assert alerts[0]["event"]["id"] not in state["alerts"] and state["alert_count"] == 2
    clock = IncidentPolicy(IncidentSettings(), {"county-a1": "cii"}).clock(
        ops.load(store, "inc-1"), now=T0 + 100 * H)
    assert clock.report_due == timeutil.format(T0 + H) and clock.overdue   # reported late


def test_linking_moves_an_alert_and_updates_its_incident_id(world):
    store, alerts = world
    other = _alert(9, source="10.0.0.77", incident="inc-2")
    store.bulk_upsert("alerts", [other])
    _correlate(store, [other], "inc-2", T0 + H)
    oid = other["event"]["id"]
    result = ops.link_alerts(store, "inc-1", [oid, "no-such-alert"], "li", T0 + 2 * H,
                             "same actor")
    assert result.changed == [oid] and result.missing == ["no-such-alert"]
    store.refresh()
    assert store.get_by_ids("alerts", [oid])[0]["watchkeeper"]["alert"]["incident_id"] == "inc-1"
    assert oid in _state(store)["alerts"] and oid in _state(store)["linked"]
    assert oid not in _state(store, "inc-2")["alerts"]
    _correlate(store, [other], "inc-2", T0 + 3 * H)     # re-raised with its birth incident id
    assert oid not in _state(store, "inc-2")["alerts"]
    ops.unlink_alerts(store, "inc-1", [oid], "li", T0 + 4 * H)
    store.refresh()
    assert store.get_by_ids("alerts", [oid])[0]["watchkeeper"]["alert"].get("incident_id") is None


def test_escalation_goes_one_level_up_and_only_from_your_level(world):
    store, _ = world
    county = ScopedStore(store, ["county-a1"])
    ops.escalate(county, "inc-1", PARENTS, "county.analyst", ["county-a1"], T0 + H, "help")
    with pytest.raises(PermissionError):        # now at the city: above the county analyst
        ops.escalate(county, "inc-1", PARENTS, "county.analyst", ["county-a1"], T0 + H, "more")
    city_sites = ["city-a", "county-a1", "county-a2"]
    ops.escalate(ScopedStore(store, city_sites), "inc-1", PARENTS, "city.analyst", city_sites,
                 T0 + 2 * H, "region")
    assert [e["to"] for e in _state(store)["escalations"]] == ["city-a", "region"]
    with pytest.raises(ValueError):
        ops.escalate(store, "inc-1", PARENTS, "root", None, T0 + 3 * H, "top")
    found = store.search("incidents", Query(terms={"watchkeeper.incident.escalated_to":
                                                   ["region"]}))
    assert [d["event"]["id"] for d in found.items] == ["inc-1"]


def test_a_sibling_scope_cannot_see_or_change_it(world):
    store, _ = world
    sibling = ScopedStore(store, ["county-a2"])
    for attempt in (lambda: ops.set_level(sibling, "inc-1", "I", "x", T0, "why"),
                    lambda: ops.update(sibling, "inc-1", {"status": "closed"}, "x", T0),
                    lambda: ops.escalate(sibling, "inc-1", PARENTS, "x", ["county-a2"], T0, "r"),
                    lambda: incident_views.timeline(sibling, "inc-1")):
        with pytest.raises(KeyError):
            attempt()
    assert _state(store)["status"] == "new"


def test_timeline_orders_alerts_and_audited_actions(world):
    store, alerts = world
    ops.update(store, "inc-1", {"status": "acknowledged"}, "li", T0 + 2 * H)
    ops.add_comment(store, "inc-1", "called the county", "li", T0 + 2.5 * H)
    ops.set_level(store, "inc-1", "II", "zhao", T0 + 3 * H, "CII down 2 h")
    entries = incident_views.timeline(store, "inc-1")
    # `created` is the correlator's wall-clock moment, not this test's frozen time
    assert [e.kind for e in entries].count("created") == 1
    kinds = [(e.kind, e.actor) for e in entries if e.kind != "created"]
    assert kinds == [("alert", "scan"), ("alert", "scan"), ("update", "li"), ("comment", "li"),
                     ("level", "zhao")]
    assert [e.changes["level"] for e in entries if e.kind == "level"] == [
        {"from": "III", "to": "II"}]
    assert [e.summary for e in entries if e.kind == "comment"] == ["called the county"]
    # zh-CN where the words are ours (a person's reason stays as written, summary only)
    [created] = [e for e in entries if e.kind == "created"]
    assert created.summary_zh.startswith("开立安全事件") and "III" in created.summary_zh
    assert [e.summary_zh for e in entries if e.kind == "comment"] == [None]
    run = incident_views.TimelineEntry(timeutil.format(T0 + 2.7 * H), "playbook", "engine",
                                       "isolate host: done")

    def runs(view, incident):                       # e.g. the playbooks package's runs kind
        assert incident["event"]["id"] == "inc-1"
        return [run]
    with_runs = [e for e in incident_views.timeline(store, "inc-1", sources=[runs])
                 if e.kind != "created"]
    assert [e.kind for e in with_runs][-3:] == ["comment", "playbook", "level"]


def test_mtta_and_mttr_per_site_and_level(store):
    for n, site in enumerate(["county-a1", "county-a1", "county-a2"]):
        alert = _alert(n, site=site, source=f"10.0.1.{n}", incident=f"inc-{n}")
        store.bulk_upsert("alerts", [alert])
        _correlate(store, [alert], f"inc-{n}", T0 + H)
    discovered = [T0 + n * 60 for n in range(3)]
    ops.update(store, "inc-0", {"status": "acknowledged"}, "li", discovered[0] + 600)
    ops.update(store, "inc-0", {"status": "closed"}, "li", discovered[0] + 3600)
    ops.update(store, "inc-1", {"status": "acknowledged"}, "li", discovered[1] + 1200)
    ops.update(store, "inc-2", {"status": "closed"}, "li", discovered[2] + 7200)
    rows = {(r.site, r.level): r for r in incident_views.response_times(store, Query())}
    a1 = rows[("county-a1", "III")]
    assert (a1.incidents, a1.acknowledged, a1.closed) == (2, 2, 1)
    assert a1.mtta_seconds == pytest.approx(900) and a1.mttr_seconds == pytest.approx(3600)
    assert rows[("county-a2", "III")].mtta_seconds == pytest.approx(7200)
    assert rows[("*", "*")].mttr_seconds == pytest.approx(5400)
    scoped = incident_views.response_times(ScopedStore(store, ["county-a2"]), Query())
    assert {r.site for r in scoped} == {"county-a2", "*"} and scoped[-1].incidents == 1


def test_the_correlator_re_merging_from_the_bus_keeps_peoples_work(store):
    """The real stage: alerts on the bus, Correlator.step, then people act, then a re-raise."""
    from alerting.correlate import Correlator
    from watchkeeper import codec
    from watchkeeper.bus.embedded import EmbeddedBus
    bus = EmbeddedBus(partitions=2)
    correlator = Correlator(bus, store)
    producer = bus.producer()

    def publish(alert: dict) -> None:
        producer.send("wk.alerts", codec.encode(alert), key="10.0.0.5")
        producer.flush()
        correlator.step(timeout=0.1)
        store.refresh()
    alerts = [_alert(n) for n in range(2)]
    store.bulk_upsert("alerts", alerts)
    publish(alerts[0])
    ops.set_level(store, "inc-1", "II", "zhao", T0 + H, "CII down 2 h")
    ops.update(store, "inc-1", {"status": "contained"}, "li", T0 + H)
    ops.record_report(store, "inc-1", "公安机关", T0 + 0.5 * H, "li", T0 + H)
    publish(alerts[1])
    publish(alerts[0])
    state = _state(store)
    assert (state["level"], state["level_suggested"], state["status"]) == ("II", "III",
                                                                          "contained")
    assert state["reported_to"] == "公安机关" and state["alert_count"] == 2
    correlator.close()
    bus.close()


def test_a_correlator_write_from_an_older_read_keeps_peoples_newer_work(world):
    store, alerts = world
    stale = ops.load(store, "inc-1")               # the correlator's step reads ...
    ops.set_level(store, "inc-1", "I", "zhao", T0 + 2 * H, "portal down")   # ... people act ...
    ops.update(store, "inc-1", {"status": "contained"}, "li", T0 + 2 * H)
    ops.unlink_alerts(store, "inc-1", [alerts[0]["event"]["id"]], "li", T0 + 2 * H)
    late = _alert(7)
    store.bulk_upsert("incidents", [keep_people_fields(stale, merge(stale, [late], "inc-1"),
                                                       T0 + 3 * H)])   # ... it writes
    store.refresh()
    state = _state(store)
    assert (state["level"], state["status"], state["warning_colour"]) == ("I", "contained",
                                                                          "red")
    assert late["event"]["id"] in state["alerts"]
    assert alerts[0]["event"]["id"] not in state["alerts"]


def test_elasticsearch_modify_re_reads_when_someone_wrote_in_between(es_url, unique):
    from watchkeeper.store.elastic import ElasticStore
    store = ElasticStore(es_url, prefix=f"wktest-{unique}")
    try:
        alert = _alert(0)
        store.bulk_upsert("incidents", [keep_people_fields(None, merge(None, [alert], "inc-1"),
                                                           T0)])
        calls = []

        def change(doc: dict) -> dict:
            calls.append(doc["watchkeeper"]["incident"].get("assignee"))
            if len(calls) == 1:                    # another writer gets in first
                store.modify("incidents", "inc-1", lambda d: {**d, "watchkeeper": {
                    "incident": {**d["watchkeeper"]["incident"], "assignee": "other"}}})
            doc["watchkeeper"]["incident"]["status"] = "acknowledged"
            return doc
        written = store.modify("incidents", "inc-1", change)
        assert calls == [None, "other"]
        assert written["watchkeeper"]["incident"]["assignee"] == "other"
        with pytest.raises(KeyError):
            store.modify("incidents", "nope", change)
    finally:
        store.es.indices.delete(index=f"{store.prefix}-*", ignore_unavailable=True,
                                allow_no_indices=True)
        store.close()
