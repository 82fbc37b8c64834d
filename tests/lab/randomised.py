"""Runs rounds of the randomised families (families.py) against the lab's one monitor: every
family drawn afresh per round, the round split into overlapping batches (the families of a
batch start a few seconds apart and run at the same time), and each family judged like a fixed
scenario: an alert of its category naming its attacker within its deadline."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .families import FAMILIES, draw_addresses
from .scenarios import Scenario
from .topology import run

if TYPE_CHECKING:
    from .conftest import Range


@dataclass
class Outcome:
    round: int
    family: str
    title: str
    attackers: list[str]
    status: str = "not run"        # detected | late | missed
    ttd: float | None = None
    other_categories: list[str] = field(default_factory=list)
    tool_rc: dict = field(default_factory=dict)


def readdress(rng_lab: "Range", addresses: dict[str, str]) -> None:
    """Give each family's attacker namespace its address for this round, so no alert of an
    earlier round (alerts are deduplicated per detector and entity) can answer for this one."""
    for name, ip in addresses.items():
        host = rng_lab.lab.hosts[name]
        prefix = 16 if ip.startswith("10.77.") else 24
        run("ip", "-n", host.ns, "addr", "flush", "dev", "eth0")
        run("ip", "-n", host.ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        run("ip", "-n", host.ns, "route", "replace", "default", "dev", "eth0")
        host.ip, host.prefix = ip, prefix


def run_round(r: "Range", seed: int, round_no: int, batches: int = 2,
              draws: dict | None = None) -> list[Outcome]:
    """`draws` replaces some families' draw functions (name -> function of the rng)."""
    rng = random.Random(f"{seed}:{round_no}")
    readdress(r, draw_addresses(rng, r.addresses_used))
    drawn = [(name, draw(rng)) for name, draw in {**FAMILIES, **(draws or {})}.items()]
    rng.shuffle(drawn)
    outcomes = []
    for b in range(batches):
        batch = drawn[b::batches]
        offsets = [round(rng.uniform(0, 5), 1) for _ in batch]
        r.note(f"random round {round_no} batch {b}: " + "; ".join(
            f"{name} +{off}s [{', '.join(r.lab.hosts[h].ip for h in s.attackers)}] {s.title}"
            for (name, s), off in zip(batch, offsets)))
        outcomes += _run_batch(r, round_no, batch, offsets)
    return outcomes


def _run_batch(r: "Range", round_no: int, batch: list[tuple[str, Scenario]],
               offsets: list[float]) -> list[Outcome]:
    r.settle()
    t0 = time.monotonic()
    live: dict[str, dict] = {}
    pending = sorted(zip(offsets, batch), key=lambda x: x[0])
    while pending or live:
        now = time.monotonic()
        while pending and now - t0 >= pending[0][0]:
            _, (name, s) = pending.pop(0)
            started = time.time()
            live[name] = {"s": s, "started": started, "t0": time.monotonic(),
                          "procs": s.launch(r, s), "out": Outcome(round_no, name, s.title,
                                                                  [r.lab.hosts[h].ip
                                                                   for h in s.attackers])}
        for name, run_ in list(live.items()):
            if _judge(r, run_, final=False):
                _finish(r, run_)
                r.results_random.append(run_["out"])
                del live[name]
        time.sleep(1)
    return [o for o in r.results_random if o.round == round_no
            and o.family in {n for n, _ in batch}]


def _judge(r: "Range", run_: dict, final: bool) -> bool:
    """True once the family's verdict is in (detected, or past its deadline and tools done)."""
    s, out = run_["s"], run_["out"]
    ips = set(out.attackers)
    victim = r.lab.hosts[s.victim].ip if s.victim else None
    matching, other = r._matching(s, ips, victim, run_["started"])
    matching = [a for a in matching if a["_ttd"] >= -1]      # not an earlier round's alert
    elapsed = time.monotonic() - run_["t0"]
    done = all(p.poll() is not None for p in run_["procs"])
    in_time = [a for a in matching if a["_ttd"] <= s.deadline]
    out.other_categories = sorted({a["watchkeeper"]["alert"]["category"] for a in other
                                   if a["_ttd"] >= -1})
    if matching:
        out.ttd = min(a["_ttd"] for a in matching)
    out.status = "detected" if in_time else ("late" if matching else "missed")
    if in_time and (done or elapsed > 3):
        return True
    return (elapsed > s.deadline + 8 and done) or elapsed > max(s.max_runtime, s.deadline + 8)


def _finish(r: "Range", run_: dict) -> None:
    for p in run_["procs"]:
        if p.poll() is None:
            r.lab.stop(p)
    run_["out"].tool_rc = {i: p.returncode for i, p in enumerate(run_["procs"])}
    o = run_["out"]
    r.note(f"random round {o.round} {o.family}: {o.status}"
           + (f" in {o.ttd:.1f}s" if o.ttd is not None else "")
           + (f" (other: {o.other_categories})" if o.other_categories else ""))


def summary_lines(outcomes: list[Outcome]) -> list[str]:
    """Per family: detected / runs and time to detect p50 / p95 / max (nearest rank)."""
    lines = ["| family | detected | time to detect p50 / p95 / max |", "|---|---:|---:|"]
    for family in sorted({o.family for o in outcomes}):
        runs = [o for o in outcomes if o.family == family]
        ttds = sorted(o.ttd for o in runs if o.status == "detected")
        pick = (lambda q: ttds[min(len(ttds) - 1, max(0, round(q * len(ttds)) - 1))])
        times = (f"{pick(0.5):.1f} / {pick(0.95):.1f} / {ttds[-1]:.1f} s" if ttds else "-")
        lines.append(f"| {family} | {len(ttds)}/{len(runs)} | {times} |")
    return lines
