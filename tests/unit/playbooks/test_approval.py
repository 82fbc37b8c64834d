"""wait_for_approval: the requester cannot decide, a responder can; expiry is a denial;
the first decision stands and who decided what, when, is recorded and audited."""
from __future__ import annotations

import pytest

from tests.playbooks_support import Clock, engine_for, make_alert, write_playbook
from watchkeeper.store import Query, runs

BOOK = """\
name: gate
version: 1
trigger: {{alert: {{category: [scan]}}}}
steps:
  - id: approve
    action: wait_for_approval
    with: {{reason: "block {{{{ target }}}}?", expires_after: 600}}
  - id: hook
    action: notify_webhook
    with: {{url: "{url}/after"}}
"""


@pytest.fixture
def gate(store, tmp_path, receiver):
    folder = tmp_path / "books"
    write_playbook(folder, "gate", BOOK.format(url=receiver.url))
    clock = Clock()
    engine = engine_for(store, folder, clock)
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    return engine, clock, rid


def _run(store, rid):
    return runs.get_run(store, rid)


def test_waits_then_a_responder_approves(store, receiver, gate):
    engine, clock, rid = gate
    run = _run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "waiting" and receiver.posts == []
    assert run["steps"]["approve"]["output"]["reason"] == "block 203.0.113.7?"
    with pytest.raises(runs.DecisionRefused):
        runs.decide(store, _run(store, rid), "approve", True, "rule:gate", "self", clock.now)
    engine.tick()
    assert _run(store, rid)["watchkeeper"]["run"]["status"] == "waiting"
    runs.decide(store, _run(store, rid), "approve", True, "alice", "looks right", clock.now)
    with pytest.raises(runs.DecisionRefused):           # the first decision stands
        runs.decide(store, _run(store, rid), "approve", False, "bob", "no", clock.now)
    engine.tick()
    run = _run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "succeeded" and len(receiver.posts) == 1
    output = run["steps"]["approve"]["output"]
    assert output["approver"] == "alice" and output["decision"] == "approved"
    actions = [a["event"]["action"] for a in store.scan("audit", Query(order="asc"))]
    assert "playbook.approval.approved" in actions and "playbook.run.end" in actions


def test_a_waiting_run_says_what_it_would_do_once_approved(store, receiver, gate):
    engine, clock, rid = gate
    then = _run(store, rid)["watchkeeper"]["run"]["steps"]["approve"]["output"]["then"]
    assert then == [{"id": "hook", "action": "notify_webhook", "if": None,
                     "with": {"url": f"{receiver.url}/after"}}]
    engine.tick()                                       # worked out once, kept while waiting
    assert _run(store, rid)["watchkeeper"]["run"]["steps"]["approve"]["output"]["then"] == then


def test_denial_stops_the_run(store, receiver, gate):
    engine, clock, rid = gate
    runs.decide(store, _run(store, rid), "approve", False, "alice", "no", clock.now)
    engine.tick()
    run = _run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "denied" and receiver.posts == []


def test_expiry_is_a_denial_recorded_as_such(store, receiver, gate):
    engine, clock, rid = gate
    clock.now += 599
    engine.tick()
    assert _run(store, rid)["watchkeeper"]["run"]["status"] == "waiting"
    clock.now += 1
    engine.tick()
    run = _run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "denied" and receiver.posts == []
    assert run["steps"]["approve"]["output"]["approver"] == "system:expiry"
    with pytest.raises(runs.DecisionRefused):           # too late for a human
        runs.decide(store, _run(store, rid), "approve", True, "alice", "", clock.now)
