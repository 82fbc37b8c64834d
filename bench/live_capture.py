"""Benchmark: live capture packets/s without kernel drops, tcpreplay over a veth (root).

    .venv/bin/python bench/live_capture.py [--packets 200000] [--rates 5000,...] [--documents]
        [--seconds 30] [--mode thread|process|run]

A veth pair joins this namespace (our capture: `LiveSource` + `Capture` with payload
metadata, every record consumed) to a sender namespace, where `tcpreplay --pps R` replays
the first N packets of the capture benchmark's replay file (bench/.data, built by
bench/capture.py). For each rate: packets we saw, kernel drops, and tcpreplay's achieved
rate; first at `--topspeed` (tcpreplay's own ceiling on this machine), then at each rate.
The answer is the highest rate with zero kernel drops.

--mode (what consumes the capture):
  thread   `LiveSource` + `Capture` in a thread of this process (the capture path alone);
  process  the capture process `watchkeeper run --interface` starts (app/capture_process.py):
           documents encoded in the child, relayed to this process, which only counts them;
  run      the whole `watchkeeper run --interface` (capture process + detection + alerting +
           indexing into SQLite + API), counters read from its /metrics;
  run-thread  the same with `capture_process: false` (capture in a thread of `run`, as
           before): the side-by-side anchor.
--seconds S: at each rate send rate × S packets (the replay file is looped), not --packets.
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


def replay(veth: Veth, pcap: Path, packets: int, rate: int | None) -> tuple[float, float]:
    """tcpreplay from the sender namespace: (pps it achieved, seconds it took)."""
    speed = ["--topspeed"] if rate is None else ["--pps", str(rate)]
    start = time.perf_counter()
    out = subprocess.run(["ip", "netns", "exec", veth.ns, "tcpreplay", "-q", "-i", veth.there,
                          "--loop", "0", "--limit", str(packets), *speed, str(pcap)],
                         capture_output=True, text=True, timeout=900)
    sent_s = time.perf_counter() - start
    achieved = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", out.stdout)
    return (float(achieved.group(1)) if achieved else packets / sent_s), sent_s


def _settled(read, packets: int, timeout: float = 120) -> None:
    """Wait while the capture still drains its ring (the count moved in the last 3 s) or
    until it has seen `packets`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read() < packets:
        before = read()
        time.sleep(3.0)
        if read() == before:
            break


def one_rate_process(veth: Veth, pcap: Path, packets: int, rate: int | None) -> dict:
    """The capture process of `run --interface`, relaying into a counting producer."""
    from app.capture_process import SLOTS, CaptureProcess
    from app.settings import load_settings
    from watchkeeper.bus import Producer

    class Counting(Producer):
        sent = 0

        def send(self, topic, value, key=None):
            Counting.sent += 1

        def flush(self):
            pass
    child = CaptureProcess(load_settings(None), veth.here).start()
    stop = threading.Event()
    relay = threading.Thread(target=child.relay, args=(Counting(), stop), daemon=True)
    relay.start()
    time.sleep(0.5)
    sent_pps, _ = replay(veth, pcap, packets, rate)
    _settled(lambda: child.gauges[SLOTS.index("packets")], packets)
    stop.set()
    relay.join(timeout=120)
    g = child.stats.gauges
    return {"rate": rate or "topspeed", "sent_pps": sent_pps, "captured": g["packets"],
            "kernel_drops": g["kernel_drops"], "records": Counting.sent,
            "extra": f"ring peak {g['ring_peak_in_use']}/{g['ring_blocks']} blocks, "
                     f"queue peak {g['queue_peak']} batches"}


def _metrics(base: str, interface: str) -> dict[str, float]:
    import httpx
    text = httpx.get(f"{base}/metrics/", timeout=10).text
    found = {}
    for m in re.finditer(r'watchkeeper_capture\{interface="([^"]+)",measure="([^"]+)"\} (\S+)',
                         text):
        if m.group(1) == interface:
            found[m.group(2)] = float(m.group(3))
    for m in re.finditer(r'watchkeeper_stage_lag\{stage="([^"]+)"\} (\S+)', text):
        found[f"lag:{m.group(1)}"] = float(m.group(2))
    return found


def _collector_counters(base: str, interface: str) -> dict[str, float]:
    """The capture's status counters as `run` exports them when it captures in a thread."""
    import httpx
    text = httpx.get(f"{base}/metrics/", timeout=10).text
    pattern = (r'watchkeeper_collector_counter\{collector="capture:' + re.escape(interface) +
               r'",counter="([^"]+)"\} (\S+)')
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text)}


def one_rate_run(veth: Veth, pcap: Path, packets: int, rate: int | None,
                 in_process: bool = True, nice: int = 0) -> dict:
    """The whole `watchkeeper run --interface` on the veth, store in a temporary SQLite;
    `in_process=False`: the capture in a thread of `run` (setting capture_process: false)."""
    import json
    import tempfile

    import httpx
    from tests.integration.conftest import free_port
    with tempfile.TemporaryDirectory(prefix="wk-bench-run-") as tmp:
        port = free_port()
        Path(f"{tmp}/wk.yaml").write_text(json.dumps({"status_seconds": 1,
                                                      "capture_process": in_process,
                                                      "capture_nice": nice}))
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "watchkeeper"), "run", "--interface", veth.here,
             "--config", f"{tmp}/wk.yaml",
             "--port", str(port), "--syslog-port", "0", "--netflow-port", "0",
             "--store", f"sqlite:///{tmp}/wk.db"], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=open(f"{tmp}/run.log", "w"))
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            time.sleep(1.0)
            read = (lambda: _metrics(base, veth.here)) if in_process else \
                (lambda: {**_collector_counters(base, veth.here),
                          **{k: v for k, v in _metrics(base, veth.here).items()
                             if k.startswith("lag:")}})
            sent_pps, _ = replay(veth, pcap, packets, rate)
            _settled(lambda: read().get("packets", 0), packets)
            m = read()
            health = httpx.get(f"{base}/health", timeout=10).json()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:     # still working off its backlog
                proc.kill()
                proc.wait(timeout=30)
            shutil.copy(f"{tmp}/run.log", "/tmp/wk-bench-run-last.log")
    lags = {k[4:]: int(v) for k, v in m.items() if k.startswith("lag:")}
    return {"rate": rate or "topspeed", "sent_pps": sent_pps,
            "captured": int(m.get("packets", 0)), "kernel_drops": int(m.get("kernel_drops", 0)),
            "records": int(m.get("relayed", m.get("flows", 0))),
            "extra": f"capture {'in its own process' if in_process else 'in a thread'}"
                     f"{f' (nice {nice})' if nice and in_process else ''}, "
                     f"ring peak {int(m.get('ring_peak_in_use', 0))}/"
                     f"{int(m.get('ring_blocks', 0))}, queue peak {int(m.get('queue_peak', 0))}"
                     f", /health {health.get('status')}, stage lag at the end {lags}"}


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
        if documents:   # the JSON lines `watchkeeper run --interface` publishes (app/collect.py)
            for chunk in capture.lines("bench", InternalNetworks()):
                seen["records"] += chunk.count(b"\n")
            return
        for _ in capture:
            seen["records"] += 1

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    time.sleep(0.5)
    sent_pps, _ = replay(veth, pcap, packets, rate)
    _settled(lambda: source.stats.packets, packets)   # let the capture drain its ring
    stop.set()
    worker.join(timeout=120)
    return {"rate": rate or "topspeed", "sent_pps": sent_pps, "captured": source.stats.packets,
            "kernel_drops": source.stats.kernel_drops, "records": seen["records"],
            "extra": f"ring peak {source.stats.ring_peak_in_use}/{source.stats.ring_blocks}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rates", default="5000,10000,20000,40000,80000")
    ap.add_argument("--documents", action="store_true",
                    help="consume ECS documents (the run --interface path), not records")
    ap.add_argument("--seconds", type=float, help="send rate × SECONDS packets at each rate")
    ap.add_argument("--mode", choices=["thread", "process", "run", "run-thread"],
                    default="thread", help="run-thread: `run` with capture_process: false")
    ap.add_argument("--no-topspeed", action="store_true")
    ap.add_argument("--nice", type=int, default=0, help="run: capture_nice of the capture process")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("tcpreplay") is None:
        sys.exit("needs root and tcpreplay (deploy/local/debian-packages.txt)")
    replays = sorted((ROOT / "bench" / ".data").glob("replay-*.pcap"))
    if not replays:
        sys.exit("no bench/.data/replay-*.pcap: run bench/capture.py first")
    pcap = replays[-1]
    from bench.machine import machine, machine_line
    print(f"{machine_line(machine(None, kafka=False))}; file {pcap.name}, "
          f"first {args.packets} packets; mode {args.mode}, consuming "
          f"{'documents' if args.documents or args.mode != 'thread' else 'records'}")
    rows = []
    rates = [*([] if args.no_topspeed else [None]), *map(int, args.rates.split(","))]
    with Veth() as veth:
        for rate in rates:
            packets = int(rate * args.seconds) if args.seconds and rate else args.packets
            if args.mode == "process":
                row = one_rate_process(veth, pcap, packets, rate)
            elif args.mode in ("run", "run-thread"):
                row = one_rate_run(veth, pcap, packets, rate, args.mode == "run", args.nice)
            else:
                row = one_rate(veth, pcap, packets, rate, args.documents)
            rows.append(row)
            print(f"rate {row['rate']!s:>9}: sent {packets:,} at {row['sent_pps']:>9,.0f} pps, "
                  f"captured {row['captured']:>8,} ({row['captured'] / packets:.4f} of "
                  f"offered), kernel drops {row['kernel_drops']:>7,}, records "
                  f"{row['records']:,}; {row['extra']}", flush=True)
    clean = [r["sent_pps"] for r in rows if r["rate"] != "topspeed" and not r["kernel_drops"]]
    print(f"highest rate without kernel drops: {max(clean):,.0f} pps" if clean
          else "kernel drops at every rate tried")


if __name__ == "__main__":
    main()
