"""The wall screen's 24 h statistics (`GET /api/v1/stats/alerts`) on SQLite at 10^5 alerts
(issues 10/15): the five store reads the route made before (total, three terms, date
histogram) against the one Store.summarise it makes now, and the posture's five 24 h
aggregations asked one at a time (base.Store.summarise) against SQLite's one pass, side by
side on the same store; then the route itself over HTTP as the screen asks it.

    .venv/bin/python bench/stats_route.py [--alerts 100000] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.web import fill, serving  # noqa: E402
from watchkeeper.schema import ALERT_STATUSES, CATEGORIES, SEVERITY_NAMES  # noqa: E402
from watchkeeper.store import open_store  # noqa: E402
from watchkeeper.store.base import Query, Store  # noqa: E402

TERMS = {"by_category": ("watchkeeper.alert.category", len(CATEGORIES)),
         "by_severity": ("event.severity", len(SEVERITY_NAMES)),
         "by_status": ("watchkeeper.alert.status", len(ALERT_STATUSES))}


def five_reads(store, query: Query) -> int:
    """What the route asked before this change: five scans on SQLite."""
    total = store.search("alerts", query).total
    for field_name, size in TERMS.values():
        store.terms("alerts", field_name, query, size)
    store.date_histogram("alerts", 3600, query)
    return total


def one_summary(store, query: Query) -> int:
    got = store.summarise("alerts", query, TERMS,
                          {"per_status": ("watchkeeper.alert.status", 3600)})
    return sum(g.count for g in got["per_status"])


POSTURE_DAY = ({"sources": ("source.ip", 10), "targets": ("destination.ip", 10),
                "sites": ("labels.site", 10)},
               {"by_severity": ("event.severity", 3600),
                "by_category": ("watchkeeper.alert.category", 3600)})   # api/routes/posture.py


def timed(call, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def over_http(url: str, runs: int) -> list[float]:
    with serving(url, 19000 + os.getpid() % 500) as (base, key):
        params = {"since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(time.time() - 86400)), "interval": 3600}
        headers = {"X-API-Key": key}
        return timed(lambda: httpx.get(f"{base}/api/v1/stats/alerts", params=params,
                                       headers=headers, timeout=60).raise_for_status(), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wk-bench-stats-") as tmp:
        url = f"sqlite:///{tmp}/wk.db"
        fill(url, args.alerts)
        store = open_store(url)
        query = Query(since=time.time() - 86400, limit=1)
        assert five_reads(store, query) == one_summary(store, query)
        rows = [("five reads (before)", timed(lambda: five_reads(store, query), args.runs)),
                ("one summarise (now)", timed(lambda: one_summary(store, query), args.runs)),
                ("posture 24 h, one at a time", timed(  # base.Store.summarise (before)
                    lambda: Store.summarise(store, "alerts", query, *POSTURE_DAY), args.runs)),
                ("posture 24 h, one pass (now)", timed(
                    lambda: store.summarise("alerts", query, *POSTURE_DAY), args.runs))]
        assert Store.summarise(store, "alerts", query, *POSTURE_DAY) == store.summarise(
            "alerts", query, *POSTURE_DAY)
        store.close()
        rows.append(("GET /api/v1/stats/alerts (now)", over_http(url, args.runs)))
        print(f"load average {os.getloadavg()[0]:.1f}; {args.alerts:,} alerts, "
              f"{args.runs} runs, median (max) seconds:")
        for label, values in rows:
            print(f"  {label:32} {statistics.median(values):6.2f} ({max(values):.2f})")
        medians = [statistics.median(values) for _label, values in rows]
        print(f"  ratio before/now: stats {medians[0] / medians[1]:.1f}x, "
              f"posture {medians[2] / medians[3]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
