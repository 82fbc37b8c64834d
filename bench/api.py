"""Latency of the analysts' API with N stored alerts (issue 15): alert search (filters +
paging), posture, and the live feed's delivery delay; SQLite and/or Elasticsearch.

    .venv/bin/python bench/api.py --alerts 1000000 --backends elasticsearch \
        --es 'http://127.0.0.1:19200' --prefix wkbench-api-1m --keep

N alerts over the last 30 days across the demo sites (bench/posture.py's generator: random
severity, status, category, asset criticality and MLPS level), written once through the store
(not timed; an existing `--prefix` index / `--sqlite` file that already holds N is reused).
Then the real app is served by uvicorn on a local port and asked over HTTP (an analyst bound
to the root, the worst case: every alert visible):
- search: 5 filter sets (severity+status+7 days, site+category, ip, free text, severity
  order), each its first page of 50 and the next two pages by cursor;
- posture: GET /api/v1/posture, the whole screen answer, uncached (first request reported
  apart: it computes the 30-day trend that is then kept 5 minutes per scope);
- the same searches and posture again while alerts are written (2 a second, through the
  store), which defeats the store's caches as production's arriving alerts do; posture
  then also with the shipped answer cache (feed.posture_cache_seconds = 5, per scope);
- feed: GET /api/v1/stream open; alerts written one by one; time from the store's write
  returning to the `alert` event arriving on the stream.
Side by side, the floor under each: the same search / the heaviest single aggregation asked
of the store object directly (no HTTP, no FastAPI), as a ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
import warnings

import httpx
import uvicorn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from api import create_app  # noqa: E402
from api.posture_cache import PostureCache  # noqa: E402
from bench.posture import INVENTORY, alerts  # noqa: E402
from watchkeeper import posture, timeutil  # noqa: E402
from watchkeeper.config import AuthSettings  # noqa: E402
from watchkeeper.identity import Principal, issue_access_token  # noqa: E402
from watchkeeper.store import open_store  # noqa: E402
from watchkeeper.store.base import Query, stamp_ingested  # noqa: E402
from watchkeeper.store.inventory import seed_from_file  # noqa: E402

warnings.simplefilter("ignore")
SECRET = "bench-only-" + "ap1-bench-" * 4
SEARCHES = [  # (API query string, the same as a store Query) — {week} is now - 7 days
    ("severity=3&severity=4&status=new&since={week}",
     lambda week: Query(since=week, terms={"event.severity": [3, 4],
                                           "watchkeeper.alert.status": ["new"]})),
    ("site=county-a1&category=scan",
     lambda week: Query(terms={"labels.site": ["county-a1"],
                               "watchkeeper.alert.category": ["scan"]})),
    ("ip=203.0.7.7", lambda week: Query(ip="203.0.7.7")),
    ("q=bench", lambda week: Query(q="bench")),
    ("sort=severity&status=new", lambda week: Query(sort="event.severity",
                                                    terms={"watchkeeper.alert.status": ["new"]})),
]


def percentiles(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1)}


def load(store, n: int) -> float:
    """Write N alerts unless the store already holds them; seconds spent (0: reused).
    On Elasticsearch they are new documents: plain index operations with the store's own
    stamps (the store's upsert reads each stored alert first, for re-raised ones: 4x slower
    to load, and loading is not what is measured)."""
    held = store.search("alerts", Query(limit=1)).total
    if held >= n:
        return 0.0
    began, batch, now = time.perf_counter(), [], time.time()
    write = _es_index if hasattr(store, "es") else \
        (lambda s, docs: s.bulk_upsert("alerts", docs))
    for doc in alerts(n, now):
        batch.append(doc)
        if len(batch) == 5000:
            write(store, batch)
            batch = []
    write(store, batch)
    store.refresh()
    return time.perf_counter() - began


def _es_index(store, docs: list[dict]) -> None:
    from elasticsearch.helpers import bulk
    index = store.index_for("alerts")
    bulk(store.es, ({"_op_type": "index", "_index": index, "_id": d["event"]["id"],
                     "_source": d} for d in stamp_ingested("alerts", docs)),
         chunk_size=5000, refresh=False)


class Server:
    """The app under uvicorn on a free local port, in a thread."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def timed(client: httpx.Client, path: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    response = client.get(path)
    took = (time.perf_counter() - t0) * 1000
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return took, response.json()


def bench_search(client: httpx.Client, store, rounds: int) -> tuple[dict, dict]:
    week = time.time() - 7 * 86400
    api_ms, store_ms = [], []
    for _ in range(rounds):
        for params, as_query in SEARCHES:
            path = f"/api/v1/alerts?limit=50&{params.format(week=timeutil.format(week))}"
            cursor = None
            for _page in range(3):
                took, body = timed(client, path + (f"&cursor={cursor}" if cursor else ""))
                api_ms.append(took)
                t0 = time.perf_counter()
                store.search("alerts", Query(**{**as_query(week).__dict__, "limit": 50,
                                                "cursor": cursor}))
                store_ms.append((time.perf_counter() - t0) * 1000)
                cursor = body["next_cursor"]
                if not cursor:
                    break
    return percentiles(api_ms), percentiles(store_ms)


def bench_posture(client: httpx.Client, store, requests: int) -> tuple[float, dict, dict, int]:
    first, body = timed(client, "/api/v1/posture")
    api_ms, floor_ms = [], []
    for _ in range(requests):
        api_ms.append(timed(client, "/api/v1/posture")[0])
        now = time.time()
        t0 = time.perf_counter()    # the heaviest single aggregation: open alerts, site x hour
        store.group_counts("alerts", ["labels.site"], Query(
            since=now - 86400 * posture.OPEN_WINDOW_DAYS, until=now,
            terms={"watchkeeper.alert.status": posture.OPEN_STATUSES}), 3600,
            "watchkeeper.alert.weight_points")
        floor_ms.append((time.perf_counter() - t0) * 1000)
    return first, percentiles(api_ms), percentiles(floor_ms), body["open_alerts"]


class LiveIngest:
    """Alerts written through the store while requests run (`rate` a second): every write
    and refresh invalidates the store's caches, as alerts arriving in production do."""

    def __init__(self, store, rate: float):
        self.store, self.rate, self.stop = store, rate, threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        for doc in alerts(10**9, time.time(), seed=5):
            if self.stop.wait(1 / self.rate):
                return
            doc["event"]["id"] = f"live-{uuid.uuid4().hex}"
            doc["@timestamp"] = timeutil.format(time.time())
            self.store.bulk_upsert("alerts", [doc])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def bench_feed(base: str, token: str, store, count: int) -> dict:
    """Write `count` alerts one by one with the stream open; stored -> delivered, each."""
    arrived: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", f"{base}/api/v1/stream", headers=headers, timeout=None) as r:
            event = None
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "alert":
                    arrived.setdefault(json.loads(line[6:])["event"]["id"], time.time())

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(2.5)                                  # connected, first posture tick sent
    delays = []
    for i, doc in enumerate(alerts(count, time.time(), seed=int(time.time()))):
        doc["event"]["id"] = f"feed-{uuid.uuid4().hex}"
        doc["@timestamp"] = timeutil.format(time.time())
        doc["watchkeeper"]["alert"]["status"] = "new"
        store.bulk_upsert("alerts", [doc])
        stored = time.time()
        deadline = stored + 15
        while doc["event"]["id"] not in arrived and time.time() < deadline:
            time.sleep(0.01)
        delays.append((arrived.get(doc["event"]["id"], float("inf")) - stored) * 1000)
        time.sleep(0.37 * (i % 3))                   # not in step with the poll
    stop.set()
    return {**percentiles(delays), "missed": sum(d == float("inf") for d in delays)}


def run(url: str, n: int, requests: int, rounds: int, feed: int, keep: bool,
        cache_seconds: float = 5.0) -> dict:
    store = open_store(url)
    try:
        if not store.search("sites", Query(limit=1)).items:
            seed_from_file(store, INVENTORY)
        loaded = load(store, n)
        held = store.search("alerts", Query(limit=1)).total
        app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET))
        app.state.access.accounts.ids.put_user({
            "name": "bench", "role": "analyst", "site": "/", "disabled": False,
            "password_hash": "x", "failures": 0, "locked_until": 0.0}, time.time())
        token = issue_access_token(Principal("bench", "analyst", "/"), SECRET, 3600)
        with Server(app) as base, httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
            search, search_floor = bench_search(c, store, rounds)
            first, post, post_floor, open_alerts = bench_posture(c, store, requests)
            with LiveIngest(store, 2.0):
                live_search, _ = bench_search(c, store, max(1, rounds // 2))
                _, live_posture, _, _ = bench_posture(c, store, requests)
                # the shipped setting (feed.posture_cache_seconds): answers kept 5 s per scope
                app.state.posture_cache = PostureCache(cache_seconds)
                _, cached_posture, _, _ = bench_posture(c, store, requests)
                app.state.posture_cache = PostureCache(0)
            delay = bench_feed(base, token, store, feed) if feed else None
        return {"alerts": held, "load_s": round(loaded, 1), "search": search,
                "search_store_floor": search_floor,
                "search_ratio": round(search["p50_ms"] / search_floor["p50_ms"], 2),
                "posture_first_ms": round(first, 1), "posture": post,
                "posture_floor_one_aggregation": post_floor,
                "posture_ratio": round(post["p50_ms"] / post_floor["p50_ms"], 2),
                "open_alerts": open_alerts, "feed_delay": delay,
                "with_live_ingest_2_per_s": {
                    "search": live_search, "posture_uncached": live_posture,
                    f"posture_cache_{cache_seconds:g}s": cached_posture}}
    finally:
        if not keep and url.startswith("http"):
            store.es.indices.delete(index=f"{store.prefix}-*", ignore_unavailable=True,
                                    allow_no_indices=True)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="posture requests")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the 5 searches")
    parser.add_argument("--feed", type=int, default=20, help="alerts through the feed")
    parser.add_argument("--backends", nargs="+", default=["sqlite"],
                        choices=["sqlite", "elasticsearch"])
    parser.add_argument("--es", default="http://127.0.0.1:19200")
    parser.add_argument("--prefix", help="ES index prefix (default: a new one, deleted)")
    parser.add_argument("--sqlite", help="SQLite file (default: a new temp one, deleted)")
    parser.add_argument("--keep", action="store_true", help="keep the ES indices")
    args = parser.parse_args()
    from bench.machine import machine
    print("machine:", json.dumps(machine(args.es if "elasticsearch" in args.backends else None,
                                         False)))
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other engineers)")
    for backend in args.backends:
        tmp = None
        if backend == "sqlite":
            path = args.sqlite
            if path is None:
                import tempfile
                tmp = tempfile.TemporaryDirectory()
                path = f"{tmp.name}/wk.db"
            url = f"sqlite:///{path}"
        else:
            url = f"{args.es}?prefix={args.prefix or 'wkbench-api-' + uuid.uuid4().hex[:8]}"
        result = run(url, args.alerts, args.requests, args.rounds, args.feed,
                     args.keep or bool(args.prefix))
        print(f"{backend}: {json.dumps(result)}", flush=True)
        if tmp:
            tmp.cleanup()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
