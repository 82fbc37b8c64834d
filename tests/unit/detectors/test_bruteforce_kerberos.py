"""Password guessing over Kerberos: AS exchanges seen on the wire (or in Zeek's kerberos.log)
are login tries for brute_force and account_attack, like sshd's log lines."""
from __future__ import annotations

import json

from collectors.tailers.common import Context
from collectors.tailers.zeek import ZeekParser
from detectors.account_attack import AccountAttackDetector
from detectors.base import replay
from detectors.bruteforce import BruteForceDetector
from watchkeeper import schema, timeutil
from watchkeeper.networks import InternalNetworks

T0 = 1_700_000_000.0
DC = "10.0.0.2"


def login(i, t, src, user, outcome, error=None):
    return {"@timestamp": timeutil.format(t),
            "event": {"id": f"k{i}", "kind": "event", "dataset": schema.KERBEROS,
                      "category": ["authentication"], "type": ["info"],
                      "action": "kerberos_as", "outcome": outcome, "module": "watchkeeper"},
            "source": {"ip": src, "port": 50000 + i}, "destination": {"ip": DC, "port": 88},
            "network": {"transport": "udp", "protocol": "krb", "direction": "internal"},
            "user": {"name": user},
            "watchkeeper": {"kerberos": {"request_type": "AS", "error_msg": error}}}


def windows_logon(i, t, src, user):
    """What every domain logon looks like: PREAUTH_REQUIRED, then the ticket."""
    return [login(2 * i, t, src, user, "unknown", "KDC_ERR_PREAUTH_REQUIRED"),
            login(2 * i + 1, t + 0.01, src, user, "success")]


def test_eight_wrong_passwords_in_two_minutes_are_guessing():
    tries = [login(i, T0 + 10 * i, "10.0.0.66", "administrator", "failure",
                   "KDC_ERR_PREAUTH_FAILED") for i in range(8)]
    alerts = replay(BruteForceDetector(), tries)
    assert len(alerts) == 1 and alerts[0].entity == "10.0.0.66"
    assert replay(BruteForceDetector(), tries[:7]) == []


def test_kerbrute_like_spray_then_a_hit_is_possible_compromise():
    users = ["admin", "bob", "svc-01", "hd01", "hd02", "admin02", "svc-02", "administrator",
             "backdoor"]
    tries = [login(i, T0 + i, "10.0.0.66", u, "failure",
                   "KDC_ERR_C_PRINCIPAL_UNKNOWN" if i < 7 else "KDC_ERR_PREAUTH_FAILED")
             for i, u in enumerate(users)]
    alerts = replay(BruteForceDetector(), tries + [login(99, T0 + 20, "10.0.0.66", "normal",
                                                         "success")])
    assert [a.severity for a in alerts][-1] == 4 and "normal" in alerts[-1].message


def test_domain_logons_and_a_typo_are_not_guessing():
    """A terminal server logging 40 users on, two of them mistyping once."""
    events = [e for i in range(40) for e in windows_logon(i, T0 + 3 * i, "10.0.0.30", f"u{i}")]
    events += [login(900 + i, T0 + 3 * i + 1, "10.0.0.30", f"u{i}", "failure",
                     "KDC_ERR_PREAUTH_FAILED") for i in (5, 17)]
    events.sort(key=lambda e: e["@timestamp"])
    assert replay(BruteForceDetector(), events) == []
    assert replay(AccountAttackDetector(), events) == []


def test_one_account_from_many_workstations_is_account_attack():
    tries = [login(i, T0 + 5 * i, f"10.0.1.{i}", "finance-admin", "failure",
                   "KDC_ERR_PREAUTH_FAILED") for i in range(10)]
    alerts = replay(AccountAttackDetector(), tries)
    assert alerts and alerts[0].entity == "user:finance-admin"


def test_zeek_kerberos_log_feeds_the_same_rule():
    parser = ZeekParser("/logs/kerberos.log", Context("sensor-1", InternalNetworks()))
    rows = [{"ts": T0 + 5 * i, "uid": f"Ck{i}", "id.orig_h": "10.0.0.66", "id.orig_p": 50000 + i,
             "id.resp_h": DC, "id.resp_p": 88, "request_type": "AS",
             "client": "Administrator/GOV.EXAMPLE", "service": "krbtgt/GOV.EXAMPLE",
             "success": False, "error_msg": "KDC_ERR_PREAUTH_FAILED"} for i in range(8)]
    docs = [parser.parse(json.dumps(r)).doc for r in rows]
    assert all(schema.validate(d) for d in docs)
    assert docs[0]["user"] == {"name": "administrator"} and docs[0]["event"]["outcome"] == "failure"
    assert len(replay(BruteForceDetector(), docs)) == 1
    tgs = parser.parse(json.dumps({**rows[0], "request_type": "TGS", "uid": "Ct"})).doc
    assert tgs["event"]["category"] == ["network"] and "outcome" not in tgs["event"]
