"""Events/s through the detectors alone (no bus, no store), all together and one by one.

    .venv/bin/python bench/detect.py [--events 200000]

The workload is the simulated scenario's flows (benign web/DNS sessions plus a port scan)
repeated with shifted times and addresses, so every detector has realistic work. The raw
ceiling is the same loop that only parses each event's time; ratios are against it.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.capture import iter_flow_documents  # noqa: E402
from detectors import registry  # noqa: E402
from detectors.runner import PartitionDetectors  # noqa: E402
from watchkeeper import timeutil  # noqa: E402
from watchkeeper.networks import InternalNetworks  # noqa: E402
from watchkeeper.simulate import write_scenario  # noqa: E402

from bench.machine import machine, machine_line  # noqa: E402


@dataclass
class Row:
    name: str
    seconds: float
    alerts: int


def workload(n: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.pcap")
        write_scenario(path, benign_sessions=80, scan_ports=300)
        base = list(iter_flow_documents([path], "bench", InternalNetworks()))
    docs, copy_no = [], 0
    while len(docs) < n:
        shift = copy_no * 600.0          # each copy is a later ten minutes from other hosts
        for doc in base:
            d = copy.deepcopy(doc)
            t = timeutil.parse(d["@timestamp"]) + shift
            d["@timestamp"] = timeutil.format(t)
            d["event"]["id"] = f"{copy_no}-{d['event']['id']}"
            d["source"]["ip"] = _shift_ip(d["source"]["ip"], copy_no)
            docs.append(d)
        copy_no += 1
    return docs[:n]


def _shift_ip(ip: str, k: int) -> str:
    parts = ip.split(".")
    return ".".join(parts[:2] + [str((int(parts[2]) + k) % 250), parts[3]])


def timed(name: str, detectors: list, docs: list[dict]) -> Row:
    part = PartitionDetectors(detectors)
    started = time.perf_counter()
    alerts = sum(len(part.on_event(doc)) for doc in docs)
    return Row(name, time.perf_counter() - started, alerts)


def ceiling(docs: list[dict]) -> Row:
    started = time.perf_counter()
    for doc in docs:
        timeutil.parse(doc["@timestamp"])
    return Row("raw ceiling (parse event time only)", time.perf_counter() - started, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    docs = workload(args.events)
    rows = [ceiling(docs), timed("all detectors (one partition)", registry.build(), docs)]
    rows += [timed(name, registry.build(names=[name]), docs) for name in sorted(registry.available())]
    n = len(docs)
    print(f"{machine_line(machine(None, kafka=False))}; {n:,} flow events")
    print(f"{'stage':40} {'events/s':>12} {'x ceiling':>10} {'alerts':>8}")
    top = n / rows[0].seconds
    for row in rows:
        rate = n / row.seconds if row.seconds else float("inf")
        print(f"{row.name:40} {rate:12,.0f} {rate / top:10.3f} {row.alerts:8}")


if __name__ == "__main__":
    main()
