"""Scheduled reports: two scheduler processes produce and send a due monthly report once; it
is stored and arrives at a real local SMTP server (aiosmtpd) with the PDF attached; a failed
delivery is recorded and retried; a webhook is called."""
from __future__ import annotations

import email
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml
from aiosmtpd.controller import Controller

from reports.periods import last_complete
from reports.scheduler import ReportScheduler
from reports.settings import report_settings
from tests.unit.reports import seed
from watchkeeper.store.base import Query
from watchkeeper.store.sqlite import SqliteStore


class Sink:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def _pdf_attachments(message) -> list[bytes]:
    return [part.get_payload(decode=True) for part in message.walk()
            if part.get_content_type() == "application/pdf"]


def test_two_scheduler_processes_send_the_due_monthly_report_once(tmp_path, smtp):
    sink, port = smtp
    db = tmp_path / "wk.db"
    store = SqliteStore(f"sqlite:///{db}")
    seed.seed(store)
    config = tmp_path / "wk.yaml"
    config.write_text(yaml.safe_dump({"store": f"sqlite:///{db}", "reports": {
        "smtp": {"host": "127.0.0.1", "port": port},
        # Fired at 08:00 on the 1st: by now (any day) the last month's report is due.
        "schedules": [{"name": "monthly-all", "type": "monthly", "cron": "0 8 1 * *",
                       "email_to": ["officer@example.gov.cn"]}]}}, allow_unicode=True))
    command = [sys.executable, "-m", "app.cli", "scheduler", "--once",
               "--config", str(config)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()[-2000:]
    store.refresh()
    reports = store.search("reports", Query()).items
    assert len(reports) == 1
    info = reports[0]["watchkeeper"]["report"]
    assert info["period"] == last_complete("monthly", time.time()).label
    assert [d["ok"] for d in info["deliveries"]] == [True]
    assert len(sink.messages) == 1
    [pdf] = _pdf_attachments(sink.messages[0])
    assert pdf.startswith(b"%PDF") and len(pdf) == info["size"]

    # A third run later (a restart) does not send it again.
    again = subprocess.run(command, capture_output=True, timeout=120)
    assert again.returncode == 0
    assert len(sink.messages) == 1
    store.close()


def _settings(port: int, **extra) -> dict:
    return {"smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 5},
            "delivery_backoff_seconds": 60,
            "schedules": [{"name": "daily-city-a", "type": "daily", "cron": "30 8 * * *",
                           "site": "/", "email_to": ["duty@example.gov.cn"], **extra}]}


def test_a_failed_delivery_is_recorded_and_retried(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    port = free_port()                       # nothing listens yet: the first attempt fails
    scheduler = ReportScheduler(store, report_settings(_settings(port)))
    now = seed.utc(2026, 11, 16, 1)          # 09:00 Beijing, after the 08:30 run
    [doc] = scheduler.run_pending(now)
    [first] = doc["watchkeeper"]["report"]["deliveries"]
    assert first["ok"] is False and first["error"]
    assert scheduler.retry_failed(now + 10) == 0          # within the backoff: wait

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert scheduler.retry_failed(now + 61) == 1
    finally:
        controller.stop()
    stored = store.get_by_ids("reports", [doc["event"]["id"]])[0]
    attempts = stored["watchkeeper"]["report"]["deliveries"]
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(1, False), (2, True)]
    assert len(sink.messages) == 1 and _pdf_attachments(sink.messages[0])
    assert scheduler.run_pending(now + 120) == []          # the period was claimed once
    store.close()


def test_a_period_not_yet_fired_is_not_run_early(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    scheduler = ReportScheduler(store, report_settings(_settings(free_port())))
    assert scheduler.run_pending(seed.utc(2026, 11, 16, 0)) == []   # 08:00 Beijing < 08:30
    store.close()


def test_the_webhook_receives_the_report_metadata(tmp_path):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = _settings(free_port(), email_to=[],
                             webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
        store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
        [doc] = ReportScheduler(store, report_settings(settings)).run_pending(
            seed.utc(2026, 11, 16, 1))
        store.close()
    finally:
        server.shutdown()
    assert received[0]["report"]["id"] == doc["event"]["id"]
    assert received[0]["report"]["sha256"] == doc["watchkeeper"]["report"]["sha256"]


def test_the_running_scheduler_catches_up_at_start_and_stops_cleanly(tmp_path, smtp):
    """run_forever as `watchkeeper scheduler` and `run` use it (APScheduler started, the
    missed period caught up at once, shut down when asked)."""
    sink, port = smtp
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    settings = report_settings({"smtp": {"host": "127.0.0.1", "port": port}, "schedules": [
        {"name": "every-minute", "type": "daily", "cron": "* * * * *",
         "email_to": ["duty@example.gov.cn"]}]})
    stop = threading.Event()
    thread = threading.Thread(target=ReportScheduler(store, settings).run_forever, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    store.refresh()
    [report] = store.search("reports", Query()).items
    assert report["watchkeeper"]["report"]["period"] == last_complete("daily", time.time()).label
    assert len(sink.messages) == 1
    store.close()


def test_a_claim_lost_with_its_process_is_taken_over_once_stale(tmp_path):
    from watchkeeper.store.reports import claim_run
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    scheduler = ReportScheduler(store, report_settings(
        {**_settings(free_port(), email_to=[]), "claim_timeout_seconds": 600}))
    now = seed.utc(2026, 11, 16, 1)
    label = "2026-11-15"
    assert claim_run(store, "daily-city-a", label, "died-while-generating", now - 60)
    assert scheduler.run_pending(now) == []                    # fresh claim: its owner works
    [doc] = scheduler.run_pending(now + 601)                   # stale, no report: taken over
    assert doc["watchkeeper"]["report"]["period"] == label
    assert scheduler.run_pending(now + 5000) == []             # made: never again
    store.close()


def _certificate(tmp_path) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1 (openssl CLI): (cert PEM path, key PEM path)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_email_over_starttls_verifies_the_server_against_the_configured_ca(tmp_path):
    import ssl
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            tls_context=server_tls, require_starttls=True)
    controller.start()
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    try:
        settings = _settings(controller.port)
        settings["smtp"].update(tls="starttls", ca_file=cert)
        [doc] = ReportScheduler(store, report_settings(settings)).run_pending(
            seed.utc(2026, 11, 16, 1))
        assert [d["ok"] for d in doc["watchkeeper"]["report"]["deliveries"]] == [True]
        assert len(sink.messages) == 1 and _pdf_attachments(sink.messages[0])

        # Without the CA the server's certificate is refused: recorded, not sent.
        settings["smtp"]["ca_file"] = None
        settings["schedules"][0]["name"] = "daily-untrusted"
        [doc] = ReportScheduler(store, report_settings(settings)).run_pending(
            seed.utc(2026, 11, 16, 1))
        [attempt] = doc["watchkeeper"]["report"]["deliveries"]
        assert not attempt["ok"] and "CERTIFICATE_VERIFY_FAILED" in attempt["error"]
        assert len(sink.messages) == 1
    finally:
        controller.stop()
        store.close()
