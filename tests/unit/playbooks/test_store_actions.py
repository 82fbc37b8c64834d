"""enrich, add_comment and the incident actions on a real SQLite store."""
from __future__ import annotations

import ipaddress

from playbooks.actions import REGISTRY, ActionContext
from playbooks.settings import PlaybookSettings
from tests.playbooks_support import make_alert
from watchkeeper.assets import Asset, Inventory
from watchkeeper.store import Query


def _ctx(store, run=None, inventory=None):
    return ActionContext(store=store, settings=PlaybookSettings(), run=run or {"playbook": "t"},
                         run_id="r", step_id="s", target=None, key="k", now=1_767_225_600.0,
                         inventory=inventory or Inventory())


def test_enrich_reports_asset_and_past_alerts(store):
    alerts = [make_alert(source="203.0.113.7", at=1_767_000_000 + i * 7200) for i in range(3)]
    alerts.append(make_alert(source="203.0.113.7", category="ioc_match"))
    store.bulk_upsert("alerts", alerts + [make_alert(source="198.51.100.1")])
    inventory = Inventory()
    inventory._nets[4].append((ipaddress.ip_network("10.20.0.0/16"),
                               Asset(cidr="10.20.0.0/16", site="s", mlps_level=3)))
    action = REGISTRY["enrich"]
    out = action.run(_ctx(store), action.Params(address="203.0.113.7")).output
    assert out["past_alerts"]["total"] == 4 and out["ioc_matches"] == 1
    assert out["asset"] is None and out["internal"] is False
    ours = action.run(_ctx(store, inventory=inventory), action.Params(address="10.20.1.1"))
    assert ours.output["asset"]["mlps_level"] == 3 and ours.output["internal"] is True


def test_incident_actions_need_an_incident_and_say_so(store):
    for name in ("update_incident", "set_emergency_level"):
        action = REGISTRY[name]
        params = action.Params(**({"level": "II"} if name == "set_emergency_level" else {}))
        result = action.run(_ctx(store), params)
        assert result.outcome == "failed" and not result.retry and "no incident" in result.message
    comment = REGISTRY["add_comment"]
    assert comment.run(_ctx(store), comment.Params(text="x")).outcome == "failed"


def test_open_incident_reuses_the_correlators_incident(store):
    alert = make_alert()
    alert["watchkeeper"]["alert"]["incident_id"] = "inc-7"
    store.bulk_upsert("incidents", [{**make_alert(), "event": {"id": "inc-7", "kind": "event",
                                     "dataset": "watchkeeper.incident"},
                                     "watchkeeper": {"incident": {"status": "new"}}}])
    store.bulk_upsert("alerts", [alert])
    run = {"playbook": "t", "trigger": {"object_id": alert["event"]["id"]}}
    action = REGISTRY["open_incident"]
    result = action.run(_ctx(store, run), action.Params())
    assert result.output == {"incident_id": "inc-7", "created": False}
    level = REGISTRY["set_emergency_level"]
    done = level.run(_ctx(store, {**run, "steps": {"incident": {"output": result.output}}}),
                     level.Params(level="II", org_type="cii"))
    assert done.outcome == "ok" and done.output["report_due"] == "2026-05-10T13:00:00.000000Z"
    [incident] = store.get_by_ids("incidents", ["inc-7"])
    assert incident["watchkeeper"]["incident"]["warning_colour"] == "orange"
    actions = [a["event"]["action"] for a in store.scan("audit", Query(order="asc"))]
    assert actions == ["incident.level"]                 # the spine's operation, audited


def test_open_incident_opens_one_through_the_spine_when_there_is_none(store):
    alert = make_alert(site="county-a1")
    store.bulk_upsert("alerts", [alert])
    run = {"playbook": "t", "trigger": {"object_id": alert["event"]["id"]}}
    action = REGISTRY["open_incident"]
    first = action.run(_ctx(store, run), action.Params())
    again = action.run(_ctx(store, run), action.Params())
    assert first.output["created"] is True and again.output == {**first.output, "created": False}
    [incident] = store.get_by_ids("incidents", [first.output["incident_id"]])
    state = incident["watchkeeper"]["incident"]
    assert state["alerts"] == [alert["event"]["id"]] and state["opened_by"] == "playbook:t"
    assert incident["labels"]["site"] == "county-a1"
    records = list(store.scan("audit", Query(order="asc")))
    assert [(a["event"]["action"], a["watchkeeper"]["audit"]["object_id"]) for a in records] \
        == [("incident.open", first.output["incident_id"])]
