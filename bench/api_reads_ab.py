"""Side by side in one run (issue 15): the uncached posture answer and the alert searches on
Elasticsearch with this branch's aggregation shapes (nested terms -> date_histogram groups,
`execution_hint: map` on address fields) and with the previous ones (paged composite groups,
global ordinals), alternating in blocks while alerts are written (2 a second), so both see
the same machine load and the same refreshes.

    .venv/bin/python bench/api_reads_ab.py --prefix wkbench-apiperf8-1m --requests 120

Needs an index already loaded by bench/api.py (`--prefix ... --alerts N`); only reads it and
adds the live alerts, as bench/api.py does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from api import create_app  # noqa: E402
from api.posture_cache import PostureCache  # noqa: E402
from bench.api import SECRET, SEARCHES, LiveIngest, Server, percentiles, timed  # noqa: E402
from watchkeeper import timeutil  # noqa: E402
from watchkeeper.config import AuthSettings  # noqa: E402
from watchkeeper.identity import Principal, issue_access_token  # noqa: E402
from watchkeeper.store import elastic_reads, open_store  # noqa: E402

SHAPES = {   # name -> (group_counts may nest, fields counted by hashing values)
    "now": (elastic_reads.nestable, elastic_reads.IP_FIELDS),
    "before": (lambda fields: False, frozenset()),
}


def spread(ms: list[float]) -> dict:
    """p50/p99 as bench/api.py, and p90: about one posture in ten follows a refresh that
    dropped Elasticsearch's request cache (2 writes a second), so p90-p99 is the uncached
    cost and p50 mostly the cached one."""
    ordered = sorted(ms)
    return {**percentiles(ms), "p90_ms": round(ordered[int(len(ordered) * 0.9)], 1)}


def use(shape: str) -> None:
    elastic_reads.nestable, elastic_reads.IP_FIELDS = SHAPES[shape]


def run(url: str, requests: int, block: int) -> dict:
    store = open_store(url)
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET))
    app.state.posture_cache = PostureCache(0)
    app.state.access.accounts.ids.put_user({
        "name": "bench", "role": "analyst", "site": "/", "disabled": False,
        "password_hash": "x", "failures": 0, "locked_until": 0.0}, time.time())
    token = issue_access_token(Principal("bench", "analyst", "/"), SECRET, 3600)
    posture_ms = {shape: [] for shape in SHAPES}
    search_ms = {shape: [] for shape in SHAPES}
    week = timeutil.format(time.time() - 7 * 86400)
    with Server(app) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        timed(c, "/api/v1/posture")                 # the 30-day trend, kept 5 minutes
        with LiveIngest(store, 2.0):
            for i in range(requests // block):
                for shape in (SHAPES if i % 2 == 0 else reversed(list(SHAPES))):
                    use(shape)
                    for _ in range(block):
                        posture_ms[shape].append(timed(c, "/api/v1/posture")[0])
                    for params, _query in SEARCHES:
                        path = f"/api/v1/alerts?limit=50&{params.format(week=week)}"
                        search_ms[shape].append(timed(c, path)[0])
    store.close()
    return {shape: {"posture_uncached": spread(posture_ms[shape]),
                    "search_first_pages": spread(search_ms[shape])} for shape in SHAPES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es", default="http://127.0.0.1:19200")
    parser.add_argument("--prefix", required=True, help="an index loaded by bench/api.py")
    parser.add_argument("--requests", type=int, default=120, help="posture requests per shape")
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other engineers)")
    result = run(f"{args.es}?prefix={args.prefix}", args.requests, args.block)
    print(json.dumps(result))
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
