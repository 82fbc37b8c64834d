"""Page weight and first render of the web pages (issue 10's budget: JavaScript served
<= 1 MiB compressed; the wall screen's first render <= 2 s with 10^5 stored alerts).

    .venv/bin/python bench/web.py [--alerts 100000] [--runs 5]

Fills a temp SQLite store with N synthetic alerts spread over the last 24 h, starts
`watchkeeper serve` on it, sums the compressed bytes of every script and style each page loads
(as served: gzip), then opens /screen with a viewer key in Debian's Chromium `runs` times in
fresh browser contexts and times navigation start -> the panels showing the stored total.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watchkeeper import timeutil  # noqa: E402
from watchkeeper.store import open_store  # noqa: E402

CATEGORIES = ["scan", "brute_force", "dos", "beaconing", "dns_tunneling", "exfiltration",
              "lateral_movement", "ioc_match"]


def fill(url: str, count: int) -> None:
    rng = random.Random(10)
    store = open_store(url)
    now = time.time()
    batch = []
    for n in range(count):
        at = timeutil.format(now - rng.uniform(60, 86000))
        source, target = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", \
            f"10.20.{rng.randint(0, 15)}.{rng.randint(1, 254)}"
        batch.append({
            "@timestamp": at,
            "event": {"id": f"bench-{n}", "kind": "alert", "severity": rng.randint(1, 4),
                      "risk_score": 50.0, "dataset": "watchkeeper.alert", "created": at},
            "rule": {"id": "bench", "name": "bench"}, "message": f"bench alert {n}",
            "source": {"ip": source}, "destination": {"ip": target},
            "related": {"ip": [source, target]},
            "watchkeeper": {"alert": {"category": rng.choice(CATEGORIES), "detector": "bench",
                                      "status": "new", "count": 1, "evidence": []}},
        })
        if len(batch) == 5000:
            store.bulk_upsert("alerts", batch)
            batch = []
    if batch:
        store.bulk_upsert("alerts", batch)
    store.close()


def served_bytes(base: str, page: str) -> dict[str, int]:
    """Compressed bytes of each script and style the page's HTML names (as the server sends)."""
    html = httpx.get(f"{base}{page}", headers={"Accept-Encoding": "gzip"}).text
    sizes = {}
    for asset in sorted(set(re.findall(r'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', html))):
        with httpx.stream("GET", base + asset, headers={"Accept-Encoding": "gzip"}) as answer:
            answer.read()
            sizes[asset] = answer.num_bytes_downloaded
    return sizes


def first_renders(base: str, key: str, runs: int) -> list[tuple[float, float]]:
    """(first data, every panel) seconds from navigation start, per fresh browser context:
    the screen marks each read it has drawn in `data-loaded` (hour = last hour's counts,
    day = the 24 h aggregates)."""
    from playwright.sync_api import sync_playwright
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            page = context.new_page()
            page.goto(f"{base}/screen?key={key}", wait_until="commit")
            page.wait_for_selector(".wall[data-loaded~=hour]", timeout=60000)
            first = page.evaluate("performance.now()") / 1000
            page.wait_for_selector(".wall[data-loaded~=day]", timeout=60000)
            times.append((first, page.evaluate("performance.now()") / 1000))
            print_waterfall(page, first)
            context.close()
        browser.close()
    return times


def print_waterfall(page, first: float) -> None:
    """What the first render waited on: each script and API read, start -> end (s)."""
    entries = page.evaluate("performance.getEntriesByType('resource').map(e => "
                            "[e.name, e.startTime / 1000, e.responseEnd / 1000])")
    rows = [f"{re.sub(r'^https?://[^/]+', '', name).split('?')[0][:40]} "
            f"{start:.2f}-{end:.2f}" for name, start, end in entries
            if "/api/" in name or "/assets/" in name or "/health" in name]
    print(f"  first data at {first:.2f} s; " + "; ".join(rows))



@contextmanager
def serving(url: str, port: int) -> Iterator[tuple[str, str]]:
    """`watchkeeper serve` on `url` (what users run), and a viewer key for it: (base, key)."""
    cli = [sys.executable, "-m", "app.cli"]
    key = subprocess.run([*cli, "keys", "create", "bench", "--role", "viewer", "--store", url],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()[-1]
    server = subprocess.Popen([*cli, "serve", "--store", url, "--port", str(port)], cwd=ROOT,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield base, key
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wk-bench-web-") as tmp:
        url = f"sqlite:///{tmp}/wk.db"
        started = time.monotonic()
        fill(url, args.alerts)
        print(f"stored {args.alerts:,} alerts in {time.monotonic() - started:.1f} s")
        with serving(url, 18000 + os.getpid() % 1000) as (base, key):
            for page in ("/console", "/screen"):
                sizes = served_bytes(base, page)
                js = sum(v for k, v in sizes.items() if k.endswith(".js"))
                print(f"{page}: JS {js / 1024:.1f} KiB gzip, CSS "
                      f"{sum(sizes.values()) / 1024 - js / 1024:.1f} KiB ({len(sizes)} files)")
            times = first_renders(base, key, args.runs)
            for label, values in (("first data (last hour's counts)", [t[0] for t in times]),
                                  ("every panel (24 h aggregates)", [t[1] for t in times])):
                print(f"/screen {label}, {args.alerts:,} alerts, {args.runs} runs: "
                      f"median {statistics.median(values):.2f} s, max {max(values):.2f} s")
            started = time.monotonic()
            httpx.get(f"{base}/api/v1/stats/alerts", headers={"X-API-Key": key}, timeout=60,
                      params={"since": timeutil.format(time.time() - 86400), "interval": 3600})
            print(f"GET /api/v1/stats/alerts (24 h) alone: {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
