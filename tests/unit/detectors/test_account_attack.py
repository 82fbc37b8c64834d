"""One account guessed from many sources (account_attack), through the real sshd parsers."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from detectors import registry
from detectors.account_attack import AccountAttackConfig, AccountAttackDetector
from detectors.bruteforce import BruteForceDetector
from tests.unit.detectors.ongoing import assert_kept_current
from tests.unit.detectors.test_bruteforce import (
    T0, _run, accepted, failed, hydra_connection, invalid)


def rotating_proxies(n=12, gap=6.0, user="admin"):
    """A botnet: one try per source, each from a new address, against one account."""
    events = []
    for i in range(n):
        events += failed(T0 + i * gap, user=user, src=f"198.51.100.{10 + i}", port=40000 + i)
    return events


def test_one_account_from_many_sources_is_named_within_eight_failures():
    alerts = _run(AccountAttackDetector(), rotating_proxies())
    assert alerts and alerts[0].count == 8 and alerts[0].entity == "user:admin"
    assert len(alerts[0].related_ips) == 8 and alerts[0].technique_id == "T1110.001"
    # No source failed more than once: the per-source rules of brute_force see nothing.
    assert _run(BruteForceDetector(), rotating_proxies()) == []


def test_success_after_failures_raises_severity_and_names_the_source():
    events = rotating_proxies() + accepted(T0 + 100, user="admin", src="198.51.100.99")
    alerts = _run(AccountAttackDetector(), events)
    last = alerts[-1]
    assert last.severity == 4 and last.source_ip == "198.51.100.99"
    assert "possible compromise" in last.message


@pytest.mark.parametrize("events", [
    # a user mistyping on laptop, phone and VPN, then logging in
    [e for i, src in enumerate(["10.0.0.5", "10.0.0.6", "10.8.0.9"])
     for e in failed(T0 + i * 30, user="zhang.san", src=src, port=41000 + i)]
    + accepted(T0 + 120, user="zhang.san", src="10.0.0.5"),
    # one source guessing one account: brute_force's business, not this detector's
    [e for i in range(20) for e in failed(T0 + i * 3, user="root", port=42000 + i)],
    # many accounts, one try each, from many sources: no account reaches 8 failures
    [e for i in range(30) for e in invalid(T0 + i * 2, f"user{i}", src=f"198.51.100.{i}",
                                            port=43000 + i)],
])
def test_look_alikes_stay_quiet(events):
    assert _run(AccountAttackDetector(), events) == []


def test_invalid_user_lines_count_once_per_try():
    events = [e for i in range(7) for e in invalid(T0 + i * 5, "oracle", src=f"198.51.100.{i}",
                                                   port=44000 + i)]
    assert _run(AccountAttackDetector(), events) == []          # 7 tries, not 14
    events += invalid(T0 + 40, "oracle", src="198.51.100.50", port=44100)
    assert [a.count for a in _run(AccountAttackDetector(), events)] == [8]


def test_snapshot_restore_and_expiry():
    events = rotating_proxies(n=20)
    whole = [asdict(a) for a in _run(AccountAttackDetector(), events)]
    first = AccountAttackDetector()
    head = _run(first, events[:12])
    second = AccountAttackDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    tail = _run(second, events[12:])
    assert [asdict(a) for a in head + tail] == whole
    second.on_timer(T0 + 20 * 6 + second.config.window_seconds + 1)
    assert second.snapshot()["accounts"] == {}


def test_registered_and_keyed_by_account():
    cls = registry.available()["account_attack"]
    assert cls.key_field == "user.name" and cls.category == "brute_force"
    with pytest.raises(ValueError):
        AccountAttackConfig(min_sources=1)


def test_each_password_on_an_unknown_accounts_connection_counts():
    # sshd logs one "Failed password for invalid user" per password of a connection: five
    # proxies trying two passwords each are ten tries (they were five before: no alert)
    events = [e for i in range(5)
              for e in hydra_connection(T0 + i * 10, ["oracle"], 2, src=f"198.51.100.{i}",
                                        port=45000 + i)]
    alerts = _run(AccountAttackDetector(), events)
    assert alerts and alerts[0].entity == "user:oracle" and alerts[0].count == 9
    assert len(alerts[0].related_ips) == 5


def test_a_long_botnet_attack_keeps_its_alert_current():
    # Twenty minutes of one try every 6 s, each from a new address: the 15-minute window
    # fills at 150 failures, so doubling alone raised nothing after the 128th (~13 min in).
    assert_kept_current(_run(AccountAttackDetector(), rotating_proxies(n=200)), T0 + 199 * 6.0)


def _clock(start, n=12, gap=10.0):
    """Another user's logins: traffic that moves event time on, raising nothing."""
    return [e for i in range(n) for e in accepted(start + i * gap, "bob", "10.0.0.99")]


def test_guessing_that_stops_is_stored_with_its_final_count():
    # Raised at 8 failures; 12 in all never doubles 8. A refresh period (60 s) after the last
    # try the final count is sent, once, and it still names a compromise that came between.
    alerts = _run(AccountAttackDetector(), rotating_proxies() + _clock(T0 + 70))
    assert [a.count for a in alerts] == [8, 12]
    assert alerts[-1].first_seen == alerts[0].first_seen and alerts[-1].last_seen == T0 + 66
    quiet_50s = _run(AccountAttackDetector(), rotating_proxies() + _clock(T0 + 70, n=4))
    assert [a.count for a in quiet_50s] == [8]
    events = (rotating_proxies(n=9) + accepted(T0 + 50, user="admin", src="198.51.100.99")
              + rotating_proxies(n=14)[18:] + _clock(T0 + 90))   # two lines a try
    alerts = _run(AccountAttackDetector(), events)
    assert [(a.severity, a.count) for a in alerts] == [(3, 8), (4, 9), (4, 14)]
    assert "possible compromise" in alerts[-1].message and alerts[-1].source_ip == "198.51.100.99"
