"""`deploy/local/services start` under full CPU load: N stop --wipe / start cycles on the
benchmark's own directory and ports (never the default 9092/9093/9200), with one busy process
per core competing with the starting JVMs the whole time. Records, per cycle, success and the
seconds until the script returned healthy (and each service's own figure from its log line).

usage: .venv/bin/python bench/services_start.py [--cycles 10] [--script deploy/local/services]
       [--busy N] [--dir /tmp/wk-bench-services] [--ports 29092,29093,29200] [--json]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import machine, machine_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEALTHY = re.compile(r"\[services\] (kafka|elasticsearch) healthy on \S+ after (\d+)s")


@dataclass
class Cycle:
    n: int
    ok: bool
    seconds: float
    services: dict[str, int] = field(default_factory=dict)  # name -> seconds it reported
    error: str = ""


def busy() -> None:
    while True:
        pass


def run_script(script: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=1800)


def cycle(n: int, script: str, env: dict) -> Cycle:
    run_script(script, env, "stop", "--wipe")
    t0 = time.monotonic()
    done = run_script(script, env, "start")
    seconds = round(time.monotonic() - t0, 1)
    reported = {m[1]: int(m[2]) for m in HEALTHY.finditer(done.stderr)}
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    return Cycle(n, done.returncode == 0 and len(reported) == 2, seconds, reported,
                 errors[0] if errors else ("" if done.returncode == 0 else done.stderr[-300:]))


def summary(cycles: list[Cycle]) -> str:
    ok = [c for c in cycles if c.ok]
    lines = [f"{len(ok)}/{len(cycles)} starts succeeded"]
    if ok:
        times = [c.seconds for c in ok]
        lines.append(f"seconds to healthy (script): min {min(times)}, median "
                     f"{statistics.median(times)}, max {max(times)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--script", default=str(ROOT / "deploy" / "local" / "services"))
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2,
                    help="busy-loop processes competing for the CPU (default: one per core)")
    ap.add_argument("--dir", default="/tmp/wk-bench-services")
    ap.add_argument("--ports", default="29092,29093,29200", help="kafka,controller,elasticsearch")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kafka, controller, es = args.ports.split(",")
    if {kafka, controller, es} & {"9092", "9093", "9200"}:
        ap.error("never the default ports: another checkout's services may be on them")
    env = dict(os.environ, WK_SERVICES_DIR=args.dir, WK_KAFKA_PORT=kafka,
               WK_KAFKA_CONTROLLER_PORT=controller, WK_ES_PORT=es)
    print(machine_line(machine(None, kafka=True)), flush=True)
    print(f"script: {args.script}; {args.busy} busy processes; {args.cycles} cycles", flush=True)
    load = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.busy)]
    for p in load:
        p.start()
    cycles = []
    try:
        for n in range(1, args.cycles + 1):
            cycles.append(cycle(n, args.script, env))
            c = cycles[-1]
            print(f"cycle {n}: {'ok' if c.ok else 'FAILED'} {c.seconds}s {c.services} {c.error}",
                  flush=True)
    finally:
        for p in load:
            p.terminate()
        run_script(args.script, env, "stop", "--wipe")
    print(summary(cycles))
    if args.json:
        print(json.dumps([asdict(c) for c in cycles]))
    return 0 if all(c.ok for c in cycles) else 1


if __name__ == "__main__":
    sys.exit(main())
