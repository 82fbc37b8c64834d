"""Report schedules: cron expressions (APScheduler 3.x CronTrigger) in the display zone.

One report per schedule and period across the deployment, however many scheduler processes
run: before generating, a process claims schedule+period with `Store.insert_new` (a `state`
document); only the one whose insert succeeds generates and sends. A period whose fire time
passed while no scheduler ran is caught up once, at the next start or tick (only the latest
complete period: a scheduler down for three months sends one report, not three). Failed
deliveries are retried, each attempt claimed the same way, up to `delivery_attempts`.
A claim whose report has not appeared within `claim_timeout_seconds` (its process died while
generating) is taken over with a numbered follow-up claim, at most MAX_TAKEOVERS times.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from reports.builder import ReportRequest
from reports.delivery import Target, attempt_record, deliver
from reports.generate import generate
from reports.periods import Period, last_complete
from reports.settings import ReportSettings, Schedule
from reports.templates import TemplateSet
from watchkeeper.assets import Inventory
from watchkeeper.store.base import Query, Store
from watchkeeper import timeutil
from watchkeeper.store.reports import claim_id, claim_run, record_delivery

log = logging.getLogger("watchkeeper.reports.scheduler")
RETRY_EVERY_SECONDS = 60
MAX_TAKEOVERS = 3


def trigger(schedule: Schedule, zone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(schedule.cron, timezone=ZoneInfo(zone))
    except ValueError as exc:
        raise ValueError(f"config: reports.schedules[{schedule.name}].cron "
                         f"{schedule.cron!r}: {exc}") from None


def targets(schedule: Schedule) -> list[Target]:
    return [Target("email", to) for to in schedule.email_to] + \
        ([Target("webhook", schedule.webhook_url)] if schedule.webhook_url else [])


class ReportScheduler:
    def __init__(self, store: Store, settings: ReportSettings, inventory: Inventory | None = None,
                 owner: str | None = None, configured_retention_months: int | None = None):
        self.store, self.settings = store, settings
        self.inventory = inventory or Inventory()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.templates = TemplateSet(settings.templates_dir)
        self.retention = configured_retention_months
        self.triggers = {s.name: trigger(s, settings.timezone) for s in settings.schedules}

    def due_period(self, schedule: Schedule, now: float) -> Period | None:
        """The latest complete period whose fire time has come, or None."""
        period = last_complete(schedule.type, now, self.settings.timezone)
        zone = ZoneInfo(self.settings.timezone)
        fire = self.triggers[schedule.name].get_next_fire_time(
            None, datetime.fromtimestamp(period.end, zone))
        return period if fire is not None and fire.timestamp() <= now else None

    def run_schedule(self, schedule: Schedule, now: float | None = None) -> dict | None:
        """Generate and send this schedule's due report if this process wins the claim."""
        now = time.time() if now is None else now
        period = self.due_period(schedule, now)
        if period is None or not self._claim(schedule, period, now):
            return None
        log.info("schedule %s: generating %s %s", schedule.name, schedule.type, period.label)
        made = generate(self.store, ReportRequest(schedule.type, schedule.site, period,
                                                  lang=schedule.lang, schedule=schedule.name),
                        self.settings, self.templates, self.inventory, now,
                        generated_by=f"scheduler:{schedule.name}",
                        configured_retention_months=self.retention)
        doc = made.document
        for target in targets(schedule):
            doc = self._attempt(doc, target, 1, now) or doc
        return doc

    def _claim(self, schedule: Schedule, period: Period, now: float) -> bool:
        """Win the claim for this period, or take over a stale one whose report never came."""
        for n in range(MAX_TAKEOVERS + 1):
            label = period.label if n == 0 else f"{period.label}:takeover-{n}"
            if claim_run(self.store, schedule.name, label, self.owner, now):
                return True
            held = self.store.get_by_ids("state", [claim_id(schedule.name, label)])
            stale = held and now - timeutil.parse(held[0]["@timestamp"]) > \
                self.settings.claim_timeout_seconds
            if not stale or self._made(schedule, period):
                return False
        return False

    def _made(self, schedule: Schedule, period: Period) -> bool:
        self.store.refresh("reports")
        query = Query(limit=1, terms={"watchkeeper.report.schedule": [schedule.name],
                                      "watchkeeper.report.period": [period.label]})
        return self.store.search("reports", query).total > 0

    def _attempt(self, doc: dict, target: Target, attempt: int, now: float) -> dict | None:
        report_id = doc["event"]["id"]
        if not claim_run(self.store, f"{report_id}:{target.channel}:{target.address}",
                         f"attempt-{attempt}", self.owner, now):
            return None           # another scheduler makes this attempt
        error = deliver(self.store, doc, target, self.settings.smtp)
        if error:
            log.warning("report %s to %s failed (attempt %d): %s", report_id, target.address,
                        attempt, error)
        return record_delivery(self.store, report_id,
                               attempt_record(target, not error, error, attempt, now))

    def retry_failed(self, now: float | None = None) -> int:
        """Retry deliveries whose last attempt failed, after the backoff; returns attempts."""
        now = time.time() if now is None else now
        made = 0
        for schedule in self.settings.schedules:
            query = Query(terms={"watchkeeper.report.schedule": [schedule.name]}, limit=20)
            for doc in self.store.search("reports", query).items:
                for target in targets(schedule):
                    tries = [d for d in doc["watchkeeper"]["report"].get("deliveries", [])
                             if d["channel"] == target.channel and d["target"] == target.address]
                    if not tries or any(d["ok"] for d in tries):
                        continue
                    if len(tries) >= self.settings.delivery_attempts or \
                            now - tries[-1]["at"] < self.settings.delivery_backoff_seconds:
                        continue
                    made += self._attempt(doc, target, len(tries) + 1, now) is not None
        return made

    def run_pending(self, now: float | None = None) -> list[dict]:
        """Catch up every schedule once, then retry failed deliveries."""
        done = [doc for s in self.settings.schedules if (doc := self._safe(s, now))]
        self.retry_failed(now)
        return done

    def _safe(self, schedule: Schedule, now: float | None) -> dict | None:
        try:
            return self.run_schedule(schedule, now)
        except Exception:  # noqa: BLE001 - one broken schedule must not stop the others
            log.exception("schedule %s failed", schedule.name)
            return None

    def run_forever(self, stop: threading.Event) -> None:
        background = BackgroundScheduler(timezone=ZoneInfo(self.settings.timezone))
        for schedule in self.settings.schedules:
            background.add_job(self._safe, self.triggers[schedule.name], args=(schedule, None),
                               id=schedule.name, coalesce=True, max_instances=1,
                               misfire_grace_time=None)
        background.add_job(self.retry_failed, "interval", seconds=RETRY_EVERY_SECONDS,
                           id="retry-deliveries", coalesce=True, max_instances=1)
        self.run_pending()            # catch up what was missed while no scheduler ran
        background.start()
        log.info("report scheduler: %d schedules (%s)", len(self.settings.schedules),
                 self.settings.timezone)
        try:
            stop.wait()
        finally:
            background.shutdown(wait=False)
