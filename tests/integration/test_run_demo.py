"""`watchkeeper run --demo` (what `make run` starts): /health answers and the demo scan alert
is listed within 90 s of starting."""
from __future__ import annotations

import re
import time

import httpx

from .conftest import ANY_PORTS, demo_login, free_port, wait_http


def test_all_in_one_serves_the_demo_alert_within_90s(server, tmp_path):
    port = free_port()
    started = time.monotonic()
    proc = server("run", "--demo", "--port", str(port), *ANY_PORTS, "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", deadline_s=90, process=proc)
    headers = demo_login(proc, base)
    assert httpx.get(f"{base}/api/v1/alerts", timeout=5).status_code == 401
    alerts = {}
    while time.monotonic() - started < 90:
        alerts = httpx.get(f"{base}/api/v1/alerts", params={"category": "scan"},
                           headers=headers, timeout=5).json()
        if alerts["total"]:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    assert alerts.get("total") == 1, f"no demo alert after {elapsed:.0f}s"
    alert = alerts["items"][0]
    assert alert["watchkeeper"]["alert"]["detector"] == "scan"
    flows = httpx.get(f"{base}/api/v1/events", params={"dataset": "watchkeeper.flow"},
                      headers=headers).json()
    assert flows["total"] > 100


def test_metrics_count_the_pipeline(server, tmp_path):
    port = free_port()
    proc = server("run", "--demo", "--port", str(port), *ANY_PORTS, "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", deadline_s=90, process=proc)
    deadline = time.monotonic() + 90
    text = ""

    def count(series: str) -> float:
        # A stage's series exist from its first use (at 0): the value says it moved.
        match = re.search(rf"^watchkeeper_records_total{{{re.escape(series)}}} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    while time.monotonic() < deadline:
        text = httpx.get(f"{base}/metrics/", timeout=5).text
        if count('outcome="written",stage="index"') > 0 and \
                count('outcome="accepted",stage="demo"') > 0:
            break
        time.sleep(0.5)
    assert count('outcome="accepted",stage="demo"') > 0
    assert count('outcome="written",stage="index"') > 0
