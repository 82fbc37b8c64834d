"""Hostile input against a running `watchkeeper run` (issue 9, item 4): 10^6 datagrams and
lines by default, on loopback, as fast as loopback allows.

    .venv/bin/python bench/hostile.py [--count 1000000] [--budget 120]

Sends random and half-valid NetFlow/IPFIX datagrams (60 % of the count), garbage syslog
over UDP (25 %) and TCP (15 %) to one `run` process (embedded bus, SQLite in a temp dir),
after a warm-up that creates every fixed-label series. Prints the sent counts, what the
collectors counted, /metrics series per family before and after, RSS before and peak
(VmHWM) after, and the log lines written. Exit status 1 if the process died, a series
family grew, or the peak exceeded the baseline by more than --max-growth MiB.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from hostile_input import send_all, start_target, stop_target, wait_quiet  # noqa: E402


def attack(workdir: Path, count: int, budget_s: float, warm: int = 20_000,
           shares: tuple[int, int, int] = (60, 25, 15)) -> dict:
    target = start_target(workdir)
    try:
        split = lambda n: tuple(n * share // 100 for share in shares)  # noqa: E731
        warmed = send_all(target.netflow_port, target.syslog_port, *split(warm), budget_s=60,
                          seed=1)
        wait_quiet(target)
        before, rss_before = target.series(), target.memory_kib()
        logs_before = target.log_lines()
        sent = send_all(target.netflow_port, target.syslog_port, *split(count),
                        budget_s=budget_s, seed=2)
        settle_s = wait_quiet(target)
        after, mem_after = target.series(), target.memory_kib()
        grown = {f: (before.get(f, 0), n) for f, n in after.items() if n != before.get(f, 0)}
        return {
            "alive": target.proc.poll() is None,
            "sent": vars(sent) | {"total": sent.total}, "warm_sent": warmed.total,
            "settle_s": round(settle_s, 1),
            "netflow_received": target.value("watchkeeper_netflow_packets_total",
                                             outcome="received"),
            "netflow_malformed": target.value("watchkeeper_netflow_packets_total",
                                              outcome="malformed"),
            "syslog_received": target.value("watchkeeper_collector_counter", collector="syslog",
                                            counter="received"),
            "deadlettered": target.value("watchkeeper_records_total", outcome="deadlettered"),
            "exporter_evictions": target.value("watchkeeper_netflow_exporter_evictions_total"),
            "series_before": sum(before.values()), "series_after": sum(after.values()),
            "families_changed": grown,
            "rss_before_mib": round(rss_before["VmRSS"] / 1024, 1),
            "peak_after_mib": round(mem_after["VmHWM"] / 1024, 1),
            "rss_after_mib": round(mem_after["VmRSS"] / 1024, 1),
            "log_lines_during": target.log_lines() - logs_before,
        }
    finally:
        stop_target(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of sending at most")
    parser.add_argument("--max-growth", type=float, default=150.0, help="MiB over the baseline")
    parser.add_argument("--shares", default="60,25,15",
                        help="percent NetFlow UDP, syslog UDP, syslog TCP")
    args = parser.parse_args()
    shares = tuple(int(x) for x in args.shares.split(","))
    with tempfile.TemporaryDirectory(prefix="wk-hostile-") as tmp:
        result = attack(Path(tmp), args.count, args.budget, shares=shares)
    print(json.dumps(result, indent=2))
    ok = (result["alive"] and not result["families_changed"]
          and result["peak_after_mib"] < result["rss_before_mib"] + args.max_growth)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
