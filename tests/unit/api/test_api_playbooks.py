"""Playbook runs through the API: list, detail, approve/deny by a responder who did not
request it, first decision stands, tenant scope, problem details for bad input."""
from __future__ import annotations

from tests.playbooks_support import (Clock, engine_for, gate_playbook, make_alert,
                                     make_incident, new_run, waiting_run)
from watchkeeper.store import runs

T0 = 1_767_225_600.0


def test_list_and_detail(client, store):
    rid = waiting_run(store)
    body = client.get("/api/v1/playbooks/runs", params={"status": "waiting"}).json()
    assert body["total"] == 1 and body["items"][0]["event"]["id"] == rid
    assert client.get("/api/v1/playbooks/runs", params={"status": "failed"}).json()["total"] == 0
    detail = client.get(f"/api/v1/playbooks/runs/{rid}").json()
    assert detail["run"]["watchkeeper"]["run"]["playbook"] == "gate"
    assert detail["attempts"] == [] and detail["decisions"] == []


def test_a_responder_approves_once(client, store, bearer_for):
    rid = waiting_run(store)
    responder = bearer_for("wang.fang", "responder")
    analyst = client.post(f"/api/v1/playbooks/runs/{rid}/approve", json={})
    assert analyst.status_code == 403                                  # analysts may not
    reply = client.post(f"/api/v1/playbooks/runs/{rid}/approve", headers=responder,
                        json={"comment": "确认封禁"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["by"] == "wang.fang" and reply.json()["comment"] == "确认封禁"
    again = client.post(f"/api/v1/playbooks/runs/{rid}/deny",
                        headers=bearer_for("zhao.lei", "responder"), json={})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    detail = client.get(f"/api/v1/playbooks/runs/{rid}").json()
    assert [d["decision"] for d in detail["decisions"]] == ["approved"]


def test_the_requester_cannot_decide(client, store, bearer_for):
    headers = bearer_for("wang.fang", "responder")
    rid = waiting_run(store, requested_by="wang.fang")     # started it by hand
    reply = client.post(f"/api/v1/playbooks/runs/{rid}/deny", headers=headers, json={})
    assert reply.status_code == 409 and "requester" in reply.json()["detail"]


def test_not_waiting_unknown_and_bad_input(client, store, bearer_for):
    responder = bearer_for("wang.fang", "responder")
    doc, _ = runs.create_run(store, new_run("k2", "gate", target=None), T0)
    rid = doc["event"]["id"]
    assert client.post(f"/api/v1/playbooks/runs/{rid}/approve", headers=responder,
                       json={}).status_code == 409
    assert client.post("/api/v1/playbooks/runs/nope/approve", headers=responder,
                       json={}).status_code == 404
    assert client.get("/api/v1/playbooks/runs/nope").status_code == 404
    bad = client.post(f"/api/v1/playbooks/runs/{rid}/approve", headers=responder,
                      json={"comment": "x" * 3000, "colour": 1})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/playbooks/runs", params={"status": "bogus"}).status_code == 422
    assert client.get("/api/v1/playbooks/runs", params={"cursor": "!!"}).status_code == 400


def test_runs_outside_the_subtree_are_not_found(store, sited_client):
    sites = {"region": None, "city-a": "region", "city-b": "region"}
    client, bearer = sited_client(sites)
    mine = waiting_run(store, "a", site="city-a")
    theirs = waiting_run(store, "b", site="city-b")
    headers = bearer(client, "city.a.responder", "responder", "city-a")
    listed = client.get("/api/v1/playbooks/runs", headers=headers).json()
    assert [r["event"]["id"] for r in listed["items"]] == [mine]
    assert client.get(f"/api/v1/playbooks/runs/{theirs}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/playbooks/runs/{theirs}/approve", headers=headers,
                       json={}).status_code == 404


def test_start_by_hand(client, store, bearer_for, make_alert):
    alert = make_alert(1, source_ip="203.0.113.50")
    store.bulk_upsert("alerts", [alert])
    store.refresh()
    responder = bearer_for("wang.fang", "responder")
    body = {"playbook": "block-external-scanner", "alert_id": alert["event"]["id"]}
    first = client.post("/api/v1/playbooks/runs", headers={**responder, "Idempotency-Key": "k1"},
                        json=body)
    assert first.status_code == 201, first.text
    run = first.json()["watchkeeper"]["run"]
    assert run["status"] == "queued" and run["target"] == "203.0.113.50"
    assert run["trigger"]["kind"] == "manual" and run["requested_by"] == "wang.fang"
    again = client.post("/api/v1/playbooks/runs", headers={**responder, "Idempotency-Key": "k1"},
                        json=body)
    assert again.json()["event"]["id"] == first.json()["event"]["id"]
    assert client.post("/api/v1/playbooks/runs", headers=responder,
                       json={**body, "alert_id": "missing"}).status_code == 404
    assert client.post("/api/v1/playbooks/runs", headers=responder,
                       json={**body, "playbook": "Bad Name"}).status_code == 422


def test_runs_about_an_incident(client, store):
    doc, _ = runs.create_run(store, new_run("k9", "gate", target=None, object_id="alert-9",
                                            incident_id="inc-3"), T0)
    waiting_run(store, "other")
    body = client.get("/api/v1/playbooks/runs", params={"about": "inc-3"}).json()
    assert [r["event"]["id"] for r in body["items"]] == [doc["event"]["id"]]
    assert client.get("/api/v1/playbooks/runs", params={"about": "x" * 200}).status_code == 422


def test_a_real_run_waits_and_a_responder_releases_it_through_the_api(client, store, tmp_path,
                                                                       bearer_for, receiver):
    """The engine parks a run on wait_for_approval; the API's approval lets the next tick
    finish it; the detail shows who approved, and the steps before and after."""
    gate_playbook(tmp_path / "books", receiver.url)
    engine = engine_for(store, tmp_path / "books", Clock(T0))
    [rid] = engine.on_alert(make_alert())
    engine.tick()
    listed = client.get("/api/v1/playbooks/runs", params={"status": "waiting"}).json()
    assert [r["event"]["id"] for r in listed["items"]] == [rid]
    reply = client.post(f"/api/v1/playbooks/runs/{rid}/approve",
                        headers=bearer_for("wang.fang", "responder"), json={"comment": "同意"})
    assert reply.status_code == 200 and reply.json()["step"] == "approve"
    engine.tick()
    detail = client.get(f"/api/v1/playbooks/runs/{rid}").json()
    run = detail["run"]["watchkeeper"]["run"]
    assert run["status"] == "succeeded" and len(receiver.posts) == 1
    assert run["steps"]["approve"]["output"]["approver"] == "wang.fang"
    assert sorted(a["step"] for a in detail["attempts"]) == ["after", "approve"]


def test_runs_and_their_steps_are_on_the_incident_timeline(client, store):
    store.bulk_upsert("incidents", [make_incident("inc-5", "III")])
    doc, _ = runs.create_run(store, new_run("k5", "gate", object_id="alert-5",
                                            incident_id="inc-5"), T0)
    runs.create_run(store, new_run("k6", "gate", object_id="alert-6"), T0)   # another's
    runs.claim_attempt(store, doc, "hook", "203.0.113.7", 1, T0 + 1)
    runs.finish_attempt(store, doc, "hook", "203.0.113.7", 1,
                        {"outcome": "ok", "output": {"status": 200}}, T0 + 2, started_at=T0 + 1)
    store.refresh()
    items = client.get("/api/v1/incidents/inc-5/timeline").json()["items"]
    mine = [(i["kind"], i["object_id"]) for i in items if i["kind"].startswith("playbook")]
    assert mine == [("playbook.run", doc["event"]["id"]), ("playbook.step", doc["event"]["id"])]
    step = next(i for i in items if i["kind"] == "playbook.step")
    assert step["summary"] == "gate step hook (attempt 1): ok"
    assert step["summary_zh"] == "步骤 hook（第 1 次）：完成"     # the actor names the playbook
    assert step["changes"]["output"] == {"status": 200} and step["actor"] == "playbook:gate"
