"""The lab report: per scenario detected or not, time to detect, alert counts; the alerts that
name a benign host as source; the monitor's own health (capture drops, errors)."""
from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path


def _alert_line(a: dict) -> str:
    wk = a.get("watchkeeper", {}).get("alert", {})
    return (f"{wk.get('category')}/{wk.get('detector')} "
            f"{(a.get('source') or {}).get('ip')} -> {(a.get('destination') or {}).get('ip')}: "
            f"{a.get('message', '')[:110]}")


def write_report(rng, false_positives: list[dict], path: Path, failure=None) -> str:
    out = ["# Watchkeeper attack lab report", "",
           f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, {sum(1 for _ in rng.lab.hosts) or 'n/a'} "
           f"namespaces; detectors registered: "
           f"{', '.join(f'{n} ({c})' for c, n in sorted(rng.categories.items())) or 'none'}.", ""]
    if failure is not None:
        out += [f"**Lab failed: {failure!r}**", ""]
    out += ["| scenario | attacker(s) | expected | deadline | result | time to detect | "
            "alerts | other alerts for the attacker | tools (exit) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for res in rng.results.values():
        s = res.scenario
        ips = ", ".join(rng.lab.hosts[h].ip if h in rng.lab.hosts else h for h in s.attackers)
        ttd = f"{res.ttd:.1f}s" if res.ttd is not None else "-"
        status = {"no detector": "no detector registered"}.get(res.status, res.status)
        other = Counter(a.get("watchkeeper", {}).get("alert", {}).get("category")
                        for a in res.other_alerts)
        tools = ", ".join(f"{k}={'stopped' if v is not None and v < 0 else v}"
                          for k, v in res.tool_rc.items()) or "-"
        out.append(f"| {s.id} | {ips} | {s.category} | {s.deadline:.0f}s | {status} | {ttd} | "
                   f"{len(res.alerts)} | {dict(other) or '-'} | {tools} |")
    if rng.results_random:
        out += ["", "## Randomised families (test_lab_random.py; overlapping batches)", "",
                "| round | family | attacker(s) | drawn | result | time to detect | "
                "other alerts for the attacker |", "|---|---|---|---|---|---|---|"]
        out += [f"| {o.round} | {o.family} | {', '.join(o.attackers)} | {o.title} | {o.status} "
                f"| {f'{o.ttd:.1f}s' if o.ttd is not None else '-'} | "
                f"{', '.join(o.other_categories) or '-'} |" for o in rng.results_random]
    out += ["", "## False positives (alerts whose source is a benign host)", ""]
    if false_positives:
        benign = rng.benign_hosts()
        for a in false_positives:
            out.append(f"- {benign.get((a.get('source') or {}).get('ip'), '?')}: {_alert_line(a)}")
    else:
        out.append("none")
    out += ["", "## Benign background (ok / failed)", ""]
    out += [f"- {name}: {ok} / {bad}" for name, (ok, bad) in rng.background_stats.items()]
    if rng.forwarder:
        out.append(f"- sshd log lines forwarded to syslog: {rng.forwarder.lines}")
    log = rng.lab.log("monitor")
    drops = re.findall(r"capture on \S+ stopped: (\d+) packets, (\d+) kernel drops", log)
    problems = [ln for ln in log.splitlines() if re.search(r"\b(ERROR|Traceback|CRITICAL)\b", ln)]
    out += ["", "## Monitor", ""]
    out.append(f"- live capture: {drops[-1][0]} packets, {drops[-1][1]} kernel drops" if drops
               else "- live capture: no final statistics line in the monitor log")
    out.append(f"- error lines in the monitor log: {len(problems)}")
    out += [f"  - `{ln[:200]}`" for ln in problems[:10]]
    out += ["", "## Timeline", "", "```", *rng.timeline, "```", ""]
    failed_tools = [r for r in rng.results.values()
                    if r.tool_rc and any(v is not None and v >= 0 and v not in r.scenario.ok_exit
                                         for v in r.tool_rc.values())]
    if failed_tools:
        out += ["## Tool output of scenarios whose tools failed", ""]
        for r in failed_tools:
            out += [f"### {r.scenario.id}", "```", r.tool_tail[-1500:], "```", ""]
    text = "\n".join(out)
    path.write_text(text)
    return text
