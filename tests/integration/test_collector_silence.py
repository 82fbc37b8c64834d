"""A collector that was sending falls silent inside a running `watchkeeper run`: the
wk.collector.silent alert goes through the bus (alerting stage, indexer) into the store, once,
and is closed when the collector sends again (docs/detection-health.md)."""
from __future__ import annotations

import json
import socket
import time

from watchkeeper.store import Query
from watchkeeper.store.sqlite import SqliteStore

from .conftest import free_port, wait_http

RULE = "wk.collector.silent"


def _send_syslog(port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            line = f"<38>Dec  3 10:00:{i:02d} bastion sshd[811]: Accepted publickey for ops{i}"
            sock.sendto(line.encode(), ("127.0.0.1", port))


def _silence_alerts(db: str) -> list[dict]:
    store = SqliteStore(f"sqlite:///{db}")
    try:
        return store.search("alerts", Query(terms={"rule.id": [RULE]}, limit=10)).items
    finally:
        store.close()


def _wait(db: str, done, deadline_s: float = 60) -> list[dict]:
    end = time.monotonic() + deadline_s
    alerts: list[dict] = []
    while time.monotonic() < end:
        alerts = _silence_alerts(db)
        if done(alerts):
            return alerts
        time.sleep(0.3)
    raise AssertionError(f"not within {deadline_s} s: {alerts}")


def test_a_silent_syslog_collector_raises_one_alert_closed_when_it_returns(server, tmp_path):
    port, syslog_port = free_port(), free_port()
    db = str(tmp_path / "wk.db")
    config = tmp_path / "wk.yaml"
    config.write_text(json.dumps({"status_seconds": 1, "collector_silent_seconds": 3,
                                  "collector_check_seconds": 0.5, "observer": "sensor-t"}))
    proc = server("run", "--config", str(config), "--port", str(port),
                  "--syslog-port", str(syslog_port), "--netflow-port", "0",
                  "--store", f"sqlite:///{db}")
    wait_http(f"http://127.0.0.1:{port}/health", process=proc)
    _send_syslog(syslog_port, 5)
    # it sends, then stops: after 3 s without new input, one alert (and only one)
    alerts = _wait(db, lambda found: len(found) >= 1)
    time.sleep(3)                                  # several more checks: still one alert
    alerts = _silence_alerts(db)
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["observer"]["name"] == "sensor-t"
    assert alert["watchkeeper"]["collector"] == {"name": "syslog", "silence": "idle"}
    assert alert["watchkeeper"]["alert"]["status"] == "new"
    assert alert["event"]["severity"] == 3 and "syslog" in alert["message"]
    # the sender comes back: the alert is closed, by the system, with the reason audited
    _send_syslog(syslog_port, 2)
    closed = _wait(db, lambda found: any(a["watchkeeper"]["alert"]["status"] == "closed"
                                         for a in found if a["event"]["id"] ==
                                         alert["event"]["id"]))
    again = next(a for a in closed if a["event"]["id"] == alert["event"]["id"])
    assert again["watchkeeper"]["alert"]["verdict"] == "other"
