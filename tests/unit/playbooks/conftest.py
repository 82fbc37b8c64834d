"""Real peers for the playbook tests: an HTTP webhook receiver, alerts, an engine on SQLite."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from playbooks.engine import Engine
from playbooks.loader import Library
from playbooks.settings import PlaybookSettings
from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store.sqlite import SqliteStore

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


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


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


@pytest.fixture
def store(tmp_path):
    made = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    yield made
    made.close()


def engine_for(store, folder: Path, clock=None, **settings) -> Engine:
    return Engine(store, Library([folder]), PlaybookSettings(shipped=False, **settings),
                  clock=clock or Clock())


def write_playbook(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
