"""Playbook run records (kind `runs`) answer the same on SQLite and Elasticsearch."""
from __future__ import annotations

import pytest

from tests.playbooks_support import engine_for, gate_playbook, make_alert, new_run
from watchkeeper.store import runs
from watchkeeper.store.scoped import ScopedStore

T0 = 1_778_400_000.0


def _new(key: str = "alert-1", site: str | None = "city-a", target: str = "203.0.113.7"):
    return new_run(key, site=site, target=target, inputs={"n": 1})


def test_one_run_per_trigger_and_active_runs_in_order(store):
    """(One test per store setup: an Elasticsearch fixture costs seconds.)"""
    doc, created = runs.create_run(store, _new(), T0, subject={"message": "scan"})
    again, created_again = runs.create_run(store, _new(), T0 + 5)
    assert created and not created_again
    assert again["event"]["id"] == doc["event"]["id"] == runs.run_id("hook", "alert-1")
    assert again["watchkeeper"]["run"]["subject"] == {"message": "scan"}
    doc["watchkeeper"]["run"]["status"] = "succeeded"
    runs.save_run(store, doc, T0)
    a, _ = runs.create_run(store, _new("a"), T0)
    b, _ = runs.create_run(store, _new("b"), T0 + 1)
    c, _ = runs.create_run(store, _new("c"), T0 + 2)
    b["watchkeeper"]["run"]["status"] = "succeeded"
    runs.save_run(store, b, T0 + 3)
    c["watchkeeper"]["run"]["status"] = "waiting"
    runs.save_run(store, c, T0 + 3)
    active = runs.active_runs(store)
    assert [d["event"]["id"] for d in active] == [a["event"]["id"], c["event"]["id"]]
    assert runs.get_run(store, c["event"]["id"])["watchkeeper"]["run"]["status"] == "waiting"
    runs.beat(store, "w1", T0)                  # worker heartbeats: the latest one counts,
    runs.beat(store, "w2", T0)
    runs.beat(store, "w2", T0 + 50)             # and they are not runs
    assert runs.live_workers(store, T0 + 10) == {"w2"}
    assert runs.live_workers(store, T0) == {"w1", "w2"}
    assert [d["event"]["id"] for d in runs.active_runs(store)] == \
        [a["event"]["id"], c["event"]["id"]]


def test_attempts_are_claimed_once_and_the_first_decision_wins(store):
    doc, _ = runs.create_run(store, _new(), T0)
    assert runs.claim_attempt(store, doc, "s1", "203.0.113.7", 1, T0)
    assert not runs.claim_attempt(store, doc, "s1", "203.0.113.7", 1, T0 + 1)
    assert runs.claim_attempt(store, doc, "s1", "203.0.113.7", 2, T0 + 2)
    runs.finish_attempt(store, doc, "s1", "203.0.113.7", 1,
                        {"outcome": "ok", "output": {"status": 200}}, T0 + 3)
    found = {a["attempt"]: a for a in runs.attempts(store, doc["event"]["id"])}
    assert found[1]["outcome"] == "ok" and found[1]["output"] == {"status": 200}
    assert found[2]["outcome"] == "started"
    assert runs.get_run(store, doc["event"]["id"]) is not None      # attempts are not runs
    with pytest.raises(runs.DecisionRefused):
        runs.decide(store, doc, "approve", True, "rule:hook", "", T0)
    decision = runs.decide(store, doc, "approve", True, "alice", "ok", T0 + 1)
    assert decision["by"] == "alice"
    with pytest.raises(runs.DecisionRefused):
        runs.decide(store, doc, "approve", False, "bob", "", T0 + 2)
    assert runs.decision_for(store, doc["event"]["id"], "approve")["decision"] == "approved"
    assert runs.decision_for(store, doc["event"]["id"], "other") is None


def test_runs_are_tenant_scoped_and_the_engine_runs_on_this_store(store, tmp_path, receiver):
    mine, _ = runs.create_run(store, _new("a", site="city-a"), T0)
    theirs, _ = runs.create_run(store, _new("b", site="city-b"), T0)
    linked = new_run("c", site="city-a", target=None, object_id="alert-c", incident_id="inc-9")
    runs.create_run(store, linked, T0 + 1)
    about = [d["watchkeeper"]["run"]["trigger"]["key"]
             for d in runs.runs_about(store, ["inc-9", "a"])]
    assert about == ["a", "c"]
    incident = {"event": {"id": "inc-9"}, "watchkeeper": {"incident": {"alerts": ["a"]}}}
    entries = runs.timeline_entries(ScopedStore(store, ["city-a"]), incident)
    assert sorted((e.kind, e.object_id) for e in entries) == sorted(
        [("playbook.run", mine["event"]["id"]), ("playbook.run", runs.run_id("hook", "c"))])
    scoped = ScopedStore(store, ["city-a"])
    ids = [mine["event"]["id"], theirs["event"]["id"]]
    assert [d["event"]["id"] for d in scoped.get_by_ids("runs", ids)] == [mine["event"]["id"]]
    _engine_end_to_end(store, tmp_path, receiver)


def _engine_end_to_end(store, tmp_path, receiver):
    """Alert -> run -> webhook to a real receiver -> approval -> done, on either backend
    (Elasticsearch makes writes visible on refresh: the engine must not read stale state)."""
    gate_playbook(tmp_path / "books", receiver.url, before=True)
    engine = engine_for(store, tmp_path / "books")
    alert = make_alert()
    [rid] = engine.on_alert(alert)
    assert engine.on_alert(alert) == []
    engine.tick()
    engine.tick()
    assert runs.get_run(store, rid)["watchkeeper"]["run"]["status"] == "waiting"
    runs.decide(store, runs.get_run(store, rid), "approve", True, "alice", "", T0)
    fresh = engine_for(store, tmp_path / "books")    # a restarted worker
    fresh.tick()
    assert runs.get_run(store, rid)["watchkeeper"]["run"]["status"] == "succeeded"
    assert [p["path"] for p in receiver.posts] == ["/before", "/after"]
