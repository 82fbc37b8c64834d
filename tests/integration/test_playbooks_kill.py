"""Issue 12: kill -9 of the playbook worker mid-run, twice, and restart: every run completes
and no step runs twice.

Real Kafka (the alerts topic, the worker's own consumer group), the real `watchkeeper
playbooks` process, runs in a SQLite store file shared across the processes, and a slow
real webhook receiver so the kills land while steps are in flight. "Runs twice" is checked
where it matters: every step attempt record is claimed once (run × step × target × attempt),
each step has exactly one successful attempt, and every webhook the receiver got carries the
step's idempotency key, so the receiver sees each step's effect exactly once (a delivery
whose record the kill prevented is resent with the same key, never as a new one). An attempt
the kill interrupted is taken up again once its timeout (2 s) and the grace (5 s) have passed:
before that it could be another live worker's."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import time

import msgspec
import pytest
import yaml

from tests.playbooks_support import Receiver, make_alert
from watchkeeper.bus import Names
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.store import Query, runs
from watchkeeper.store.sqlite import SqliteStore

from .conftest import ROOT, WATCHKEEPER

pytestmark = pytest.mark.kafka
RUNS = 30
STEPS = ("one", "two", "three")

BOOK = """\
name: kill
version: 1
trigger: {{alert: {{category: [scan]}}}}
concurrency: {{per_playbook: 100}}
steps:
""" + "".join(f"""\
  - id: {step}
    action: notify_webhook
    timeout: 2
    with: {{{{url: "{{url}}/{step}"}}}}
    retries: {{{{attempts: 5, backoff: 0.2}}}}
""" for step in STEPS)


def _worker(config: str, log) -> subprocess.Popen:
    return subprocess.Popen([*WATCHKEEPER, "playbooks", "--config", config], cwd=ROOT,
                            env=dict(os.environ), stdout=log, stderr=log)


def _wait(predicate, seconds: float, what: str, proc: subprocess.Popen | None = None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"watchkeeper playbooks exited with {proc.returncode} before {what}")
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _statuses(db: str) -> collections.Counter:
    store = SqliteStore(f"sqlite:///{db}")
    try:
        docs = store.scan("runs", Query(terms={"event.dataset": [runs.RUN]}))
        return collections.Counter(d["watchkeeper"]["run"]["status"] for d in docs)
    finally:
        store.close()


def test_kill_9_mid_run_every_run_completes_and_no_step_runs_twice(kafka_url, unique,
                                                                    tmp_path):
    receiver = Receiver(delay=0.15)
    names = Names(f"wktestpb{unique}")
    bus = KafkaBus(kafka_url, partitions=2)
    bus.ensure_topics(names.topics)
    producer = bus.producer()
    for i in range(RUNS):
        alert = make_alert(source=f"203.0.113.{i + 1}")
        producer.send(names.alerts, msgspec.json.encode(alert), key=alert["source"]["ip"])
    producer.close()
    books = tmp_path / "books"
    books.mkdir()
    (books / "kill.yaml").write_text(BOOK.format(url=receiver.url))
    db = str(tmp_path / "runs.db")
    config = tmp_path / "wk.yaml"
    config.write_text(yaml.safe_dump({
        "bus": kafka_url, "store": f"sqlite:///{db}", "namespace": names.namespace,
        "partitions": 2, "playbooks": {"shipped": False, "folders": [str(books)],
                                       "tick_seconds": 0.2, "takeover_seconds": 3}}))
    log = open(tmp_path / "worker.log", "w")
    try:
        for kill_at in (RUNS // 2, RUNS * 2):          # posts received before each kill
            proc = _worker(str(config), log)
            _wait(lambda: len(receiver.posts) >= kill_at, 180, f"{kill_at} webhooks", proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        proc = _worker(str(config), log)
        _wait(lambda: _statuses(db)["succeeded"] == RUNS, 240, "every run to finish", proc)
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        receiver.close()
        bus.close()

    assert _statuses(db) == {"succeeded": RUNS}
    store = SqliteStore(f"sqlite:///{db}")
    attempts = [d["watchkeeper"]["run"] for d in
                store.scan("runs", Query(terms={"event.dataset": [runs.STEP]}))]
    store.close()
    ok = collections.Counter((a["run_id"], a["step"]) for a in attempts if a["outcome"] == "ok")
    assert len(ok) == RUNS * len(STEPS) and set(ok.values()) == {1}
    ids = collections.Counter((a["run_id"], a["step"], a["attempt"]) for a in attempts)
    assert set(ids.values()) == {1}                   # no attempt record written twice
    expected_keys = {runs.step_key(run_id, step, a["target"])
                     for a in attempts for run_id, step in [(a["run_id"], a["step"])]}
    assert receiver.keys == expected_keys            # one effect per step at the receiver
    resent = len(receiver.posts) - len(receiver.keys)
    print(f"webhooks: {len(receiver.posts)} posts, {len(receiver.keys)} distinct keys, "
          f"{resent} resent with the same key after a kill")
