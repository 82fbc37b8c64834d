"""Time a monthly compliance report over N alerts, the way an operator runs it.

    .venv/bin/python bench/report_monthly.py --alerts 100000 [--store URL]

N alerts spread over November 2026 (Beijing time) across 3 sites, 6 categories, 4 severities
and 50 sources are written to the store (not timed), then `watchkeeper report monthly
--period 2026-11 --out F` runs as a subprocess and is timed whole (process start, imports,
every section's store aggregations, HTML, PDF, storing the report). Default store: a temp
SQLite file. For Elasticsearch pass `--store http://HOST:9200?prefix=wkbench-<id>` (deleted
at the end); 10^6 alerts there was not run on the shared development node.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.reports.seed import alert, utc  # noqa: E402
from watchkeeper.store import open_store  # noqa: E402

CATEGORIES = ["scan", "brute_force", "dos", "beaconing", "exfiltration", "ioc_match"]
SITES = {"city-a": "10.1", "county-a1": "10.2", "city-b": "10.3"}


def load(store, count: int, chunk: int = 5000) -> float:
    rng = random.Random(3)
    start, span = utc(2026, 10, 31, 16), 30 * 86400
    began = time.perf_counter()
    for first in range(0, count, chunk):
        docs = []
        for i in range(first, min(first + chunk, count)):
            site = rng.choice(list(SITES))
            docs.append(alert(start + span * i / count, rng.choice(CATEGORIES),
                              rng.randint(1, 4), site, f"203.0.113.{rng.randint(1, 50)}",
                              f"{SITES[site]}.0.{rng.randint(1, 200)}",
                              rng.choice(["new", "closed"])))
        store.bulk_upsert("alerts", docs)
    store.refresh()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/bench.db"
        store = open_store(url)
        loaded = load(store, args.alerts)
        print(f"loaded {args.alerts:,} alerts in {loaded:.1f} s (not timed below)")
        out = Path(tmp) / "monthly.pdf"
        command = [sys.executable, "-m", "app.cli", "report", "monthly",
                   "--period", "2026-11", "--store", url, "--out", str(out)]
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        took = time.perf_counter() - began
        print(f"watchkeeper report monthly: {took:.1f} s, PDF {out.stat().st_size:,} bytes")
        if hasattr(store, "es"):
            store.es.indices.delete(index=f"{store.prefix}-*", ignore_unavailable=True,
                                    allow_no_indices=True)
        store.close()


if __name__ == "__main__":
    main()
