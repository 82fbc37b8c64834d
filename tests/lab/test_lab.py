"""One test per attack scenario (detected within its deadline, naming the attacker), plus one
that no alert names a benign host. A scenario whose category has no registered detector is
skipped with that reason; a registered detector that misses fails."""
from __future__ import annotations

import pytest

from .scenarios import SCENARIOS


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sid", [s.id for s in SCENARIOS])
def test_scenario_detected_in_time(lab_range, sid):
    result = lab_range.run_scenario(sid)
    s = result.scenario
    if result.status == "no detector":
        pytest.skip(f"no detector registered for {s.category}")
    bad_tools = {k: v for k, v in result.tool_rc.items()
                 if v is not None and v not in s.ok_exit and v >= 0}
    assert result.status == "detected", (
        f"{s.id} ({s.title}): {result.status}"
        + (f", first {s.category} alert after {result.ttd:.1f}s (deadline {s.deadline:.0f}s)"
           if result.ttd is not None else f", no {s.category} alert naming "
           f"{', '.join(lab_range.lab.hosts[h].ip for h in s.attackers)}")
        + (f"; other alerts: {sorted({a['watchkeeper']['alert']['category'] for a in result.other_alerts})}"
           if result.other_alerts else "")
        + (f"; tools failed {bad_tools}:\n{result.tool_tail}" if bad_tools else ""))
    if s.rule:
        assert s.rule in {a["rule"]["id"] for a in result.alerts}, (
            f"{s.id}: no {s.rule} alert among {sorted({a['rule']['id'] for a in result.alerts})}")


@pytest.mark.timeout(120)
def test_no_alert_names_a_benign_host(lab_range):
    lab_range.settle()
    fps = lab_range.false_positives()
    benign = lab_range.benign_hosts()
    assert not fps, "alerts naming benign hosts as source:\n" + "\n".join(
        f"  {benign[a['source']['ip']]}: {a['watchkeeper']['alert']['category']} "
        f"{a['source']['ip']} -> {(a.get('destination') or {}).get('ip')}: {a.get('message')}"
        for a in fps)
