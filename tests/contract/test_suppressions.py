"""Suppression rules on both store backends: create closes stored open alerts (counted), the
alerting policy silences new ones, edits and expiry are audited, an expired rule stops
matching (frozen time: every call takes `now`)."""
from __future__ import annotations

import pytest

from alerting.context import AlertContext
from watchkeeper import timeutil
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store import Query
from watchkeeper.store.suppressions import (RuleCache, create_rule, expire_rule, get_rule,
                                            list_rules, update_rule)

NOW = 1_767_225_600.0        # 2026-01-01T00:00:00Z, the frozen clock
DAY = 86_400


def alert(n: int, src: str, detector: str = "scan", site: str | None = "county-a1",
          status: str = "new") -> dict:
    spec = AlertSpec(detector=detector, detector_version="1", category="scan",
                     rule_id="scan.rule", rule_name="scan", severity=2, message=f"alert {n}",
                     entity=f"{src}-{n}", first_seen=NOW - 600 + n, last_seen=NOW - 500 + n,
                     source_ip=src, destination_ip="10.10.2.20")
    doc = alert_document(spec, created=NOW - 400)
    doc["watchkeeper"]["alert"]["status"] = status
    if site:
        doc["labels"] = {"site": site}
    return doc


def stored(store) -> dict[str, dict]:
    store.refresh()
    return {a["event"]["id"]: a["watchkeeper"]["alert"]
            for a in store.search("alerts", Query(limit=100)).items}


def audit_actions(store) -> list[str]:
    store.refresh()
    records = store.search("audit", Query(limit=100)).items
    return [r["event"]["action"] for r in sorted(records, key=lambda r: r["watchkeeper"]["audit"]["seq"])]


def test_a_new_rule_closes_matching_open_alerts_and_counts_them(store):
    docs = [alert(1, "10.10.1.50"), alert(2, "10.10.1.50", status="acknowledged"),
            alert(3, "10.10.1.50", status="closed"), alert(4, "10.10.1.51"),
            alert(5, "10.10.1.50", detector="bruteforce"),
            alert(6, "10.10.1.50", site="county-b1")]
    store.bulk_upsert("alerts", docs)
    store.refresh()
    made = create_rule(store, {"detector": "scan", "source_cidr": "10.10.1.50/32",
                               "reason": "printer discovery", "verdict": "false_positive"},
                       "sec.admin", NOW, sites=["county-a1"])
    assert made.closed == 2
    after = stored(store)
    ids = [d["event"]["id"] for d in docs]
    for closed in ids[:2]:
        assert (after[closed]["status"], after[closed]["verdict"],
                after[closed]["suppressed_by"]) == ("closed", "false_positive", made.rule.id)
        assert after[closed]["closed_at"] == timeutil.format(NOW)
        assert after[closed]["updated_at"] == timeutil.format(NOW)   # the live feed sees it
    assert after[ids[2]].get("suppressed_by") is None            # closed before: untouched
    assert [after[i]["status"] for i in ids[3:]] == ["new", "new", "new"]  # other actor, detector, site
    assert made.rule.expires_at == timeutil.format(NOW + 30 * DAY)
    assert audit_actions(store) == ["suppression.create", "alert.update", "alert.update"]


def test_rules_are_edited_expired_listed_and_audited(store):
    rule = create_rule(store, {"category": "scan", "reason": "lab network"}, "sec", NOW).rule
    assert get_rule(store, rule.id) == rule
    edited = update_rule(store, rule.id, {"reason": "lab network (ticket 42)",
                                          "destination_cidr": "10.10.2.0/24"}, "sec2", NOW + 60)
    assert edited.reason == "lab network (ticket 42)" and edited.created_by == "sec"
    with pytest.raises(ValueError):
        update_rule(store, rule.id, {"source_cidr": "10.1.1.1/40"}, "sec", NOW)
    with pytest.raises(ValueError):
        update_rule(store, rule.id, {"created_by": "someone else"}, "sec", NOW)
    with pytest.raises(KeyError):
        expire_rule(store, "sup-missing", "sec", NOW)
    expired = expire_rule(store, rule.id, "sec", NOW + 120)
    assert expired.expired and not expired.active(NOW + 121)
    assert [r.id for r in list_rules(store)] == [rule.id]
    assert list_rules(store)[0].expired
    assert audit_actions(store) == ["suppression.create", "suppression.update",
                                    "suppression.expire"]


def test_a_rule_needs_a_match_a_reason_and_a_sane_expiry(store):
    with pytest.raises(ValueError, match="at least one"):
        create_rule(store, {"reason": "everything"}, "sec", NOW)
    with pytest.raises(ValueError):
        create_rule(store, {"detector": "scan", "reason": ""}, "sec", NOW)
    with pytest.raises(ValueError, match="expires_at"):
        create_rule(store, {"detector": "scan", "reason": "old",
                            "expires_at": timeutil.format(NOW - 1)}, "sec", NOW)
    assert list_rules(store) == []


def test_the_policy_silences_new_alerts_until_the_rule_expires(store):
    clock = {"now": NOW, "mono": 0.0}
    cache = RuleCache(store, ttl_s=5, monotonic=lambda: clock["mono"])
    policy = AlertContext(suppressions=cache, clock=lambda: clock["now"])
    assert policy.apply(alert(1, "10.10.1.50"))["watchkeeper"]["alert"]["status"] == "new"
    rule = create_rule(store, {"source_cidr": "10.10.1.0/24", "reason": "scanner subnet",
                               "expires_at": timeutil.format(NOW + 2 * DAY)}, "sec", NOW).rule
    clock["mono"] += 1               # within the cache's few seconds: not yet read
    assert policy.apply(alert(2, "10.10.1.50"))["watchkeeper"]["alert"]["status"] == "new"
    clock["mono"] += 5               # read again: no restart needed
    silenced = policy.apply(alert(3, "10.10.1.50"))["watchkeeper"]["alert"]
    assert (silenced["status"], silenced["verdict"], silenced["suppressed_by"]) == (
        "closed", "benign_positive", rule.id)
    assert "incident_id" not in silenced
    assert policy.apply(alert(4, "192.0.2.9"))["watchkeeper"]["alert"]["status"] == "new"
    clock["now"] = NOW + 2 * DAY     # the expiry passes: the cached rule stops matching
    assert policy.apply(alert(5, "10.10.1.50"))["watchkeeper"]["alert"]["status"] == "new"
