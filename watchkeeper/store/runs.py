"""Playbook runs in the store (kind `runs`): the durable state the playbook worker resumes from.

Three record types, all under `watchkeeper.run` and all carrying the run's `labels.site` so the
tenant scope applies:
- the run (dataset watchkeeper.run): id = hash(playbook, trigger key), created with
  `insert_new`, so one trigger (an alert, however often replayed or re-raised) starts one run;
- step attempts (watchkeeper.run.step): id = hash(run, step, target, attempt), claimed with
  `insert_new` before the action runs, so no attempt ever runs twice, whatever restarts;
- approval decisions (watchkeeper.run.decision): id = hash(run, step), inserted once, so the
  first responder's decision stands and a second one is refused;
- worker heartbeats (watchkeeper.run.worker): id = hash(worker), rewritten while the worker
  lives, so a live worker's runs are never taken over (playbooks/heartbeat.py).
The API (approve/deny, listing) and the worker (playbooks/) both use these operations.
"""
from __future__ import annotations

from dataclasses import dataclass

from watchkeeper import schema, timeutil
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import Query, Store

RUN, STEP, DECISION = "watchkeeper.run", "watchkeeper.run.step", "watchkeeper.run.decision"
WORKER = "watchkeeper.run.worker"
ACTIVE = ("queued", "running", "waiting")
FINISHED = ("succeeded", "failed", "denied", "escalated")


class DecisionRefused(PermissionError):
    """The responder may not decide (they requested it) or someone already did."""


class SelfApproval(DecisionRefused):
    """The requester (a person, or the rule that started the run) cannot decide."""


def run_id(playbook: str, trigger_key: str) -> str:
    return schema.stable_id("run", playbook, trigger_key)


def attempt_id(run: str, step: str, target: str | None, attempt: int) -> str:
    return schema.stable_id("attempt", run, step, target, attempt)


def step_key(run: str, step: str, target: str | None) -> str:
    """The idempotency key an action sends to its target (webhook header, mail id)."""
    return schema.stable_id("step", run, step, target)


def _envelope(doc_id: str, dataset: str, now: float, site: str | None, run: dict) -> dict:
    doc = {"@timestamp": timeutil.format(now),
           "event": {"id": doc_id, "kind": "event", "dataset": dataset,
                     "created": timeutil.format(now)},
           "watchkeeper": {"run": run}}
    if site:
        doc["labels"] = {"site": site}
    return doc


@dataclass
class NewRun:
    playbook: str
    version: int
    trigger_kind: str            # alert | manual
    trigger_key: str             # e.g. the alert id
    object_id: str | None        # the alert or incident the run is about
    target: str | None
    inputs: dict
    requested_by: str
    site: str | None = None
    incident_id: str | None = None   # the incident the run's alert belongs to (timeline)


def create_run(store: Store, new: NewRun, now: float, subject: dict | None = None,
               owner: str | None = None) -> tuple[dict, bool]:
    """The run for this trigger; created (and audited) only if it does not exist yet.
    `subject`: the alert as the run saw it (steps read it even before it is indexed)."""
    [(doc, fresh)] = create_runs(store, [(new, subject)], now, owner)
    return doc, fresh


def create_runs(store: Store, news: list[tuple[NewRun, dict | None]], now: float,
                owner: str | None = None) -> list[tuple[dict, bool]]:
    """`create_run` for many triggers in one insert and one audit append (a poll of alerts
    starts its runs together); one (run, created now) per trigger, in order."""
    docs = [_run_document(new, now, subject, owner) for new, subject in news]
    fresh = store.insert_new_many("runs", docs)
    store.append_audits([audit_record("playbook.run.start", new.requested_by,
                                      object_kind="run", object_id=doc["event"]["id"],
                                      message=f"{new.playbook} v{new.version} on {new.target}")
                         for (new, _), doc, made in zip(news, docs, fresh) if made])
    return [(doc if made else get_run(store, doc["event"]["id"]) or doc, made)
            for doc, made in zip(docs, fresh)]


def _run_document(new: NewRun, now: float, subject: dict | None, owner: str | None) -> dict:
    rid = run_id(new.playbook, new.trigger_key)
    run = {"run_id": rid, "playbook": new.playbook, "version": new.version, "status": "queued",
           "trigger": {"kind": new.trigger_kind, "key": new.trigger_key,
                       "object_id": new.object_id},
           "target": new.target, "inputs": new.inputs, "requested_by": new.requested_by,
           "incident_id": new.incident_id,
           "step_index": 0, "steps": {}, "updated_at": timeutil.format(now),
           "subject": subject or {}, "owner": owner}
    return _envelope(rid, RUN, now, new.site, run)


def get_run(store: Store, rid: str) -> dict | None:
    store.refresh("runs")           # Elasticsearch: the latest save, not the one before
    found = store.get_by_ids("runs", [rid])
    return found[0] if found and found[0]["event"]["dataset"] == RUN else None


def save_run(store: Store, doc: dict, now: float) -> None:
    doc["watchkeeper"]["run"]["updated_at"] = timeutil.format(now)
    store.bulk_upsert("runs", [doc])


def active_runs(store: Store, limit: int = 5000) -> list[dict]:
    """Unfinished runs, oldest first (at most `limit`: the rest wait for a later tick)."""
    store.refresh("runs")
    query = Query(terms={"event.dataset": [RUN], "watchkeeper.run.status": list(ACTIVE)},
                  order="asc")
    return list(store.scan("runs", query, limit=limit))


def beat(store: Store, worker: str, now: float) -> None:
    """The playbook worker `worker` is alive at `now`."""
    store.bulk_upsert("runs", [_envelope(schema.stable_id("worker", worker), WORKER, now, None,
                                         {"worker": worker, "updated_at": timeutil.format(now)})])


def live_workers(store: Store, since: float) -> set[str]:
    """Workers that said they were alive at `since` or later."""
    store.refresh("runs")
    query = Query(since=since, terms={"event.dataset": [WORKER]}, limit=1000)
    return {d["watchkeeper"]["run"]["worker"] for d in store.scan("runs", query, limit=1000)}


def _attempt_body(run: dict, step: str, target: str | None, attempt: int, now: float) -> dict:
    info = run["watchkeeper"]["run"]
    body = {"run_id": info["run_id"], "playbook": info["playbook"], "step": step,
            "target": target, "attempt": attempt, "outcome": "started",
            "started_at": timeutil.format(now)}
    return _envelope(attempt_id(info["run_id"], step, target, attempt), STEP, now, _site(run),
                     body)


def claim_attempt(store: Store, run: dict, step: str, target: str | None, attempt: int,
                  now: float) -> bool:
    """True if this attempt is ours to run; False if it was claimed before (never rerun)."""
    return store.insert_new("runs", _attempt_body(run, step, target, attempt, now))


def finish_attempt(store: Store, run: dict, step: str, target: str | None, attempt: int,
                   result: dict, now: float, started_at: float | None = None) -> None:
    """Record an attempt's outcome. `started_at`: when the caller claimed it (then the
    claim is rewritten from what the caller knows, with no read first)."""
    if started_at is not None:
        doc = _attempt_body(run, step, target, attempt, started_at)
    else:
        info = run["watchkeeper"]["run"]
        found = store.get_by_ids("runs", [attempt_id(info["run_id"], step, target, attempt)])
        doc = found[0] if found else _attempt_body(run, step, target, attempt, now)
    doc["watchkeeper"]["run"].update({**result, "ended_at": timeutil.format(now)})
    store.bulk_upsert("runs", [doc])


def attempts(store: Store, rid: str) -> list[dict]:
    store.refresh("runs")
    query = Query(terms={"event.dataset": [STEP], "watchkeeper.run.run_id": [rid]},
                  order="asc")
    return [d["watchkeeper"]["run"] for d in store.scan("runs", query)]


def attempt(store: Store, rid: str, step: str, number: int) -> dict | None:
    """Attempt `number` of a run's step, as recorded (claimed, perhaps finished)."""
    for found in attempts(store, rid):
        if found.get("step") == step and found.get("attempt") == number:
            return found
    return None


def decide(store: Store, run: dict, step: str, approve: bool, actor: str, comment: str,
           now: float) -> dict:
    """Record a responder's decision on a waiting approval step (first decision wins)."""
    info = run["watchkeeper"]["run"]
    if actor == info.get("requested_by"):
        raise SelfApproval("the requester cannot approve or deny their own request")
    body = {"run_id": info["run_id"], "playbook": info["playbook"], "step": step,
            "decision": "approved" if approve else "denied", "by": actor,
            "at": timeutil.format(now), "comment": comment}
    doc = _envelope(schema.stable_id("decision", info["run_id"], step), DECISION, now,
                    _site(run), body)
    if not store.insert_new("runs", doc):
        raise DecisionRefused("this approval was already decided")
    store.append_audit(audit_record(f"playbook.approval.{body['decision']}", actor,
                                    object_kind="run", object_id=info["run_id"],
                                    message=f"{info['playbook']} step {step}: {comment}"))
    return body


def decision_for(store: Store, rid: str, step: str) -> dict | None:
    found = store.get_by_ids("runs", [schema.stable_id("decision", rid, step)])
    return found[0]["watchkeeper"]["run"] if found else None


def runs_about(store: Store, object_ids: list[str], limit: int = 1000) -> list[dict]:
    """Runs about these alerts or incidents (an incident's timeline shows them): started by
    one of them, or by an alert of the incident."""
    if not object_ids:
        return []
    store.refresh("runs")
    seen: dict[str, dict] = {}
    for field_name in ("watchkeeper.run.trigger.object_id", "watchkeeper.run.incident_id"):
        query = Query(terms={"event.dataset": [RUN], field_name: list(object_ids)},
                      order="asc")
        for doc in store.scan("runs", query, limit=limit):
            seen.setdefault(doc["event"]["id"], doc)
    return sorted(seen.values(), key=lambda d: (d["@timestamp"], d["event"]["id"]))


def waiting_step(run: dict) -> str | None:
    """The step a run waits on for a human, if any."""
    info = run["watchkeeper"]["run"]
    if info.get("status") != "waiting":
        return None
    return next((name for name, state in (info.get("steps") or {}).items()
                 if state.get("outcome") == "waiting"), None)


def decisions(store: Store, rid: str) -> list[dict]:
    store.refresh("runs")
    query = Query(terms={"event.dataset": [DECISION], "watchkeeper.run.run_id": [rid]},
                  order="asc")
    return [d["watchkeeper"]["run"] for d in store.scan("runs", query)]


def _site(run: dict) -> str | None:
    return (run.get("labels") or {}).get("site")


# Run statuses and step outcomes as the timeline says them in zh-CN.
ZH_WORDS = {"queued": "排队中", "running": "执行中", "waiting": "等待审批", "succeeded": "成功",
            "failed": "失败", "escalated": "已升级人工处置", "denied": "已拒绝",
            "interrupted": "中断", "ok": "完成", "skipped": "跳过", "started": "开始"}

def _zh(info: dict) -> str:
    """A run's or step's message in zh-CN; the English one where none was recorded."""
    return info.get("message_zh") or info.get("message") or ""


def timeline_entries(store, incident: dict, limit: int = 1000) -> list:
    """The incident timeline's playbook part (a `sources` entry of
    incident_views.timeline): each run about the incident or one of its alerts, and each
    step attempt of those runs with its outcome, read through the caller's (scoped) view."""
    from watchkeeper.store.incident_views import TimelineEntry
    iid = incident["event"]["id"]
    alert_ids = list((incident.get("watchkeeper") or {}).get("incident", {}).get("alerts", []))
    found = runs_about(store, [iid, *alert_ids[:limit]], limit=limit)
    entries = []
    for doc in found:
        info = doc["watchkeeper"]["run"]
        entries.append(TimelineEntry(
            info.get("started_at") or doc["@timestamp"], "playbook.run", info.get("requested_by"),
            f"playbook {info['playbook']} v{info.get('version')} on {info.get('target')}: "
            f"{info['status']}" + (f" ({info['message']})" if info.get("message") else ""),
            info["run_id"],
            summary_zh=f"剧本 {info['playbook']} v{info.get('version')} 处置 {info.get('target')}："
                       f"{ZH_WORDS.get(info['status'], info['status'])}"
                       + (f"（{_zh(info)}）" if info.get("message") else "")))
    if not found:
        return entries
    query = Query(terms={"event.dataset": [STEP],
                         "watchkeeper.run.run_id": [d["event"]["id"] for d in found]},
                  order="asc")
    for doc in store.scan("runs", query, limit=limit):
        step = doc["watchkeeper"]["run"]
        entries.append(TimelineEntry(
            step.get("ended_at") or step.get("started_at") or doc["@timestamp"],
            "playbook.step", f"playbook:{step['playbook']}",
            f"{step['playbook']} step {step['step']} (attempt {step['attempt']}): "
            f"{step.get('outcome')} {step.get('message') or ''}".strip(), step["run_id"],
            {"inputs": step.get("inputs"), "output": step.get("output")}
            if step.get("outcome") != "started" else None,
            summary_zh=f"步骤 {step['step']}（第 {step['attempt']} 次）："
                       f"{ZH_WORDS.get(step.get('outcome'), step.get('outcome'))} "
                       f"{_zh(step)}".strip()))
    return entries
