"""The engine on a real SQLite store and a real HTTP receiver: one run per trigger, steps
with `if`, retries with backoff, on_failure, approvals, concurrency limits, restarts."""
from __future__ import annotations

import pytest

from tests.playbooks_support import (Clock, engine_for, make_alert, make_incident, webhook_playbook,
                                     write_playbook)
from watchkeeper.store import runs

HOOK = """\
name: hook
version: 1
trigger:
  alert: {{category: [scan], severity_at_least: 3}}
target: source.ip
concurrency: {{per_playbook: 10, per_target: 1}}
steps:
  - id: first
    action: notify_webhook
    with: {{url: "{url}/a", message: "scan from {{{{ target }}}} sev {{{{ alert.event.severity }}}}"}}
    retries: {{attempts: 3, backoff: 10}}
    on_failure: {on_failure}
  - id: only-high
    action: notify_webhook
    if: "alert.event.severity >= 4"
    with: {{url: "{url}/high"}}
  - id: last
    action: notify_webhook
    with: {{url: "{url}/b"}}
"""


def _hook(tmp_path, receiver, on_failure="stop"):
    folder = tmp_path / "books"
    write_playbook(folder, "hook", HOOK.format(url=receiver.url, on_failure=on_failure))
    return folder


def _run(store, rid):
    return runs.get_run(store, rid)["watchkeeper"]["run"]


def test_one_trigger_starts_one_run_and_every_step_is_recorded(store, tmp_path, receiver):
    engine = engine_for(store, _hook(tmp_path, receiver))
    alert = make_alert()
    [rid] = engine.on_alert(alert)
    assert engine.on_alert(alert) == []                       # replayed
    rerased = make_alert(severity=3)
    rerased["watchkeeper"]["alert"]["count"] = 9               # re-raised: same id, new count
    assert engine.on_alert(rerased) == []
    assert engine.on_alert(make_alert(severity=2)) == []      # below severity_at_least
    assert engine.on_alert(make_alert(category="dos")) == []
    engine.tick()
    run = _run(store, rid)
    assert run["status"] == "succeeded"
    assert [p["path"] for p in receiver.posts] == ["/a", "/b"]
    assert receiver.posts[0]["body"]["message"] == "scan from 203.0.113.7 sev 3"
    assert run["steps"]["only-high"]["outcome"] == "skipped"
    attempts = runs.attempts(store, rid)
    assert sorted((a["step"], a["outcome"]) for a in attempts) == [("first", "ok"), ("last", "ok")]
    attempts.sort(key=lambda a: a["step"])
    assert attempts[0]["inputs"]["url"].endswith("/a") and attempts[0]["output"]["status"] == 200
    assert all(a["started_at"] and a["ended_at"] for a in attempts)
    engine.tick()
    assert len(receiver.posts) == 2                            # a finished run stays finished


def test_retry_with_backoff_then_success(store, tmp_path, receiver):
    clock = Clock()
    engine = engine_for(store, _hook(tmp_path, receiver), clock)
    receiver.statuses = [500, 503]
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    assert _run(store, rid)["status"] == "running" and len(receiver.posts) == 1
    engine.tick()                                              # backoff not over: nothing
    assert len(receiver.posts) == 1
    clock.now += 10
    engine.tick()
    assert len(receiver.posts) == 2                            # 2nd try failed too
    clock.now += 10
    engine.tick()
    assert len(receiver.posts) == 2                            # factor 2: now 20 s
    clock.now += 10
    engine.tick()
    run = _run(store, rid)
    assert run["status"] == "succeeded" and run["steps"]["first"]["attempts"] == 3
    assert len({p["key"] for p in receiver.posts if p["path"] == "/a"}) == 1   # same key


@pytest.mark.parametrize("on_failure, status, later_posts", [
    ("stop", "failed", 0), ("continue", "succeeded", 1), ("escalate", "escalated", 0)])
def test_on_failure(store, tmp_path, receiver, on_failure, status, later_posts):
    clock = Clock()
    engine = engine_for(store, _hook(tmp_path, receiver, on_failure), clock)
    receiver.statuses = [500, 500, 500]
    [rid] = engine.on_alert(make_alert())
    for _ in range(4):
        engine.tick()
        clock.now += 100
    assert _run(store, rid)["status"] == status
    assert sum(p["path"] == "/b" for p in receiver.posts) == later_posts


def test_per_target_concurrency_queues_the_second_run(store, tmp_path, receiver):
    folder = tmp_path / "books"
    write_playbook(folder, "wait", f"""\
name: wait
version: 1
trigger: {{alert: {{category: [scan]}}}}
concurrency: {{per_target: 1}}
steps:
  - id: ok
    action: wait_for_approval
  - id: hook
    action: notify_webhook
    with: {{url: "{receiver.url}/x"}}
""")
    clock = Clock()
    engine = engine_for(store, folder, clock)
    [first] = engine.on_alert(make_alert(at=0 + 1_700_000_000))
    clock.now += 1
    [second] = engine.on_alert(make_alert(at=1_700_000_000 + 7200))   # same source, new alert
    clock.now += 1
    [other] = engine.on_alert(make_alert(source="198.51.100.9"))
    result = engine.tick()
    assert result.queued == 1
    assert _run(store, first)["status"] == "waiting"
    assert _run(store, second)["status"] == "queued"
    assert _run(store, other)["status"] == "waiting"
    runs.decide(store, runs.get_run(store, first), "ok", True, "alice", "", clock.now)
    engine.tick()                                         # first done: second admitted
    assert _run(store, first)["status"] == "succeeded"
    assert _run(store, second)["status"] == "waiting"


def test_per_playbook_concurrency(store, tmp_path):
    folder = tmp_path / "books"
    write_playbook(folder, "few", """name: few
version: 1
trigger: {alert: {category: [scan]}}
concurrency: {per_playbook: 2, per_target: 5}
steps:
  - id: ok
    action: wait_for_approval
""")
    clock = Clock()
    engine = engine_for(store, folder, clock)
    for i in range(4):
        engine.on_alert(make_alert(source=f"198.51.100.{i + 1}"))
        clock.now += 1
    assert engine.tick().queued == 2
    statuses = sorted(d["watchkeeper"]["run"]["status"] for d in runs.active_runs(store))
    assert statuses == ["queued", "queued", "waiting", "waiting"]


def test_manual_expression_and_site_triggers(store, tmp_path, receiver):
    folder = tmp_path / "books"
    write_playbook(folder, "site", f"""\
name: site
version: 1
trigger:
  alert:
    site: city-a
    where: "cidr(source.ip, '203.0.113.0/24') and watchkeeper.alert.count >= 1"
steps:
  - id: hook
    action: notify_webhook
    with: {{url: "{receiver.url}/x"}}
""")
    engine = engine_for(store, folder)
    engine.site_tree = {"region": None, "city-a": "region", "county-a1": "city-a",
                        "city-b": "region"}
    assert len(engine.on_alert(make_alert(site="county-a1"))) == 1
    assert engine.on_alert(make_alert(source="203.0.113.8", site="city-b")) == []
    assert engine.on_alert(make_alert(source="198.51.100.1", site="city-a")) == []
    assert engine.on_alert(make_alert(source="203.0.113.9")) == []            # no site
    suppressed = make_alert(source="203.0.113.10", site="city-a")
    suppressed["watchkeeper"]["alert"]["status"] = "suppressed"
    assert engine.on_alert(suppressed) == []


def test_a_claimed_but_unfinished_step_is_never_run_again(store, tmp_path, receiver):
    """A crash after the claim and before the record: the idempotent webhook gets a new
    attempt with the same key; the mail (not idempotent) is not repeated."""
    folder = tmp_path / "books"
    write_playbook(folder, "crash", f"""\
name: crash
version: 1
trigger: {{alert: {{category: [scan]}}}}
steps:
  - id: hook
    action: notify_webhook
    with: {{url: "{receiver.url}/x"}}
  - id: mail
    action: notify_email
    with: {{to: [a@example.org], subject: hi}}
    on_failure: continue
""")
    engine = engine_for(store, folder, smtp_port=9)   # nothing listens: must not be reached
    [rid] = engine.on_alert(make_alert())
    doc = runs.get_run(store, rid)
    assert runs.claim_attempt(store, doc, "hook", "203.0.113.7", 1, 0)
    assert runs.claim_attempt(store, doc, "mail", "203.0.113.7", 1, 0)
    engine.tick()
    run = _run(store, rid)
    assert run["status"] == "succeeded"
    assert len(receiver.posts) == 1 and run["steps"]["hook"]["attempts"] == 2
    assert run["steps"]["mail"]["outcome"] == "failed"
    assert "not repeated" in run["steps"]["mail"]["message"]
    outcomes = {(a["step"], a["attempt"]): a["outcome"] for a in runs.attempts(store, rid)}
    assert outcomes == {("hook", 1): "started", ("hook", 2): "ok",
                        ("mail", 1): "interrupted"}


def test_a_step_that_finished_before_a_crash_is_taken_from_its_record(store, tmp_path,
                                                                      receiver):
    engine = engine_for(store, _hook(tmp_path, receiver))
    [rid] = engine.on_alert(make_alert())
    doc = runs.get_run(store, rid)
    runs.claim_attempt(store, doc, "first", "203.0.113.7", 1, 0)
    runs.finish_attempt(store, doc, "first", "203.0.113.7", 1,
                        {"outcome": "ok", "output": {"status": 200}}, 0)
    engine.tick()
    assert [p["path"] for p in receiver.posts] == ["/b"]
    assert _run(store, rid)["status"] == "succeeded"


def test_timeout_fails_the_step(store, tmp_path):
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)                  # accepts, never answers
    port = listener.getsockname()[1]
    folder = tmp_path / "books"
    webhook_playbook(folder, "slow", f"http://127.0.0.1:{port}/x", timeout=0.5)
    engine = engine_for(store, folder)
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    run = _run(store, rid)
    assert run["status"] == "failed" and "timed out" in run["steps"]["hook"]["message"]
    listener.close()


def test_unloaded_playbook_fails_its_run_with_the_reason(store, tmp_path, receiver):
    folder = _hook(tmp_path, receiver)
    engine = engine_for(store, folder)
    [rid] = engine.on_alert(make_alert())
    (folder / "hook.yaml").unlink()
    engine.tick()
    run = _run(store, rid)
    assert run["status"] == "failed" and "not loaded" in run["message"]


@pytest.mark.parametrize("manual, status", [(True, "succeeded"), (False, "failed")])
def test_a_run_started_by_hand_runs_if_the_playbook_allows_it(store, tmp_path, receiver,
                                                              manual, status):
    folder = _hook(tmp_path, receiver)
    path = folder / "hook.yaml"
    path.write_text(path.read_text().replace(
        "trigger:\n", f"trigger:\n  manual: {str(manual).lower()}\n").replace(
        "steps:\n", "inputs: {note: default}\nsteps:\n").replace(
        "sev {{ alert.event.severity }}", "sev {{ alert.event.severity }} {{ inputs.note }}"))
    engine = engine_for(store, folder)
    alert = make_alert(severity=1)                 # below the automatic trigger
    new = runs.NewRun("hook", 0, "manual", "manual:a:wang.fang:1", alert["event"]["id"],
                      "203.0.113.7", {"note": "by hand"}, "wang.fang")
    doc, _ = runs.create_run(store, new, 0, subject=alert)
    engine.tick()
    run = _run(store, doc["event"]["id"])
    assert run["status"] == status
    assert len(receiver.posts) == (2 if manual else 0)
    if manual:
        assert receiver.posts[0]["body"]["message"] == "scan from 203.0.113.7 sev 1 by hand"


def test_runs_and_acting_steps_are_audited(store, tmp_path, receiver):
    from watchkeeper.store import Query
    engine = engine_for(store, _hook(tmp_path, receiver))
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    records = [a for a in store.scan("audit", Query(order="asc"))
               if a["watchkeeper"]["audit"].get("object_id") == rid]
    assert [a["event"]["action"] for a in records] == [
        "playbook.run.start", "playbook.step.notify_webhook", "playbook.step.notify_webhook",
        "playbook.run.end"]
    assert records[1]["user"]["name"] == "playbook:hook"
    assert records[1]["message"].startswith("first (attempt 1) on 203.0.113.7: ok")


def test_incident_trigger_one_run_per_incident_and_level(store, tmp_path, receiver):
    from watchkeeper.store import Query
    folder = tmp_path / "books"
    write_playbook(folder, "grave", f"""\
name: grave
version: 1
trigger:
  incident: {{level_at_least: III, category: [exfiltration, dos]}}
steps:
  - id: hook
    action: notify_webhook
    with: {{url: "{receiver.url}/x", message: "{{{{ incident.watchkeeper.incident.level }}}}"}}
  - id: triage
    action: update_incident
    with: {{status: investigating}}
  - id: note
    action: add_comment
    with: {{text: "剧本已处置"}}
""")
    clock = Clock()
    engine = engine_for(store, folder, clock)
    store.bulk_upsert("incidents", [make_incident("a", "IV"), make_incident("b", "III"),
                                    make_incident("c", "I", categories=("scan",))])
    engine.tick()
    assert [p["body"]["message"] for p in receiver.posts] == ["III"]
    assert store.get_by_ids("incidents", ["b"])[0]["watchkeeper"]["incident"]["status"] == \
        "investigating"
    comments = [a for a in store.scan("audit", Query(order="asc"))
                if a["event"]["action"] == "incident.comment"]
    assert [c["watchkeeper"]["audit"]["object_id"] for c in comments] == ["b"]
    clock.now += 10
    engine.tick()
    assert len(receiver.posts) == 1                     # the same incident, the same level
    store.bulk_upsert("incidents", [make_incident("a", "II")])          # re-graded
    clock.now += 10
    engine.tick()
    assert [p["body"]["message"] for p in receiver.posts] == ["III", "II"]


def test_a_reload_that_moves_a_done_step_does_not_run_it_again(store, tmp_path, receiver):
    folder = tmp_path / "books"
    path = write_playbook(folder, "move", f"""\
name: move
version: 1
trigger: {{alert: {{category: [scan]}}}}
steps:
  - id: hook
    action: notify_webhook
    with: {{url: "{receiver.url}/hook"}}
  - id: gate
    action: wait_for_approval
""")
    engine = engine_for(store, folder)
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    assert _run(store, rid)["status"] == "waiting"
    path.write_text(path.read_text().replace("version: 1", "version: 2").replace(
        "steps:\n", f"steps:\n  - id: first\n    action: notify_webhook\n"
                    f"    with: {{url: \"{receiver.url}/first\"}}\n"))
    import os
    os.utime(path, ns=(1, 10**18))
    runs.decide(store, runs.get_run(store, rid), "gate", True, "alice", "", 0)
    engine.tick()
    assert _run(store, rid)["status"] == "succeeded"
    assert [p["path"] for p in receiver.posts] == ["/hook"]     # "first" came before: index past it
