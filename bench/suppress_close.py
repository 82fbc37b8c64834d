"""Seconds for a new suppression rule to close N stored open alerts (retroactive close),
on SQLite and on Elasticsearch, each change audited.

    .venv/bin/python bench/suppress_close.py [--alerts 50] [--es http://127.0.0.1:19200]

Uses a temporary SQLite file and a uniquely prefixed set of Elasticsearch indices (deleted after).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchkeeper.documents import AlertSpec, alert_document  # noqa: E402
from watchkeeper.store.elastic import ElasticStore  # noqa: E402
from watchkeeper.store.sqlite import SqliteStore  # noqa: E402
from watchkeeper.store.suppressions import create_rule  # noqa: E402

from bench.machine import machine, machine_line  # noqa: E402

NOW = 1_767_225_600.0


def alerts(n: int) -> list[dict]:
    return [alert_document(AlertSpec(
        detector="scan", detector_version="1", category="scan", rule_id="scan.rule",
        rule_name="scan", severity=2, message=f"alert {i}", entity=f"e{i}",
        first_seen=NOW - 600 + i, last_seen=NOW - 500 + i, source_ip="10.10.1.50"),
        created=NOW - 400) for i in range(n)]


def timed(store, n: int) -> tuple[int, float]:
    store.bulk_upsert("alerts", alerts(n))
    store.refresh()
    started = time.perf_counter()
    made = create_rule(store, {"source_cidr": "10.10.1.50/32", "reason": "bench"}, "bench", NOW)
    return made.closed, time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=50)
    ap.add_argument("--es", default="http://127.0.0.1:19200")
    args = ap.parse_args()
    print(machine_line(machine(args.es, kafka=False)))
    with tempfile.TemporaryDirectory(prefix="wksup-") as tmp:
        sqlite = SqliteStore(f"sqlite:///{tmp}/bench.db")
        closed, seconds = timed(sqlite, args.alerts)
        print(f"sqlite         closed {closed:6} in {seconds:7.2f} s")
        sqlite.close()
    elastic = ElasticStore(args.es, prefix=f"wkbench-sup-{uuid.uuid4().hex[:8]}")
    try:
        closed, seconds = timed(elastic, args.alerts)
        print(f"elasticsearch  closed {closed:6} in {seconds:7.2f} s")
    finally:
        elastic.es.indices.delete(index=f"{elastic.prefix}-*", ignore_unavailable=True,
                                  allow_no_indices=True)
        elastic.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
