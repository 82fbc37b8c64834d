"""Benchmark: `watchkeeper ingest` of a generated capture with N flows, beside the flow meter
alone on the same file (`watchkeeper flows --json`), both as whole CLI processes.

    .venv/bin/python bench/ingest_volume.py [--flows 1000000] [--bus memory://] [--store URL]
                                            [--early-report SECONDS]

The capture holds N single-packet UDP flows (tests/integration/synthetic_pcap.py), so the
store must end with exactly N distinct flow events: the run fails otherwise. Reports seconds,
events/s, peak RSS of each process, and ingest ÷ flow meter as a ratio. With the default flow
table most of these flows are published twice (an early record at 5 s, the final one at 60 s,
same id): the bus messages are in `ingest`'s summary line; `--early-report 0` turns the early
record off (one message per flow, as tests/integration/test_ingest_volume.py runs it).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine, machine_line  # noqa: E402
from tests.integration.synthetic_pcap import write_flows_pcap  # noqa: E402

CLI = [sys.executable, "-m", "app.cli"]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds and peak RSS (MiB, GNU time's %M) of one CLI process, and its stderr."""
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "peak_kib=%M", *CLI, *args], cwd=ROOT,
                          env={**os.environ, **env},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    lines = done.stderr.strip().splitlines()
    peak_kib = int(lines[-1].split("=", 1)[1])
    return seconds, peak_kib / 1024, "\n".join(lines[:-1])


def count_flows(store_url: str) -> int:
    """Stored flow events; ids are the store's keys, so this is the number of distinct ids.
    (Listing 10^6 documents with `watchkeeper events --json` took over 13 minutes.)"""
    from watchkeeper.store import Query, open_store
    store = open_store(store_url)
    try:
        return store.search("events", Query(terms={"event.dataset": ["watchkeeper.flow"]},
                                            limit=1)).total
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--bus", default="memory://")
    parser.add_argument("--store", help="default: a temporary SQLite file")
    parser.add_argument("--early-report", type=float,
                        help="flow_table.early_report in seconds (default: the flow table's, 5)")
    args = parser.parse_args()
    env = ({} if args.early_report is None else
           {"WATCHKEEPER_FLOW_TABLE__EARLY_REPORT": str(args.early_report)})
    with tempfile.TemporaryDirectory(prefix="wk-ingest-bench-") as tmp:
        pcap = os.path.join(tmp, "flows.pcap")
        write_flows_pcap(pcap, args.flows)
        store = args.store or f"sqlite:///{tmp}/wk.db"
        meter_s, meter_mib, _ = timed(["flows", pcap, "--json"], env)
        ingest_s, ingest_mib, summary = timed(["ingest", pcap, "--bus", args.bus,
                                               "--store", store], env)
        stored = count_flows(store)
    print(machine_line(machine(None, args.bus.startswith("kafka"))))
    print(f"command: .venv/bin/python bench/ingest_volume.py --flows {args.flows} "
          f"--bus {args.bus}{' --store ' + args.store if args.store else ''}"
          f"{'' if args.early_report is None else f' --early-report {args.early_report:g}'}")
    print(f"ingest summary: {summary.strip().splitlines()[-1]}")
    print("| path | seconds | flows/s | peak RSS |")
    print("|---|---:|---:|---:|")
    print(f"| `watchkeeper flows --json` (flow meter alone) | {meter_s:.1f} | "
          f"{args.flows / meter_s:,.0f} | {meter_mib:.0f} MiB |")
    print(f"| `watchkeeper ingest` ({args.bus}) | {ingest_s:.1f} | "
          f"{args.flows / ingest_s:,.0f} | {ingest_mib:.0f} MiB |")
    print(f"ingest ÷ flow meter: {meter_s / ingest_s:.3f}x; stored {stored:,} of "
          f"{args.flows:,} flows")
    return 0 if stored == args.flows else 1


if __name__ == "__main__":
    sys.exit(main())
