"""Benchmark: live capture packets/s without kernel drops, tcpreplay over a veth (root).

    .venv/bin/python bench/live_capture.py [--packets 200000] [--rates 5000,...] [--documents]

A veth pair joins this namespace (our capture: `LiveSource` + `Capture` with payload
metadata, every record consumed) to a sender namespace, where `tcpreplay --pps R` replays
the first N packets of the capture benchmark's replay file (bench/.data, built by
bench/capture.py). For each rate: packets we saw, kernel drops, and tcpreplay's achieved
rate; first at `--topspeed` (tcpreplay's own ceiling on this machine), then at each rate.
The answer is the highest rate with zero kernel drops.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Veth:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ns, self.here, self.there = f"wkb-{tag}", f"wba{tag}", f"wbb{tag}"

    def __enter__(self) -> Veth:
        ip("netns", "add", self.ns)
        ip("link", "add", self.here, "type", "veth", "peer", "name", self.there, "netns", self.ns)
        subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{self.here}.disable_ipv6=1"],
                       check=True, timeout=30)
        ip("link", "set", self.here, "up")
        ip("-n", self.ns, "link", "set", self.there, "up")
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["ip", "link", "del", self.here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)


def one_rate(veth: Veth, pcap: Path, packets: int, rate: int | None,
             documents: bool = False) -> dict:
    from collectors.capture import Capture
    from collectors.capture.sources.live import LiveSource
    from watchkeeper.networks import InternalNetworks
    stop = threading.Event()
    source = LiveSource(veth.here, stop)
    seen = {"records": 0}

    def consume() -> None:
        capture = Capture(source, app=True)
        # --documents: ECS documents as `watchkeeper run --interface` publishes them
        for _ in capture.documents("bench", InternalNetworks()) if documents else capture:
            seen["records"] += 1

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    time.sleep(0.5)
    speed = ["--topspeed"] if rate is None else ["--pps", str(rate)]
    start = time.perf_counter()
    out = subprocess.run(["ip", "netns", "exec", veth.ns, "tcpreplay", "-q", "-i", veth.there,
                          "--limit", str(packets), *speed, str(pcap)],
                         capture_output=True, text=True, timeout=900)
    sent_s = time.perf_counter() - start
    deadline = time.monotonic() + 60           # let the capture drain its socket buffer
    while time.monotonic() < deadline and source.stats.packets < packets:
        before = source.stats.packets
        time.sleep(1.0)
        if source.stats.packets == before:
            break
    stop.set()
    worker.join(timeout=120)
    achieved = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", out.stdout)
    return {"rate": rate or "topspeed", "sent_pps": float(achieved.group(1)) if achieved
            else packets / sent_s, "captured": source.stats.packets,
            "kernel_drops": source.stats.kernel_drops, "records": seen["records"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rates", default="5000,10000,20000,40000,80000")
    ap.add_argument("--documents", action="store_true",
                    help="consume ECS documents (the run --interface path), not records")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("tcpreplay") is None:
        sys.exit("needs root and tcpreplay (deploy/local/debian-packages.txt)")
    replays = sorted((ROOT / "bench" / ".data").glob("replay-*.pcap"))
    if not replays:
        sys.exit("no bench/.data/replay-*.pcap: run bench/capture.py first")
    pcap = replays[-1]
    from bench.machine import machine, machine_line
    print(f"{machine_line(machine(None, kafka=False))}; file {pcap.name}, "
          f"first {args.packets} packets; consuming "
          f"{'documents' if args.documents else 'records'}")
    rows = []
    with Veth() as veth:
        for rate in [None, *map(int, args.rates.split(","))]:
            row = one_rate(veth, pcap, args.packets, rate, args.documents)
            rows.append(row)
            print(f"rate {row['rate']!s:>9}: sent {row['sent_pps']:>9,.0f} pps, captured "
                  f"{row['captured']:>8,}, kernel drops {row['kernel_drops']:>7,}, "
                  f"records {row['records']:,}", flush=True)
    clean = [r["sent_pps"] for r in rows if r["rate"] != "topspeed" and not r["kernel_drops"]]
    print(f"highest rate without kernel drops: {max(clean):,.0f} pps" if clean
          else "kernel drops at every rate tried")


if __name__ == "__main__":
    main()
