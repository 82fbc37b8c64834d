"""False positives per hour per 100 hosts on the attack lab's benign background (issue 14).

    sudo .venv/bin/python bench/lab_benign.py --minutes 60 [--prefix b] [--out FILE]

Builds the attack lab exactly as tests/lab does (namespaces, real nginx/sshd/dnsmasq/iperf3,
`watchkeeper run` capturing the mirror port, the benign background streams of
tests/lab/background.py) and runs NO attack: every alert raised is a false positive. Prints
(and writes to --out as JSON, refreshed every minute, so a run cut short still has figures)
alerts per hour per 100 hosts, by category and by named host. Hosts counted: the 8 internal
benign hosts (5 servers, 3 clients); the 3 external servers are shown apart.

--prefix gives the lab's objects their own names (WATCHKEEPER_LAB_PREFIX), so this can run
beside another lab. Needs root and the lab's tools (deploy/local/lab-packages.txt).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def summarise(alerts: list[dict], hosts: dict[str, str], internal: int, seconds: float,
              background: dict) -> dict:
    hours = max(seconds, 1.0) / 3600
    per_100 = 100 / internal
    named = Counter()
    for a in alerts:
        for side in ("source", "destination"):
            ip = (a.get(side) or {}).get("ip")
            if ip in hosts:
                named[f"{hosts[ip]} as {side}"] += 1
    by_category = Counter(a.get("watchkeeper", {}).get("alert", {}).get("category")
                          for a in alerts)
    benign_source = sum(1 for a in alerts if (a.get("source") or {}).get("ip") in hosts)
    return {"minutes": round(seconds / 60, 2), "internal_hosts": internal,
            "alerts": len(alerts), "alerts_naming_benign_source": benign_source,
            "alerts_per_hour_per_100_hosts": round(len(alerts) / hours * per_100, 2),
            "benign_source_per_hour_per_100_hosts": round(benign_source / hours * per_100, 2),
            # none seen in n host-hours: fewer than 3/n per host-hour at 95 % (rule of three)
            "upper_95_if_none_per_hour_per_100_hosts": round(3 / (hours * internal) * 100, 1),
            "by_category": dict(by_category), "hosts_named": dict(named),
            "background_ok_failed": {k: list(v) for k, v in background.items()},
            "messages": [f"{a.get('watchkeeper', {}).get('alert', {}).get('category')} "
                         f"{(a.get('source') or {}).get('ip')} -> "
                         f"{(a.get('destination') or {}).get('ip')}: {a.get('message', '')[:120]}"
                         for a in alerts[:20]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--prefix", default="b", help="one letter naming this lab's objects")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ["WATCHKEEPER_LAB_PREFIX"] = args.prefix
    from tests.lab.conftest import Range   # after the prefix: topology reads it at import

    workdir = Path(tempfile.mkdtemp(prefix="wk-lab-benign-"))
    rng = Range(workdir)
    summary: dict = {}
    try:
        rng.build()
        hosts = rng.benign_hosts()
        internal = sum(1 for h in rng.lab.hosts.values()
                       if h.benign and h.ip.startswith("10.77."))
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        while True:
            time.sleep(min(60, max(0, end - time.monotonic())))
            summary = summarise(rng.alerts(), hosts, internal, time.monotonic() - t0,
                                rng.background_stats)
            print(f"[benign] {summary['minutes']:.1f} min: {summary['alerts']} alerts "
                  f"({summary['alerts_per_hour_per_100_hosts']}/h/100 hosts) "
                  f"{summary['by_category']}", flush=True)
            if args.out:
                args.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
            if time.monotonic() >= end:
                break
    finally:
        rng.shutdown()
        rng.stop_monitor()
        rng.http.close()
        rng.lab.teardown()
        if summary:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"[benign] failed; work directory kept: {workdir}", flush=True)
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    from bench.machine import machine, machine_line
    print(machine_line(machine(None, False)), f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
