"""Latency of GET /api/v1/posture with N stored alerts (SQLite and/or Elasticsearch).

    .venv/bin/python bench/posture.py --alerts 100000 --backends sqlite elasticsearch

N alerts over the last 30 days across the sites of the demo inventory (random severity,
status, asset criticality and MLPS level), written once (not timed); then the posture is asked
for `--requests` times through the real app (in-process ASGI client, a root viewer): p50, p99.
The ES indices (prefix wkbench-posture-<id>) are deleted at the end.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from api import create_app  # noqa: E402
from watchkeeper.config import AuthSettings  # noqa: E402
from watchkeeper.documents import AlertSpec, alert_document  # noqa: E402
from watchkeeper.identity import Principal, issue_access_token  # noqa: E402
from watchkeeper.store import open_store  # noqa: E402
from watchkeeper.store.inventory import seed_from_file  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

SECRET = "bench-only-" + "p0sture-" * 4
INVENTORY = os.path.join(os.path.dirname(__file__), "..", "watchkeeper", "demo", "inventory.yaml")
SITES = ["county-a1", "county-a2", "county-b1", "county-b2", "county-c1", "county-c2", "city-a",
         "city-b", "dc-region"]
STATUSES = ["new", "new", "acknowledged", "investigating", "closed", "closed"]


def alerts(n: int, now: float, seed: int = 7):
    rng = random.Random(seed)
    for i in range(n):
        at = now - rng.random() * 30 * 86400
        spec = AlertSpec(detector="scan", detector_version="1", category=rng.choice(
            ["scan", "brute_force", "dos", "beaconing", "exfiltration"]), rule_id="r",
            rule_name="r", severity=rng.randint(1, 4), message=f"bench {i}", entity=f"e{i}",
            first_seen=at, last_seen=at + 5, source_ip=f"203.0.{rng.randint(0, 255)}.{i % 250}",
            destination_ip=f"10.{rng.randint(10, 32)}.{rng.randint(0, 255)}.{i % 250}")
        doc = alert_document(spec, created=at + 1)
        doc["labels"] = {"site": rng.choice(SITES)}
        doc["watchkeeper"]["alert"]["status"] = rng.choice(STATUSES)
        doc["watchkeeper"]["asset"] = {"destination": {"criticality": rng.randint(1, 5),
                                                       "mlps_level": rng.randint(1, 4)}}
        yield doc


def run(url: str, n: int, requests: int) -> dict:
    store = open_store(url)
    try:
        seed_from_file(store, INVENTORY)
        now, batch, started = time.time(), [], time.perf_counter()
        for doc in alerts(n, now):
            batch.append(doc)
            if len(batch) == 5000:
                store.bulk_upsert("alerts", batch)
                batch = []
        store.bulk_upsert("alerts", batch)
        store.refresh()
        loaded = time.perf_counter() - started
        app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET))
        app.state.access.accounts.ids.put_user({
            "name": "bench", "role": "viewer", "site": "/", "disabled": False,
            "password_hash": "x", "failures": 0, "locked_until": 0.0}, now)
        token = issue_access_token(Principal("bench", "viewer", "/"), SECRET, 3600)
        timings = []
        with TestClient(app) as client:
            for _ in range(requests):
                t0 = time.perf_counter()
                response = client.get("/api/v1/posture",
                                      headers={"Authorization": f"Bearer {token}"})
                timings.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.text
        timings.sort()
        return {"load_s": round(loaded, 1), "p50_ms": round(statistics.median(timings), 1),
                "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1),
                "open_alerts": response.json()["open_alerts"]}
    finally:
        if url.startswith("http"):
            store.es.indices.delete(index=f"{store.prefix}-*", ignore_unavailable=True,
                                    allow_no_indices=True)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--backends", nargs="+", default=["sqlite"],
                        choices=["sqlite", "elasticsearch"])
    parser.add_argument("--es", default="http://127.0.0.1:19200")
    args = parser.parse_args()
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/wk.db" if backend == "sqlite" else \
                f"{args.es}?prefix=wkbench-posture-{uuid.uuid4().hex[:8]}"
            result = run(url, args.alerts, args.requests)
        print(f"{backend}: {args.alerts} alerts, {args.requests} requests: {result}", flush=True)


if __name__ == "__main__":
    main()
