"""The engine with several workers on one store: a step another worker has in hand is left
alone, a silent worker's runs are taken over, a live worker's never (playbooks/heartbeat.py)."""
from __future__ import annotations

from tests.playbooks_support import Clock, engine_for, make_alert
from tests.unit.playbooks.test_engine import _hook, _run
from watchkeeper.store import Query, runs


def test_a_step_another_worker_has_in_hand_is_left_alone_until_its_timeout(store, tmp_path,
                                                                           receiver):
    """Two workers (compose runs two) may look at one run: an attempt claimed moments ago is
    another worker's, still running; only past its timeout (+ grace) is it interrupted."""
    clock = Clock()
    engine = engine_for(store, _hook(tmp_path, receiver), clock)
    [rid] = engine.on_alert(make_alert())
    doc = runs.get_run(store, rid)
    assert runs.claim_attempt(store, doc, "first", "203.0.113.7", 1, clock.now)
    engine.tick()
    assert receiver.posts == [] and _run(store, rid)["status"] == "queued"
    clock.now += 30 + 4                                   # timeout 30 s, grace 5 s
    engine.tick()
    assert receiver.posts == []
    clock.now += 2
    engine.tick()
    assert [p["path"] for p in receiver.posts] == ["/a", "/b"]
    assert _run(store, rid)["steps"]["first"]["attempts"] == 2


def test_two_workers_share_runs_and_take_over_a_silent_ones(store, tmp_path, receiver):
    from playbooks.engine import Engine
    clock = Clock()
    folder = _hook(tmp_path, receiver)
    first = engine_for(store, folder, clock)
    second = Engine(store, first.library, first.settings, clock=clock)     # another replica
    [rid] = first.on_alert(make_alert())
    second.tick()
    assert receiver.posts == []                        # the first worker's run: left alone
    clock.now += first.settings.takeover_seconds       # the first worker said nothing since
    second.tick()
    run = _run(store, rid)
    assert run["status"] == "succeeded" and run["owner"] == second.worker_id
    assert len(receiver.posts) == 2


def test_a_live_workers_queued_runs_are_not_taken_over(store, tmp_path, receiver):
    """A backlog can keep a live worker's run unsaved for longer than takeover_seconds;
    while that worker says it is alive, another one leaves the run alone (before: both
    advanced it and both recorded its end)."""
    from playbooks.engine import Engine
    clock = Clock()
    folder = _hook(tmp_path, receiver)
    first = engine_for(store, folder, clock)
    second = Engine(store, first.library, first.settings, clock=clock)
    [rid] = first.on_alert(make_alert())
    clock.now += first.settings.takeover_seconds       # the run waited its turn this long...
    first.heartbeat.beat()                             # ...while its worker was busy, alive
    second.tick()
    assert receiver.posts == [] and _run(store, rid)["owner"] == first.worker_id
    clock.now += first.settings.takeover_seconds + 1   # then the first worker fell silent
    second.tick()
    run = _run(store, rid)
    assert run["status"] == "succeeded" and run["owner"] == second.worker_id
    ends = [a for a in store.scan("audit", Query(limit=100))
            if a["event"]["action"] == "playbook.run.end"]
    assert len(ends) == 1
