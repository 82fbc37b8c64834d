"""IOC detector: CSV and STIX feeds, lookups per observable, alerts per (indicator, host),
broken files, hot reload, expiry and snapshot/restore. Events come from the real builders
(flow_document, the Zeek tailer's mappers), so field names are the ones production emits."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from detectors.ioc import (IocConfig, IocDetector, IocIndex, Indicator, load_csv, load_stix,
                           severity)
from collectors.tailers.common import Context
from collectors.tailers.zeek_map import dns_doc, http_doc, tls_doc
from watchkeeper import schema, timeutil
from watchkeeper.documents import FlowRecord, alert_document, flow_document
from watchkeeper.networks import InternalNetworks

RULES = Path(__file__).resolve().parents[3] / "detectors" / "rules" / "ioc"
SAMPLES = (str(RULES / "sample_iocs.csv"), str(RULES / "sample_bundle.json"))
NETS = InternalNetworks()
CTX = Context("sensor-1", NETS)
T0 = 1_750_000_000.0


class Clock:
    """Stands in for time.monotonic, so hot-reload tests need no sleeping."""
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def flow(src, dst, t=T0, uid="C1"):
    rec = FlowRecord(uid=uid, start=t, end=t + 1, proto=6, orig_ip=src, orig_port=40000,
                     resp_ip=dst, resp_port=443, orig_pkts=3, resp_pkts=3, conn_state="SF")
    return flow_document(rec, "sensor-1", NETS)


def _zeek(t, uid, src="10.1.1.5", dst="10.1.1.53", port=53):
    return {"ts": t, "uid": uid, "id.orig_h": src, "id.orig_p": 50000, "id.resp_h": dst,
            "id.resp_p": port}


def dns(name, t=T0, uid="D1"):
    return dns_doc({**_zeek(t, uid), "query": name, "qtype_name": "A"}, "dns", CTX)


def http(host, uri, t=T0, uid="H1"):
    rec = {**_zeek(t, uid, dst="192.0.2.80", port=80), "host": host, "uri": uri, "method": "GET"}
    return http_doc(rec, "http", CTX)


def tls(sni, t=T0, uid="T1"):
    return tls_doc({**_zeek(t, uid, dst="192.0.2.44", port=443), "server_name": sni}, "ssl", CTX)


def _epoch(event):
    return timeutil.parse(event["@timestamp"])


def _run(det, events):
    return [a for e in events for a in det.on_event(e, _epoch(e))]


@pytest.fixture
def det():
    return IocDetector(IocConfig(paths=SAMPLES))


@pytest.mark.parametrize("event, value, host, technique", [
    (flow("10.1.1.5", "203.0.113.66"), "203.0.113.66", "10.1.1.5", "T1071"),     # CSV ip
    (flow("203.0.113.66", "10.1.1.9"), "203.0.113.66", "10.1.1.9", "T1071"),     # inbound
    (flow("10.1.1.5", "198.51.100.77"), "198.51.100.0/24", "10.1.1.5", "T1071"),  # CSV CIDR
    (flow("10.1.1.5", "203.0.113.200"), "203.0.113.128/25", "10.1.1.5", "T1071"),  # STIX ISSUBSET
    (flow("10.1.1.5", "192.0.2.200"), "192.0.2.200", "10.1.1.5", "T1071"),       # STIX OR
    (flow("fd00::5", "2001:db8:bad::1"), "2001:db8:bad::1", "fd00::5", "T1071"),  # IPv6
    (dns("evil.example"), "evil.example", "10.1.1.5", "T1071"),
    (dns("a.b.EVIL.example."), "evil.example", "10.1.1.5", "T1071"),             # subdomain
    (dns("login-gov.example"), "login-gov.example", "10.1.1.5", "T1566.002"),     # STIX ext ref
    (tls("cdn.evil.example"), "evil.example", "10.1.1.5", "T1071"),
    (http("downloads.example", "/tools/dropper.exe"),
     "http://downloads.example/tools/dropper.exe", "10.1.1.5", "T1071"),          # URL
    (http("www.evil.example", "/index.html"), "evil.example", "10.1.1.5", "T1071"),  # url.domain
])
def test_matches(det, event, value, host, technique):
    alerts = det.on_event(event, _epoch(event))
    assert [a.entity for a in alerts] == [f"{value}|{host}"]
    alert = alerts[0]
    assert alert.category == "ioc_match" and alert.technique_id == technique
    assert alert.evidence == [event["event"]["id"]]
    assert all(0 <= v <= 1 for v in alert.subscores.values())
    schema.validate(alert_document(alert, created=T0))


@pytest.mark.parametrize("event", [
    flow("10.1.1.5", "203.0.113.65"),          # next to the CSV address
    flow("10.1.1.5", "203.0.113.127"),         # just below the STIX /25
    flow("10.1.1.5", "198.51.101.1"),          # just above the CSV /24
    dns("notevil.example"),                    # suffix, but not on a label boundary
    dns("evil.example.org"),
    tls("www.example"),
    http("downloads.example", "/tools/readme.txt"),
])
def test_benign_does_not_match(det, event):
    assert det.on_event(event, _epoch(event)) == []


def test_severity_follows_confidence(det):
    by_value = {a.entity.split("|")[0]: a.severity
                for e in (flow("10.1.1.5", "203.0.113.66"), dns("evil.example"),
                          flow("fd00::5", "2001:db8:bad::1"))
                for a in det.on_event(e, _epoch(e))}
    assert by_value == {"203.0.113.66": 4, "evil.example": 3, "2001:db8:bad::1": 1}
    assert [severity(c) for c in (0, 29, 30, 59, 60, 84, 85, 100)] == [1, 1, 2, 2, 3, 3, 4, 4]


def test_repeats_update_one_alert_and_timer_flushes_the_count(det):
    events = [dns("evil.example", t=T0 + i, uid=f"D{i}") for i in range(10)]
    alerts = _run(det, events)
    assert [a.count for a in alerts] == [1, 2, 4, 8]          # first hit, then each doubling
    assert len({(a.entity, a.first_seen) for a in alerts}) == 1
    [update] = det.on_timer(T0 + 9 + det.config.update_seconds)
    assert update.count == 10 and update.last_seen == T0 + 9
    assert det.on_timer(T0 + 9 + 2 * det.config.update_seconds) == []   # nothing new


def test_one_alert_per_internal_host(det):
    alerts = _run(det, [flow("203.0.113.66", f"10.1.1.{i}", uid=f"C{i}") for i in range(3)])
    assert sorted(a.entity for a in alerts) == [f"203.0.113.66|10.1.1.{i}" for i in range(3)]


def test_a_resolver_relaying_a_lookup_is_not_the_host_that_asked(det):
    asked = dns("evil.example", uid="D1")
    relayed = dns("evil.example", t=T0 + 0.01, uid="D2")
    relayed["source"]["ip"] = "10.1.1.53"                       # the resolver, asking upstream
    relayed["watchkeeper"]["dns"] = {"forwarded_for": "10.1.1.5"}
    alerts = _run(det, [asked, relayed])
    assert {a.entity for a in alerts} == {"evil.example|10.1.1.5"}    # one actor, the client


def test_state_expires_and_survives_json(det):
    _run(det, [dns("evil.example")])
    copy = IocDetector(det.config)
    copy.restore(json.loads(json.dumps(det.snapshot())))
    [again] = copy.on_event(dns("evil.example", t=T0 + 5, uid="D2"), T0 + 5)
    assert again.count == 2 and again.first_seen == T0             # resumed, not restarted
    copy.on_timer(T0 + 5 + copy.config.idle_seconds + 1)
    assert copy.snapshot() == {"hits": {}}


def test_tracked_pairs_are_bounded():
    det = IocDetector(IocConfig(paths=SAMPLES, max_tracked=100))
    _run(det, [flow(f"10.2.{i // 250}.{i % 250}", "203.0.113.66", uid=f"C{i}")
               for i in range(300)])
    assert len(det.snapshot()["hits"]) == 100


def test_index_overlapping_networks_prefers_the_narrowest():
    rows = [("ip", "10.0.0.0/8"), ("ip", "10.20.0.0/16"), ("ip", "10.20.30.0/24"),
            ("ip", "11.0.0.0/8")]
    index = IocIndex([Indicator(k, v, "t", 50, "", "t") for k, v in rows])
    assert index.ip("10.20.30.4").value == "10.20.30.0/24"
    assert index.ip("10.20.99.1").value == "10.20.0.0/16"
    assert index.ip("10.99.0.1").value == "10.0.0.0/8"
    assert index.ip("12.0.0.1") is None and index.ip("not-an-ip") is None


# --- files: every error is collected with its place, a broken file changes nothing ------------
BAD_CSV = """type,value,source,confidence,description
ip,203.0.113.9,feed,90,good
ip,999.1.1.1,feed,90,bad address
domain,bad_domain!,feed,50,bad name
hash,abcdef,feed,50,unsupported type
ip,203.0.113.10,feed,150,bad confidence
url,not a url,feed,50,relative
domain,fine.example,feed,,no confidence
"""


def test_csv_collects_every_error_with_its_line(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(BAD_CSV)
    result = load_csv(path)
    assert [i.value for i in result.items] == ["203.0.113.9", "fine.example"]
    assert [e.split(": ")[0] for e in result.errors] == [f"{path}:{n}" for n in (3, 4, 5, 6, 7)]
    assert not result.fatal


def _indicator(uid, pattern, **extra):
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uid}",
            "created": "2025-01-10T00:00:00.000Z", "modified": "2025-01-10T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2025-01-10T00:00:00Z",
            **extra}


U = "00000000-0000-4000-8000-00000000000"


def test_stix_collects_every_unsupported_pattern_with_its_object_id(tmp_path):
    objects = [
        _indicator(U + "1", "[domain-name:value = 'ok.example']"),
        _indicator(U + "2", "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"),
        _indicator(U + "3", "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x.example']"),
        _indicator(U + "4", "[domain-name:value = 'a.example'] FOLLOWEDBY "
                            "[domain-name:value = 'b.example'] WITHIN 60 SECONDS"),
        _indicator(U + "5", "[ipv4-addr:value = "),                          # syntax error
        _indicator(U + "6", "[domain-name:value = 'gone.example']", revoked=True),
        _indicator(U + "7", "[url:value = 'https://ok.example/x']",
                   valid_until="2025-02-01T00:00:00Z"),
        {"type": "indicator", "id": "indicator--broken"},                     # not valid STIX
    ]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{U}9", "objects": objects}))
    result = load_stix(path)
    assert sorted(i.value for i in result.items) == ["https://ok.example/x", "ok.example"]
    failed = [e.split(": ")[1] for e in result.errors]
    assert failed == [f"indicator--{U}{n}" for n in (2, 3, 4, 5)] + ["indicator--broken"]
    assert all(e.startswith(f"{path}: ") for e in result.errors)


def test_expired_stix_indicator_stops_matching_on_event_time(tmp_path):
    path = tmp_path / "b.json"
    obj = _indicator(U + "1", "[domain-name:value = 'old.example']",
                     valid_until="2025-06-01T00:00:00Z")
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{U}9", "objects": [obj]}))
    det = IocDetector(IocConfig(paths=(str(path),)))
    before, after = 1_748_000_000.0, 1_749_000_000.0       # 2025-05-23, 2025-06-04
    assert det.on_event(dns("old.example", t=before), before)
    assert det.on_event(dns("old.example", t=after, uid="D2"), after) == []


@pytest.mark.parametrize("name, text", [
    ("feed.csv", "kind,indicator\nip,1.2.3.4\n"),            # wrong header
    ("feed.json", "{not json"),
    ("feed.json", '{"type": "indicator"}'),                  # not a bundle
    ("feed.txt", "1.2.3.4\n"),                               # unknown format
])
def test_broken_file_is_reported_and_loads_nothing(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    det = IocDetector(IocConfig(paths=(str(path),)))
    assert det.index.size == 0
    assert det.files.all_errors() and all(str(path) in e for e in det.files.all_errors())


def _touch(path: Path, text: str, bump: int):
    path.write_text(text)
    stamp = path.stat().st_mtime_ns + bump * 1_000_000_000     # mtime moves even within 1 s
    os.utime(path, ns=(stamp, stamp))


def test_hot_reload_on_wall_clock_keeps_old_set_when_broken(tmp_path):
    path, clock = tmp_path / "feed.csv", Clock()
    _touch(path, "type,value\ndomain,first.example\n", 0)
    det = IocDetector(IocConfig(paths=(str(path),), reload_seconds=30), clock=clock)

    def names(event_name):
        det.on_event(dns(event_name), T0)                 # the event drives the reload check
        return [m.indicator.value for m in det.matches(dns(event_name))]

    assert names("first.example") == ["first.example"]
    _touch(path, "type,value\ndomain,second.example\n", 1)
    assert names("second.example") == []                 # changed, but not checked yet
    clock.now = 31
    assert names("second.example") == ["second.example"]  # reloaded
    assert names("first.example") == []

    _touch(path, "{garbage", 2)                           # a broken replacement
    clock.now = 62
    assert names("second.example") == ["second.example"]  # the old set is kept
    assert any("missing column" in e for e in det.files.all_errors())

    path.unlink()                                         # mid-replacement: keep it too
    clock.now = 93
    assert names("second.example") == ["second.example"]
    _touch(path, "type,value\ndomain,third.example\n", 3)
    clock.now = 124
    assert names("third.example") == ["third.example"] and det.files.all_errors() == []


def test_directory_picks_up_new_files(tmp_path):
    clock = Clock()
    det = IocDetector(IocConfig(paths=(str(tmp_path),), reload_seconds=5), clock=clock)
    assert det.index.size == 0
    (tmp_path / "new.csv").write_text("type,value\nip,192.0.2.99\n")
    clock.now = 6
    assert det.on_event(flow("10.1.1.5", "192.0.2.99"), T0)


def test_shipped_samples_load_cleanly(det):
    assert det.files.all_errors() == [] and det.index.size == 9


@pytest.mark.parametrize("params", [{"reload_seconds": 0}, {"paths": "x", "unknown": 1},
                                    {"default_confidence": 101}, {"max_tracked": 1},
                                    {"idle_seconds": 1}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        IocConfig(**params)
