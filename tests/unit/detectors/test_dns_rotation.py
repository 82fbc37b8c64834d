"""dns_tunneling's rotation rule: an idle tunnel's failing polls, each under another domain, on a
clock (detectors/dns_rotation.py) — and the failing look-ups of benign hosts that must not add
up to one."""
from __future__ import annotations

import random
import string

from detectors.dns import DnsTunnelDetector

ROTATED = [f"{word}.{tld}" for word, tld in [
    ("onedrive", "agency"), ("corewindows", "agency"), ("sharepoint", "agency"),
    ("microsoftonline", "agency"), ("skydrive", "services"), ("0ffice365", "life"),
    ("0nedrive", "agency"), ("officeupdate", "zone"), ("msdn-cdn", "stream"),
    ("winupdates", "bid")]]
TYPES = ["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "SOA"]


def _event(i, name, src="10.0.0.9", qtype="A", rcode="SERVFAIL", kind="answer"):
    dns = {"type": kind, "question": {"name": name, "type": qtype}}
    if rcode is not None:
        dns["response_code"] = rcode
    return {"event": {"id": f"e{i}", "dataset": "watchkeeper.dns"}, "source": {"ip": src},
            "dns": dns}


def _run(events, det=None):
    det = det or DnsTunnelDetector()
    alerts = []
    for n, (event, now) in enumerate(sorted(events, key=lambda e: e[1])):
        alerts += det.on_event(event, now)
        if n % 50 == 0:
            alerts += det.on_timer(now)
    return alerts


def idle_rotation(polls=20, period=6.0, jitter=0.1, domains=ROTATED, label=None, rcode="SERVFAIL",
                  seed=1, start=1000.0):
    """A poll every `period` s (+- jitter) under the next domain, each retried once, each
    preceded by an answered reverse look-up of the resolver (as the recorded implant does)."""
    rng = random.Random(seed)
    events, now = [], start
    prefix = "".join(rng.choice(string.ascii_lowercase) for _ in range(4))
    for i in range(polls):
        name = (label or prefix + "".join(rng.choice(string.ascii_lowercase) for _ in range(5))) \
            + "." + domains[i % len(domains)]
        qtype = TYPES[i % len(TYPES)]
        kind = "query" if rcode is None else "answer"
        events.append((_event(3 * i, "8.8.8.8.in-addr.arpa", qtype="PTR", rcode="NOERROR"), now))
        events.append((_event(3 * i + 1, name, qtype=qtype, rcode=rcode, kind=kind), now + 0.01))
        events.append((_event(3 * i + 2, name, qtype=qtype, rcode=rcode, kind=kind),
                       now + 2.0))
        now += period * (1 + rng.uniform(-jitter, jitter))
    return events


def test_idle_rotated_tunnel_answered_servfail_is_named_at_its_13th_poll():
    alerts = _run(idle_rotation())
    assert [(a.rule_id, a.entity) for a in alerts] == \
        [("wk.dns_tunneling.rotation", "10.0.0.9->*")]
    alert = alerts[0]
    assert alert.count == 13 and alert.source_ip == "10.0.0.9" and alert.severity == 2
    assert "10 registered domains" in alert.message and "every 6 s" in alert.message


def test_unanswered_polls_with_one_repeated_label_are_named_too():
    # No response at all (the operator's server is silent), one label under every domain.
    alerts = _run(idle_rotation(label="111-21818-617", rcode=None, period=7.0))
    assert [a.rule_id for a in alerts] == ["wk.dns_tunneling.rotation"]


def test_a_slow_poll_every_five_minutes_is_named_within_the_window():
    alerts = _run(idle_rotation(period=300.0, jitter=0.2, rcode="NXDOMAIN"))
    assert [a.rule_id for a in alerts] == ["wk.dns_tunneling.rotation"]


def test_query_records_withdrawn_by_their_answers_are_not_failures():
    # Suricata writes a query and its answer as two records: the query alone is not a failure.
    events = []
    for event, now in idle_rotation(rcode=None):
        events.append((event, now))
        if event["dns"]["question"]["type"] != "PTR":
            answer = _event(event["event"]["id"] + "a", event["dns"]["question"]["name"],
                            rcode="NOERROR")
            events.append((answer, now + 0.005))
    assert _run(events) == []


def test_rotation_over_fewer_domains_than_the_floor_stays_quiet():
    assert _run(idle_rotation(domains=ROTATED[:4])) == []


def test_irregular_polls_stay_quiet():
    assert _run(idle_rotation(jitter=0.9, polls=40)) == []


def test_rhythm_survives_a_restore():
    events = idle_rotation()
    first = DnsTunnelDetector()
    assert _run(events[:18], first) == []
    second = DnsTunnelDetector()
    second.restore(first.snapshot())
    assert [a.rule_id for a in _run(events[18:], second)] == ["wk.dns_tunneling.rotation"]


# ---- benign hosts whose look-ups fail ------------------------------------------------------

def test_resolver_outage_each_application_retrying_its_own_domain_stays_quiet():
    apps = {"update.microsoft.com": 30, "config.edge.skype.com": 40, "dns.msftncsi.com": 50,
            "outlook.office365.com": 60, "clients4.google.com": 75, "api.github.com": 90}
    events = [(_event(f"{d}{k}", d, rcode="SERVFAIL"), 1000.0 + offset * 3 + k * period)
              for offset, (d, period) in enumerate(apps.items()) for k in range(60)]
    assert _run(events) == []


def test_monitor_checking_dead_names_in_one_burst_per_round_stays_quiet():
    dead = [f"old-host{i}.{d}" for i, d in enumerate(ROTATED[:8])]
    events = [(_event(f"{r}-{i}", name, rcode="NXDOMAIN"), 1000.0 + 60 * r + 0.05 * i)
              for r in range(30) for i, name in enumerate(dead)]
    assert _run(events) == []


def test_mail_servers_blocklist_lookups_stay_quiet():
    rng = random.Random(7)
    zones = ["bl.spamcop.net", "b.barracudacentral.org", "dnsbl.sorbs.net", "psbl.surriel.com",
             "bl.mailspike.net", "dnsbl-1.uceprotect.net"]
    events, now = [], 1000.0
    for m in range(200):
        ip = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
        for z, zone in enumerate(zones):
            events.append((_event(f"{m}-{z}", f"{ip}.{zone}", rcode="NXDOMAIN", src="10.0.0.25"),
                           now + 0.01 * z))
        now += rng.expovariate(1 / 20)
    assert _run(events) == []


def test_one_dead_name_polled_on_a_clock_stays_quiet():
    events = [(_event(i, "license.vendor-gone.com", rcode="NXDOMAIN"), 1000.0 + 30 * i)
              for i in range(60)]
    assert _run(events) == []


def test_browsing_through_a_failing_resolver_stays_quiet():
    rng = random.Random(3)
    sites = [f"site{i}.example{i % 7}.com" for i in range(300)]
    events, now = [], 1000.0
    for i in range(300):
        events.append((_event(i, rng.choice(sites), rcode="SERVFAIL"), now))
        now += rng.expovariate(1 / 8)
    assert _run(events) == []


def test_a_sweep_that_never_comes_back_to_a_domain_is_left_to_the_dga_detector():
    rng = random.Random(5)
    domains = ["".join(rng.choice(string.ascii_lowercase) for _ in range(10)) + ".com"
               for _ in range(40)]
    alerts = _run(idle_rotation(polls=40, domains=domains, rcode="NXDOMAIN"))
    assert [a for a in alerts if a.rule_id == "wk.dns_tunneling.rotation"] == []
