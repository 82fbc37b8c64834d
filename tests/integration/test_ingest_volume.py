"""`ingest` keeps every event at volume, on both buses and both stores, and rides out its
backends failing mid-run (issue 9).

The capture is generated: N single-packet UDP flows, so the store must end up with exactly N
flow events (ids are deterministic, so "exactly N distinct ids" is "each exactly once").
N is above 4 partitions x the embedded bus's 10k trim batch: before the fix, the embedded
bus trimmed events before the indexer's group existed and `ingest` kept 41 of ~76k.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time

import httpx
import pytest

from watchkeeper.store.sqlite import SqliteStore

from .conftest import ROOT, WATCHKEEPER, run_cli
from .synthetic_pcap import write_flows_pcap

FLOWS = 60_000
SERVICES = str(ROOT / "deploy" / "local" / "services")


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("volume") / "flows.pcap"
    write_flows_pcap(str(path), FLOWS)
    return str(path)


def stored_flow_ids(options: list[str], env: dict | None = None) -> list[str]:
    listed = run_cli("events", "--json", "--dataset", "watchkeeper.flow", "--limit",
                     str(3 * FLOWS), *options, env=env)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line)["event"]["id"] for line in listed.stdout.splitlines()]


def assert_each_flow_once(options: list[str], env: dict | None = None) -> None:
    ids = stored_flow_ids(options, env)
    assert len(ids) == FLOWS, f"{len(ids)} flow events stored, {FLOWS} in the capture"
    assert len(set(ids)) == FLOWS


def start_ingest(capture: str, options: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([*WATCHKEEPER, "ingest", capture, *options], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return err


def services(*args: str) -> None:
    done = subprocess.run([SERVICES, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_embedded_bus_and_sqlite_keep_every_event(capture, tmp_path):
    options = ["--bus", "memory://", "--store", f"sqlite:///{tmp_path}/wk.db"]
    ingest = run_cli("ingest", capture, *options, timeout=900)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert_each_flow_once(options)


def test_a_stalled_ingest_ends_with_one_clear_line(tmp_path):
    """Another process holds the SQLite store's write lock for the whole run: nothing can be
    stored, so after the configured stall time `ingest` says so in one line and exits 1."""
    pcap = tmp_path / "few.pcap"
    write_flows_pcap(str(pcap), 2000)
    db = tmp_path / "wk.db"
    SqliteStore(f"sqlite:///{db}").close()          # the schema exists; only writes block
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = run_cli("ingest", str(pcap), "--store", f"sqlite:///{db}",
                       env={"WATCHKEEPER_INGEST_STALL_SECONDS": "5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("watchkeeper ingest: failed:") and "no progress for 5s" in last


def _es_event_count(es: str, prefix: str) -> int:
    try:
        body = httpx.get(f"{es}/{prefix}-events-*/_count", timeout=5).json()
        return int(body.get("count", 0))
    except (httpx.HTTPError, ValueError):
        return 0


def test_elasticsearch_down_for_a_minute_mid_ingest(capture, kafka_url, es_url, unique):
    """Kafka bus, Elasticsearch store: ES stops once indexing has begun and comes back 60 s
    later; the indexer resumes by itself and every event is stored exactly once."""
    prefix = f"wktest-{unique}"
    options = ["--bus", kafka_url, "--store", f"{es_url}/?prefix={prefix}"]
    env = {"WATCHKEEPER_NAMESPACE": f"t{unique}", "WATCHKEEPER_INGEST_STALL_SECONDS": "600"}
    proc = start_ingest(capture, options, env)
    try:
        deadline = time.monotonic() + 600
        while _es_event_count(es_url, prefix) == 0:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "indexing never started"
            time.sleep(0.5)
        services("stop", "elasticsearch")
        time.sleep(60)
        services("start")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        services("start")     # whatever happened, leave the node running for later tests
    assert_each_flow_once(options, env)


def test_kafka_broker_restarted_mid_ingest(capture, kafka_url, tmp_path, unique):
    """Kafka bus, SQLite store: the broker restarts while the file is being published."""
    options = ["--bus", kafka_url, "--store", f"sqlite:///{tmp_path}/wk.db"]
    env = {"WATCHKEEPER_NAMESPACE": f"t{unique}", "WATCHKEEPER_INGEST_STALL_SECONDS": "600"}
    proc = start_ingest(capture, options, env)
    restarted = threading.Event()

    def restart_broker() -> None:
        time.sleep(8)     # past the group joins, inside the first rounds of publishing
        if proc.poll() is None:
            services("stop", "kafka")
            services("start")
            restarted.set()
    restarter = threading.Thread(target=restart_broker)
    restarter.start()
    try:
        finish(proc)
    finally:
        restarter.join()
        if proc.poll() is None:
            proc.kill()
        services("start")
    assert restarted.is_set(), "ingest ended before the broker could be restarted"
    assert_each_flow_once(options)
