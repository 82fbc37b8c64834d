"""The shipped playbooks (playbooks/library), each run end to end on a real SQLite store,
a real SMTP server and the dry-run firewall."""
from __future__ import annotations

import pytest

from playbooks.engine import Engine
from playbooks.loader import SHIPPED, Library
from playbooks.settings import PlaybookSettings
from tests.playbooks_support import Clock, make_alert
from tests.unit.playbooks.test_notify import smtp  # noqa: F401  (the aiosmtpd fixture)
from watchkeeper import timeutil
from watchkeeper.store import Query, runs


@pytest.fixture
def shipped(store, smtp):  # noqa: F811
    inbox, port = smtp
    clock = Clock()
    settings = PlaybookSettings(smtp_port=port, duty_officer=["duty@example.gov.cn"])
    engine = Engine(store, Library([SHIPPED]), settings, clock=clock)
    return engine, clock, inbox


def _runs(store, playbook):
    query = Query(terms={"event.dataset": [runs.RUN], "watchkeeper.run.playbook": [playbook]},
                  order="asc", limit=1000)
    return [d["watchkeeper"]["run"] for d in store.search("runs", query).items]


def _audit(store, action):
    return [a for a in store.scan("audit", Query(order="asc"))
            if a["event"].get("action") == action]


def test_block_external_scanner_blocks_then_asks_above_the_rate(store, shipped):
    engine, clock, _ = shipped
    for i in range(21):
        engine.on_alert(make_alert(source=f"203.0.113.{i + 1}"))
        clock.now += 1
    engine.tick()
    done = _runs(store, "block-external-scanner")
    assert [r["status"] for r in done] == ["succeeded"] * 20 + ["waiting"]
    first = done[0]["steps"]
    assert first["approve"]["outcome"] == "skipped"
    assert first["block"]["output"]["dry_run"] is True
    assert "203.0.113.1 timeout 3600s" in first["block"]["output"]["ruleset"]
    assert first["lookup"]["output"]["internal"] is False
    assert len(_audit(store, "alert.comment")) == 20
    assert done[20]["steps"]["approve"]["output"]["reason"].startswith("封禁扫描源 203.0.113.21")


def test_block_external_scanner_refuses_an_internal_scanner_and_escalates(store, shipped):
    engine, _, _ = shipped
    [rid] = engine.on_alert(make_alert(source="10.9.1.5"))
    engine.tick()
    run = runs.get_run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "escalated"
    assert "internal" in run["steps"]["block"]["output"]["refused"]
    assert _audit(store, "playbook.run.escalated")
    # The incident timeline says it in zh-CN, the English stays in the audit and the run.
    incident = {"event": {"id": "inc-x"}, "watchkeeper": {"incident": {
        "alerts": [run["trigger"]["object_id"]]}}}
    lines = {e.kind: e for e in runs.timeline_entries(store, incident)}
    assert "已升级人工处置（步骤 block：拒绝封禁：10.9.1.5 是内部地址" in \
        lines["playbook.run"].summary_zh
    steps = [e.summary_zh for e in runs.timeline_entries(store, incident)
             if e.kind == "playbook.step"]
    assert any("拒绝封禁：10.9.1.5 是内部地址" in s for s in steps), steps
    assert run["message"].startswith("step block: block refused: 10.9.1.5 is internal")


def test_brute_force_success_mails_the_duty_officer_and_opens_an_incident(store, shipped):
    engine, _, inbox = shipped
    alert = make_alert(source="198.51.100.4", category="brute_force", severity=4,
                       message="password guessing from 198.51.100.4: 40 failed logins; then "
                               "login succeeded for 'root': possible compromise",
                       rule__id="wk.brute_force.guessing")
    alert["watchkeeper"]["alert"]["incident_id"] = "inc-1"
    assert engine.on_alert(make_alert(source="198.51.100.5", category="brute_force",
                                      severity=3, rule__id="wk.brute_force.guessing")) == []
    [rid] = engine.on_alert(alert)
    engine.tick()
    run = runs.get_run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "succeeded", run
    [incident] = store.get_by_ids("incidents", ["inc-1"])
    assert incident["watchkeeper"]["incident"]["status"] == "investigating"
    [mail] = inbox.mails
    assert mail["To"] == "duty@example.gov.cn"
    body = mail.get_payload(decode=True).decode()
    assert "inc-1" in body and "password guessing" in body    # no zh-CN wording: the message


def test_exfiltration_from_an_mlps3_asset_is_graded_III_with_a_clock(store, shipped):
    engine, clock, _ = shipped
    low = make_alert(source="10.20.1.9", category="exfiltration", severity=3)
    low["watchkeeper"]["asset"] = {"source": {"mlps_level": 2}}
    assert engine.on_alert(low) == []
    alert = make_alert(source="10.20.1.8", category="exfiltration", severity=3)
    alert["watchkeeper"]["asset"] = {"source": {"mlps_level": 3, "site": "county-a1"}}
    [rid] = engine.on_alert(alert)
    engine.tick()
    run = runs.get_run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "succeeded", run
    iid = run["steps"]["incident"]["output"]["incident_id"]
    [incident] = store.get_by_ids("incidents", [iid])
    info = incident["watchkeeper"]["incident"]
    assert info["level"] == "III" and info["warning_colour"] == "yellow"
    assert info["level_set_by"] == "playbook:exfiltration-mlps3"
    # the spine's clock: from discovery (the alert's first event), 4 h for an "other" site
    from tests.playbooks_support import T0
    assert run["steps"]["grade"]["output"]["report_due"] == timeutil.format(T0 + 4 * 3600)
    comments = _audit(store, "incident.comment")
    assert comments and comments[0]["watchkeeper"]["audit"]["object_id"] == iid


def test_silent_collector_notifies(store, shipped):
    engine, _, inbox = shipped
    alert = make_alert(source="10.0.0.2", category="anomaly", severity=2,
                       rule__id="wk.collector.silent", observer__name="netflow-edge-1",
                       message="collector netflow-edge-1 silent for 300 s")
    [rid] = engine.on_alert(alert)
    engine.tick()
    assert runs.get_run(store, rid)["watchkeeper"]["run"]["status"] == "succeeded"
    [mail] = inbox.mails
    assert "netflow-edge-1" in mail.get_payload(decode=True).decode()


def test_brute_force_success_matches_what_the_detector_really_raises(store, shipped):
    """The playbook's condition against the real detector's alerts, not a hand-made one."""
    from detectors.bruteforce import BruteForceDetector
    from tests.unit.detectors.test_bruteforce import T0, _run, accepted, compromise
    from watchkeeper.documents import alert_document
    engine, _, inbox = shipped
    specs = _run(BruteForceDetector(), compromise() + accepted(T0 + 70))
    assert [s.severity for s in specs] == [2, 4]
    started = [engine.on_alert(alert_document(s, created=T0 + 80)) for s in specs]
    assert [len(r) for r in started] == [0, 1]           # only the success starts the playbook
    engine.tick()
    assert runs.get_run(store, started[1][0])["watchkeeper"]["run"]["status"] == "succeeded"
    [mail] = inbox.mails
    assert "疑似账号失陷" in mail.get_payload(decode=True).decode()   # the detector's zh-CN


def test_exfiltration_mlps3_matches_the_real_detector_with_asset_context(store, shipped):
    """The real exfiltration detector's alert, given asset context by the real inventory
    lookup (a level-3 system), starts the grading playbook; the same from a level-2 one not."""
    import ipaddress

    from alerting.context import AlertContext
    from detectors.exfil import ExfilDetector
    from tests.unit.detectors.test_exfil import HOST, MB, T, _run, history, spike
    from watchkeeper.assets import Asset, Inventory, Site
    from watchkeeper.documents import alert_document
    engine, _, _ = shipped
    det = ExfilDetector()
    _run(det, history())
    specs = _run(det, spike(total=1200 * MB))     # >= 10x the floor: the detector says high
    assert specs and specs[-1].source_ip == HOST
    raised = {}
    for level in (2, 3):
        inventory = Inventory(sites={"county-a1": Site(id="county-a1", name="A1县")})
        inventory._nets[4].append((ipaddress.ip_network("10.0.0.0/24"),
                                   Asset(cidr="10.0.0.0/24", site="county-a1", mlps_level=level)))
        alert = AlertContext(inventory).apply(alert_document(specs[-1], created=T + 4000))
        raised[level] = alert
    assert raised[3]["event"]["severity"] >= 3, raised[3]["event"]
    assert engine.on_alert(raised[2]) == []
    [rid] = engine.on_alert(raised[3])
    engine.tick()
    run = runs.get_run(store, rid)["watchkeeper"]["run"]
    assert run["status"] == "succeeded" and run["steps"]["grade"]["output"]["level"] == "III"
