"""bench/pipeline.py `processes` mode: Kafka -> detectors -> ES with every stage its own
process, started by `watchkeeper supervise` (the path a user runs for a local multi-process
deployment). The events are published before the stages start; the rate is taken from the
first stored event to the last (process start-up and group joins are reported apart), read
once a second from the events indices' indexing counter, which needs no refresh: counting
the documents instead made Elasticsearch refresh the events index every second (a new
segment, then merges), work the raw-bulk anchor is not asked to do. Once the counter reaches
N, the events are counted once, refreshed, to check that N are stored."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def indexed(store) -> int:
    """Index operations on the events indices so far: visible without a refresh (a retried
    event counts twice, hence the refreshed count at the end)."""
    stats = store.es.indices.stats(index=store.index_for("events"), metric="indexing",
                                   expand_wildcards="open")
    return stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0)


def _count(store, kind: str) -> int:
    store.refresh(kind)
    return store.es.count(index=store.index_for(kind), ignore_unavailable=True,
                          allow_no_indices=True)["count"]


def mode_processes(n: int, names, bus_url: str, store, store_url: str, processes: str,
                   deadline_s: float = 600.0) -> dict:
    env = {**os.environ, "WATCHKEEPER_NAMESPACE": names.namespace}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "supervise", "--bus", bus_url,
                             "--store", store_url, "--processes", processes],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first_at = first_count = None
    stored = 0
    try:
        while stored < n:
            if time.perf_counter() - started > deadline_s:
                raise SystemExit(f"processes: {stored} of {n} events stored in {deadline_s} s")
            if proc.poll() is not None:
                raise SystemExit(f"processes: supervise exited with {proc.returncode}")
            time.sleep(1.0)
            stored = indexed(store)
            if stored and first_at is None:
                first_at, first_count = time.perf_counter(), stored
        done_at = time.perf_counter()
        while (stored := _count(store, "events")) < n:      # a retried bulk counted twice
            if time.perf_counter() - started > deadline_s:
                raise SystemExit(f"processes: {stored} of {n} events stored in {deadline_s} s")
            time.sleep(1.0)
            done_at = time.perf_counter()       # the rate never counts an event not stored
        time.sleep(3)     # alerts trail the last event by a policy step and an index step
        alerts = _count(store, "alerts")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    seconds = done_at - first_at
    return {"events": n, "processes": processes, "events_per_s": (n - first_count) / seconds
            if seconds > 0 else float("inf"), "seconds": seconds,
            "startup_s": first_at - started, "alerts_stored": alerts, "stored": stored}
