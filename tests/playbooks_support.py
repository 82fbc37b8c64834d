"""Shared by every playbook test (tests/unit/playbooks, the API's, the runs contract, the kill
test) and the playbook benchmarks: a real HTTP webhook receiver, alerts, incidents, runs in the
states the tests start from, an engine on a given store. The `receiver` fixture is in
tests/conftest.py; the SQLite `store` one in tests/unit/playbooks/conftest.py."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playbooks.engine import Engine
from playbooks.loader import Library
from playbooks.settings import PlaybookSettings
from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store import runs

T0 = timeutil.parse("2026-05-10T12:00:00+00:00")


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024      # many runs post at once (socketserver's default is 5)
    daemon_threads = True


class Receiver:
    """A webhook receiver on a free local port; counts every POST and every distinct
    Idempotency-Key; answers with `statuses` in turn (then 200)."""

    def __init__(self, delay: float = 0.0):
        self.posts: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if delay:
                    time.sleep(delay)      # a slow receiver: a kill lands mid-step
                receiver.posts.append({"key": self.headers.get("Idempotency-Key"),
                                       "path": self.path, "body": json.loads(body)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def keys(self) -> set[str]:
        return {p["key"] for p in self.posts}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def make_alert(source: str = "203.0.113.7", category: str = "scan", severity: int = 3,
               at: float = T0, site: str | None = None, **extra) -> dict:
    spec = AlertSpec("scan", "1", category, f"wk.{category}", category, severity,
                     f"{source} {category}", source, at, at + 5, source_ip=source,
                     destination_ip="10.1.1.1", subscores={"fanout": 0.5})
    doc = alert_document(spec, created=at + 6)
    if site:
        doc["labels"] = {"site": site}
    for dotted, value in extra.items():
        node = doc
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return doc


class Clock:
    def __init__(self, now: float = T0 + 60):
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine_for(store, folder: Path, clock=None, **settings) -> Engine:
    return Engine(store, Library([folder]), PlaybookSettings(shipped=False, **settings),
                  clock=clock or Clock())


def write_playbook(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def webhook_playbook(folder: Path, name: str, url: str, timeout: float | None = None) -> Path:
    """A playbook of one webhook step, triggered by any scan alert."""
    limit = f"\n    timeout: {timeout}" if timeout is not None else ""
    return write_playbook(folder, name, f"""\
name: {name}
version: 1
trigger: {{alert: {{category: [scan]}}}}
steps:
  - id: hook
    action: notify_webhook{limit}
    with: {{url: "{url}"}}
""")


def make_incident(iid: str, level: str, categories=("exfiltration",), site=None) -> dict:
    doc = {"@timestamp": timeutil.format(T0), "event": {"id": iid, "kind": "event",
                                                         "dataset": "watchkeeper.incident"},
           "watchkeeper": {"incident": {"entity": "10.20.1.8", "status": "new", "level": level,
                                        "categories": list(categories)}}}
    if site:
        doc["labels"] = {"site": site}
    return doc


def new_run(key: str = "alert-1", playbook: str = "hook", site: str | None = None,
            target: str | None = "203.0.113.7", requested_by: str | None = None,
            object_id: str | None = None, inputs: dict | None = None,
            incident_id: str | None = None) -> runs.NewRun:
    """A run triggered by alert `key` (object_id: the alert, default the key)."""
    return runs.NewRun(playbook, 1, "alert", key, object_id or key, target, inputs or {},
                       requested_by or f"rule:{playbook}", site, incident_id)


def waiting_run(store, key: str = "alert-1", site: str | None = None,
                requested_by: str = "rule:gate", at: float = T0) -> str:
    """A `gate` run parked on its `approve` step (as the engine leaves it); its id."""
    doc, _ = runs.create_run(store, new_run(key, "gate", site, requested_by=requested_by), at)
    info = doc["watchkeeper"]["run"]
    info["status"] = "waiting"
    info["steps"] = {"approve": {"outcome": "waiting", "attempts": 1,
                                 "output": {"expires_at": "2026-01-01T01:00:00.000000Z"}}}
    runs.save_run(store, doc, at)
    return doc["event"]["id"]


def gate_playbook(folder: Path, url: str, before: bool = False) -> Path:
    """`gate`: [a webhook to /before,] an approval, then a webhook to /after."""
    first = f"""  - id: hook
    action: notify_webhook
    with: {{url: "{url}/before"}}
""" if before else ""
    return write_playbook(folder, "gate", f"""\
name: gate
version: 1
trigger: {{alert: {{category: [scan]}}}}
steps:
{first}  - id: approve
    action: wait_for_approval
    with: {{reason: "封禁 {{{{ target }}}}？"}}
  - id: after
    action: notify_webhook
    with: {{url: "{url}/after"}}
""")
