"""Issue 14 item 7: the lab's attacks as randomised families (tests/lab/families.py), several
at once against the same monitor, judged like the fixed scenarios of test_lab.py: the family's
detector names the family's attacker within the deadline, and no alert names a benign host.

WATCHKEEPER_LAB_SEED replays a draw (the seed is printed and in tests/lab/last-random.json);
WATCHKEEPER_LAB_ROUNDS runs more rounds in one session (a measurement, not `make test`).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import asdict
from pathlib import Path

import pytest

from .randomised import run_round, summary_lines

SEED = int(os.environ.get("WATCHKEEPER_LAB_SEED") or random.SystemRandom().randrange(10**6))
ROUNDS = int(os.environ.get("WATCHKEEPER_LAB_ROUNDS") or 1)
OUT = Path(__file__).resolve().parent / "last-random.json"


@pytest.mark.timeout(300 * ROUNDS + 60)
def test_randomised_families_overlapping(lab_range):
    print(f"\n[lab] randomised families: WATCHKEEPER_LAB_SEED={SEED} rounds={ROUNDS}", flush=True)
    outcomes = []
    for n in range(ROUNDS):
        outcomes += run_round(lab_range, SEED, n)
        OUT.write_text(json.dumps({"seed": SEED, "outcomes": [asdict(o) for o in outcomes]},
                                  indent=1))
    lab_range.settle()
    print("\n".join(summary_lines(outcomes)), flush=True)
    benign = lab_range.benign_hosts()
    fps = lab_range.false_positives()
    failed = [o for o in outcomes if o.status != "detected"]
    assert not failed and not fps, (
        f"WATCHKEEPER_LAB_SEED={SEED}: "
        + "; ".join(f"round {o.round} {o.family} [{', '.join(o.attackers)}] {o.title}: "
                    f"{o.status}" + (f" after {o.ttd:.1f}s" if o.ttd is not None else "")
                    + (f", other alerts {o.other_categories}" if o.other_categories else "")
                    for o in failed)
        + "".join(f"\n  benign {benign[a['source']['ip']]} blamed: "
                  f"{a['watchkeeper']['alert']['category']}: {a.get('message')}" for a in fps))
