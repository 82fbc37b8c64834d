"""Elasticsearch's own CPU per document against the size of the `_bulk` requests.

    .venv/bin/python bench/es_bulk_size.py --es http://127.0.0.1:9200 [--events 300000]
        [--sizes 250,1000,2000,5000] [--repeat 2]

The same pre-serialised workload as bench/pipeline.py, POSTed from one connection
(bench/anchors.py's raw bulk) into a fresh index per run, then refreshed. Elasticsearch's
CPU is read from /proc for its process, so run it on the machine that hosts the node. It
answers whether our indexers' bulk size (documents per poll) costs the node CPU. The first
pass after a node starts includes the node's own warm-up: read the later passes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anchors import bulk_bodies, raw_bulk  # noqa: E402
from bench.machine import machine, machine_line  # noqa: E402
from bench.pipeline_workload import generate  # noqa: E402
from watchkeeper import codec  # noqa: E402


def elasticsearch_pid() -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"org.elasticsearch.bootstrap" in cmdline:
                return int(entry)
    raise SystemExit("es_bulk_size: no Elasticsearch process on this machine")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(es: str, method: str, path: str, body: dict | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(es + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as exc:
        if not (method == "DELETE" and exc.code == 404):
            raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--sizes", default="250,1000,2000,5000")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    print(machine_line(machine(None, False)))
    docs, _ = generate(args.events)
    payloads = [codec.encode(doc) for doc in docs]
    ids = [doc["event"]["id"] for doc in docs]
    del docs
    pid = elasticsearch_pid()
    sizes = [int(s) for s in args.sizes.split(",")]
    for _ in range(args.repeat):
        for size in sizes:
            index = f"wkbench-bulk-{size}"
            request(args.es, "DELETE", f"/{index}")
            request(args.es, "PUT", f"/{index}",
                    {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
            bodies = bulk_bodies(index, payloads, ids, size)
            before = cpu_seconds(pid)
            seconds = raw_bulk(args.es, bodies, 1)
            request(args.es, "POST", f"/{index}/_refresh")
            used = cpu_seconds(pid) - before
            request(args.es, "DELETE", f"/{index}")
            print(f"{size:>6} documents per bulk: {len(payloads) / seconds:>8,.0f} docs/s, "
                  f"Elasticsearch CPU {used:5.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
