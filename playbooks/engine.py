"""Runs playbooks: starts a run per trigger, advances runs step by step, durably.

Everything a restart needs is in the store (watchkeeper/store/runs.py): the run document
(status, step index, each step's outcome and output) and one record per step attempt,
claimed with `insert_new` before the action runs. After a crash an attempt found claimed
but unfinished is never run again: an idempotent action (same key -> no second effect at
the target) gets a new attempt with the same key, any other is recorded as `interrupted`
and its `on_failure` decides.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import ValidationError

from playbooks import preview, template, triggers
from playbooks.actions import REGISTRY, ActionContext, ActionResult
from playbooks.actions.base import call
from playbooks.batching import BatchingStore
from playbooks.expr import ExpressionError, compiled
from playbooks.heartbeat import Heartbeat
from playbooks.loader import Library
from playbooks.model import Playbook, Step
from playbooks.settings import PlaybookSettings
from watchkeeper import timeutil
from watchkeeper.assets import Inventory
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Query, Store, runs
from watchkeeper.store.audit import audit_record

BUSY = ("running", "waiting")
IN_FLIGHT_GRACE_S = 5.0    # beyond a step's timeout before its attempt counts as interrupted


@dataclass
class TickResult:
    advanced: int = 0
    finished: int = 0
    waiting: int = 0
    queued: int = 0


@dataclass
class Engine:
    store: Store
    library: Library
    settings: PlaybookSettings = field(default_factory=PlaybookSettings)
    internal: InternalNetworks = field(default_factory=InternalNetworks)
    inventory: Inventory = field(default_factory=Inventory)
    site_tree: Mapping[str, str | None] | None = None
    clock: Callable[[], float] = time.time
    pool: ThreadPoolExecutor | None = None     # runs actions (each with its timeout)
    _incidents_polled_at: float | None = None
    # Runs belong to the worker that saved them last; another worker leaves them alone while
    # that one keeps saving them (N replicas share the work instead of racing on every run).
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        # Runs advance side by side (`settings.parallel_runs` threads); their writes are
        # grouped into shared round trips (playbooks/batching.py).
        if not isinstance(self.store, BatchingStore):
            self.store = BatchingStore(self.store)
        width = self.settings.parallel_runs
        self.pool = self.pool or ThreadPoolExecutor(width + 8, "playbook-action")
        self.runners = ThreadPoolExecutor(width, "playbook-run")
        self.heartbeat = Heartbeat(self.store, self.worker_id, self.settings.takeover_seconds,
                                   self.clock)

    def close(self) -> None:
        self.runners.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- starting runs --------------------------------------------------------------------
    def on_alert(self, alert: dict) -> list[str]:
        """Start one run per matching playbook; a replayed or re-raised alert (same id)
        finds its run and starts nothing. Returns the ids of runs created now."""
        return self.on_alerts([alert])

    def on_alerts(self, alerts: list[dict]) -> list[str]:
        """`on_alert` for a poll's worth of alerts: their runs are created together."""
        news = []
        for alert in alerts:
            for playbook in triggers.playbooks_for(alert, self.library.playbooks,
                                                   self.site_tree):
                news.append((runs.NewRun(
                    playbook.name, playbook.version, "alert", alert["event"]["id"],
                    alert["event"]["id"], triggers.target_of(playbook, alert),
                    dict(playbook.inputs), f"rule:{playbook.name}",
                    (alert.get("labels") or {}).get("site"),
                    alert["watchkeeper"]["alert"].get("incident_id")), alert))
        if not news:
            return []
        made = runs.create_runs(self.store, news, self.clock(), owner=self.worker_id)
        return [doc["event"]["id"] for doc, fresh in made if fresh]

    def poll_incidents(self) -> list[str]:
        """Start runs for incidents the store holds that an incident trigger matches: one
        run per incident and level (re-graded to a graver level = a new trigger)."""
        books = [p for p in self.library.playbooks.values() if p.trigger.incident]
        now = self.clock()
        since = max(0.0, now - self.settings.incident_lookback_days * 86_400)
        created = []
        for playbook in books:
            trigger = playbook.trigger.incident
            query = Query(since=since, terms={"watchkeeper.incident.level": trigger.levels()})
            for incident in self.store.scan("incidents", query, limit=10_000):
                if triggers.incident_matches(trigger, incident, self.site_tree):
                    created += self._start_for_incident(playbook, incident, now)
        return created

    def _start_for_incident(self, playbook: Playbook, incident: dict, now: float) -> list[str]:
        iid = incident["event"]["id"]
        level = incident["watchkeeper"]["incident"].get("level")
        new = runs.NewRun(playbook.name, playbook.version, "incident", f"incident:{iid}:{level}",
                          iid, triggers.incident_target(playbook, incident),
                          dict(playbook.inputs), f"rule:{playbook.name}",
                          (incident.get("labels") or {}).get("site"), iid)
        doc, fresh = runs.create_run(self.store, new, now, subject=incident,
                                     owner=self.worker_id)
        return [doc["event"]["id"]] if fresh else []

    # -- advancing runs -------------------------------------------------------------------
    def tick(self) -> TickResult:
        self.library.reload_if_changed()
        now = self.clock()
        if self._incidents_polled_at is None or \
                now - self._incidents_polled_at >= self.settings.incident_poll_seconds:
            self._incidents_polled_at = now
            self.poll_incidents()
        result = TickResult()
        self.heartbeat.beat()
        active = runs.active_runs(self.store)
        alive = self.heartbeat.live_workers()
        busy = Counter()
        for doc in active:
            info = doc["watchkeeper"]["run"]
            if info["status"] in BUSY:
                busy[info["playbook"]] += 1
                busy[(info["playbook"], info.get("target"))] += 1
        recent: dict[str, int] = {}
        todo = [doc for doc in active if self._mine(doc, alive)]
        while todo:                   # waves: a run finished frees a place for a queued one
            admitted, held = [], []
            for doc in todo:
                queued = doc["watchkeeper"]["run"]["status"] == "queued"
                (held if queued and not self._admit(doc, busy) else admitted).append(doc)
            self._advance_all(admitted, recent)
            freed = False
            for doc in admitted:
                info = doc["watchkeeper"]["run"]
                after = info["status"]
                if after in runs.FINISHED:       # its place is free for a queued run now
                    busy[info["playbook"]] -= 1
                    busy[(info["playbook"], info.get("target"))] -= 1
                    freed = True
                result.advanced += 1
                result.finished += after in runs.FINISHED
                result.waiting += after == "waiting"
            todo = held if freed else []
            result.queued += 0 if freed else len(held)
        return result

    def _advance_all(self, docs: list[dict], recent: dict[str, int]) -> None:
        """Advance these runs side by side (their writes share round trips)."""
        if len(docs) <= 1 or self.settings.parallel_runs <= 1:
            for doc in docs:
                self.advance(doc, recent)
            return
        for _ in self.runners.map(lambda doc: self.advance(doc, recent), docs):
            pass

    def _mine(self, doc: dict, alive: set[str]) -> bool:
        """Ours to advance: saved last by this worker, by none (a run started by hand), or
        not saved for `takeover_seconds` by a worker silent as long (it stopped or died),
        or waiting for a human."""
        info = doc["watchkeeper"]["run"]
        owner = info.get("owner")
        if owner in (None, self.worker_id) or info["status"] == "waiting":
            return True
        if owner in alive:
            return False
        idle = self.clock() - timeutil.parse(info["updated_at"])
        return idle >= self.settings.takeover_seconds

    def _admit(self, doc: dict, busy: Counter) -> bool:
        """Concurrency limits per playbook and per target, counted over running runs."""
        info = doc["watchkeeper"]["run"]
        playbook = self.library.playbooks.get(info["playbook"])
        if playbook is not None:     # (not loaded: advance() fails it with the reason)
            limits = playbook.concurrency
            if busy[info["playbook"]] >= limits.per_playbook or \
                    busy[(info["playbook"], info.get("target"))] >= limits.per_target:
                return False
        busy[info["playbook"]] += 1
        busy[(info["playbook"], info.get("target"))] += 1
        return True

    def advance(self, doc: dict, recent: dict[str, int] | None = None) -> None:
        """Run steps until the run finishes, waits for a human, or waits to retry."""
        info = doc["watchkeeper"]["run"]
        now = self.clock()
        self.heartbeat.beat()                  # a long tick still says this worker is alive
        info["owner"] = self.worker_id         # saved with the run's next save
        playbook = self.library.playbooks.get(info["playbook"])
        if playbook is None:
            self._finish(doc, "failed", f"playbook {info['playbook']!r} is not loaded", now)
            return
        if info.get("not_before") and now < timeutil.parse(info["not_before"]):
            return
        if info["trigger"]["kind"] == "manual" and not playbook.trigger.manual:
            self._finish(doc, "failed", f"playbook {playbook.name!r} cannot be started by "
                                        f"hand (trigger.manual: false)", now)
            return
        if info["status"] == "queued":
            info["status"], info["started_at"] = "running", timeutil.format(now)
        while info["step_index"] < len(playbook.steps):
            step = playbook.steps[info["step_index"]]
            if (info["steps"].get(step.id) or {}).get("done"):   # moved by a reload: done
                info["step_index"] += 1
                continue
            result = self._step(doc, playbook, step, recent if recent is not None else {})
            if result.outcome == "busy":      # another worker has this step in hand
                return
            if not self._after_step(doc, step, result):
                if info["status"] == "waiting":
                    self._preview(doc, playbook, recent if recent is not None else {})
                runs.save_run(self.store, doc, self.clock())
                return
            info["steps"][step.id]["done"] = True
            info["step_index"] += 1
        self._finish(doc, "succeeded", "", self.clock())

    def _preview(self, doc: dict, playbook: Playbook, recent: dict[str, int]) -> None:
        """What the run would do once approved, for the responder (playbooks/preview.py);
        worked out once, when the wait starts."""
        info = doc["watchkeeper"]["run"]
        output = info["steps"][playbook.steps[info["step_index"]].id].setdefault("output", {})
        if "then" not in output:
            output["then"] = preview.steps_after(playbook, info["step_index"],
                                                 self._context(doc, playbook, recent))

    def _after_step(self, doc: dict, step: Step, result: ActionResult) -> bool:
        """Record the step's result; True = go on to the next step."""
        info = doc["watchkeeper"]["run"]
        state = info["steps"].setdefault(step.id, {"attempts": 0})
        state.update(outcome=result.outcome, output=result.output, message=result.message,
                     message_zh=result.message_zh)
        if not result.retry:
            state["final"] = True
        info.pop("not_before", None)
        if result.outcome in ("ok", "skipped"):
            info["status"] = "running"
            return True
        if result.outcome == "waiting":
            info["status"] = "waiting"
            return False
        if result.outcome == "denied":
            self._finish(doc, "denied", result.message, self.clock(), result.message_zh)
            return False
        if result.outcome == "failed" and state["attempts"] < step.retries.attempts \
                and not state.get("final"):
            info["not_before"] = timeutil.format(self.clock() +
                                                 step.retries.delay(state["attempts"]))
            return False
        if step.on_failure == "continue":
            return True
        self._finish(doc, "failed" if step.on_failure == "stop" else "escalated",
                     f"step {step.id}: {result.message}", self.clock(),
                     f"步骤 {step.id}：{result.message_zh or result.message}")
        return False

    def _finish(self, doc: dict, status: str, message: str, now: float,
                message_zh: str = "") -> None:
        info = doc["watchkeeper"]["run"]
        info.update(status=status, ended_at=timeutil.format(now), message=message,
                    message_zh=message_zh or message)
        runs.save_run(self.store, doc, now)
        action = "playbook.run.escalated" if status == "escalated" else "playbook.run.end"
        self.store.append_audit(audit_record(
            action, f"playbook:{info['playbook']}", object_kind="run",
            object_id=info["run_id"], outcome="success" if status == "succeeded" else "failure",
            message=f"{info['playbook']}: {status}" + (f": {message}" if message else "")))

    # -- one step -------------------------------------------------------------------------
    def _step(self, doc: dict, playbook: Playbook, step: Step,
              recent: dict[str, int]) -> ActionResult:
        info = doc["watchkeeper"]["run"]
        state = info["steps"].setdefault(step.id, {"attempts": 0})
        action = REGISTRY[step.action]
        context = self._context(doc, playbook, recent)
        ctx = self._action_context(doc, step)
        try:
            if step.if_ and not compiled(step.if_).test(context):
                return ActionResult("skipped", {}, f"if {step.if_!r} was false",
                                    message_zh=f"条件 {step.if_!r} 不成立")
            params = action.Params.model_validate(template.render(step.with_, context))
        except (ValidationError, ExpressionError, TypeError) as exc:
            state["final"] = True        # the same input fails the same way: no retry
            return ActionResult("failed", {}, f"parameters: {exc}",
                                message_zh=f"参数有误：{exc}")
        if state.get("outcome") == "waiting" and hasattr(action, "resume"):
            return action.resume(ctx, params, state.get("output") or {})
        return self._attempt(doc, step, action, ctx, params, state)

    def _attempt(self, doc, step, action, ctx, params, state) -> ActionResult:
        info = doc["watchkeeper"]["run"]
        while True:
            state["attempts"] += 1
            number = state["attempts"]
            if runs.claim_attempt(self.store, doc, step.id, info.get("target"), number,
                                  ctx.now):
                break
            earlier = runs.attempt(self.store, info["run_id"], step.id, number)
            if earlier and earlier.get("outcome") == "interrupted":
                state["final"] = True
                return ActionResult("failed", {}, earlier.get("message", "interrupted"),
                                    message_zh=earlier.get("message_zh", ""))
            if earlier and earlier.get("outcome") not in (None, "started"):
                return ActionResult(earlier["outcome"], earlier.get("output") or {},
                                    earlier.get("message", ""),
                                    message_zh=earlier.get("message_zh", ""))
            if earlier and self._may_still_run(earlier, step):
                state["attempts"] -= 1
                return ActionResult("busy")
            if not action.idempotent:
                state["final"] = True
                result = ActionResult("failed", {}, "interrupted by a restart; outcome "
                                                    "unknown, not repeated",
                                      message_zh="因重启中断，结果未知，不再重复执行")
                runs.finish_attempt(self.store, doc, step.id, info.get("target"), number,
                                    {"outcome": "interrupted", "message": result.message,
                                     "message_zh": result.message_zh}, self.clock())
                return result
        result = call(self.pool, action, ctx, params, step.timeout)
        runs.finish_attempt(self.store, doc, step.id, info.get("target"), number,
                            {"outcome": result.outcome, "output": result.output,
                             "message": result.message, "message_zh": result.message_zh,
                             "inputs": params.model_dump(mode="json")}, self.clock(),
                            started_at=ctx.now)
        if action.audited:
            self.store.append_audit(audit_record(
                f"playbook.step.{action.name}", ctx.actor, object_kind="run",
                object_id=info["run_id"], outcome="success" if result.outcome == "ok"
                else "failure", message=f"{step.id} (attempt {number}) on {ctx.target}: "
                                        f"{result.outcome} {result.message}".strip()))
        return result

    def _may_still_run(self, attempt: dict, step: Step) -> bool:
        """Claimed and not finished: another worker's attempt still within its timeout
        (it records a timeout when that passes), or one a crash interrupted."""
        started = timeutil.parse(attempt["started_at"])
        return self.clock() < started + step.timeout + IN_FLIGHT_GRACE_S

    def _action_context(self, doc: dict, step: Step) -> ActionContext:
        info = doc["watchkeeper"]["run"]
        return ActionContext(
            store=self.store, settings=self.settings, run=info, run_id=info["run_id"],
            step_id=step.id, target=info.get("target"),
            key=runs.step_key(info["run_id"], step.id, info.get("target")), now=self.clock(),
            internal=self.internal, inventory=self.inventory)

    def _context(self, doc: dict, playbook: Playbook, recent: dict[str, int]) -> dict:
        info = doc["watchkeeper"]["run"]
        if doc["event"]["id"] not in recent and playbook.uses("playbook.runs_last_hour"):
            recent[doc["event"]["id"]] = self._runs_in_hour_before(doc, playbook.name)
        subject = info.get("subject") or {}
        about = "incident" if info["trigger"]["kind"] == "incident" else "alert"
        return {"alert": subject if about == "alert" else {},
                "incident": subject if about == "incident" else {},
                "inputs": {**playbook.inputs, **(info.get("inputs") or {})},   # by hand: overrides
                "target": info.get("target"),
                "steps": {k: {"outcome": v.get("outcome"), "output": v.get("output") or {}}
                          for k, v in (info.get("steps") or {}).items()},
                "run": {"id": info["run_id"], "requested_by": info.get("requested_by")},
                "playbook": {"name": playbook.name,
                             "runs_last_hour": recent.get(doc["event"]["id"])}}

    def _runs_in_hour_before(self, doc: dict, name: str) -> int:
        """Runs of this playbook started in the hour up to this one (itself included): a
        rate a step can gate on (`if: playbook.runs_last_hour > 20`)."""
        created = timeutil.parse(doc["@timestamp"])
        query = Query(since=max(0.0, created - 3600), until=created + 1e-6, limit=1,
                      terms={"event.dataset": [runs.RUN], "watchkeeper.run.playbook": [name]})
        return self.store.search("runs", query).total
