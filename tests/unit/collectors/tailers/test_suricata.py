"""Suricata EVE (version 7 records) -> ECS."""
from __future__ import annotations

import json
import logging

import pytest
from communityid import CommunityID, FlowTuple

from watchkeeper import schema

from collectors.tailers.suricata import SEVERITY, SuricataParser


@pytest.fixture
def parser(ctx):
    return SuricataParser("/var/log/suricata/eve.json", ctx)


def parse(parser, obj):
    result = parser.parse(json.dumps(obj))
    if result.doc is not None:
        schema.validate(result.doc)
    return result


def test_alert_is_one_of_our_alerts(parser, samples):
    result = parse(parser, samples.EVE_ALERT)
    doc = result.doc
    assert result.outcome == "alert" and doc["event"]["kind"] == "alert"
    assert doc["rule"]["id"] == "suricata:2024897" and doc["rule"]["version"] == "4"
    assert doc["rule"]["name"].startswith("ET MALWARE")
    assert doc["watchkeeper"]["alert"]["category"] == "ids"
    assert doc["watchkeeper"]["alert"]["detector"] == "suricata"
    assert doc["event"]["severity"] == 3       # Suricata 1 (high) -> our high
    assert doc["threat"]["technique"] == {"id": ["T1041"], "name": ["Exfiltration Over C2 Channel"]}
    assert doc["source"] == {"ip": "10.1.20.7", "port": 51734}
    assert doc["@timestamp"] == "2024-03-11T10:15:02.123456Z"
    flow = parse(parser, dict(samples.EVE_ALERT, event_type="flow"))
    assert doc["watchkeeper"]["alert"]["evidence"] == [flow.doc["event"]["id"]]


def test_repeated_alert_keeps_its_id(parser, samples):
    later = dict(samples.EVE_ALERT, timestamp="2024-03-11T10:20:00.000000+0000")
    assert parse(parser, samples.EVE_ALERT).doc["event"]["id"] == parse(parser, later).doc["event"]["id"]


@pytest.mark.parametrize("suricata, ours", [(1, 3), (2, 2), (3, 1), (4, 1), (None, 2)])
def test_severity_mapping(parser, samples, suricata, ours):
    alert = dict(samples.EVE_ALERT["alert"], severity=suricata)
    assert parse(parser, dict(samples.EVE_ALERT, alert=alert)).doc["event"]["severity"] == ours
    assert set(SEVERITY.values()) <= {1, 2, 3}


def test_flow(parser, samples):
    doc = parse(parser, samples.EVE_FLOW).doc
    assert doc["event"]["dataset"] == schema.FLOW and doc["event"]["module"] == "suricata"
    assert doc["source"] == {"ip": "172.26.0.39", "port": 35958, "bytes": 622, "packets": 6}
    assert doc["destination"]["packets"] == 5 and doc["network"]["protocol"] == "tls"
    assert doc["watchkeeper"]["flow"]["conn_state"] == "SF"
    assert "orig_bytes" not in doc["watchkeeper"]["flow"]       # EVE has no payload counts
    assert doc["@timestamp"] == "2024-03-11T10:15:01.987654Z"   # flow start, as Zeek's ts


def test_community_id_kept_or_computed(parser, samples):
    # suricata-verify community-id-ipv4 expects this value for the flow (its config seeds 7)
    expected = "1:IwiTNfuO7aCaamMijl+7/X9uLx0="
    logging.getLogger("communityid").setLevel(logging.WARNING)
    seeded = CommunityID(seed=7).calc(FlowTuple.make_tcp("172.26.0.39", "172.217.14.206",
                                                         35958, 443))
    assert seeded == expected                   # same algorithm as Suricata
    kept = parse(parser, dict(samples.EVE_FLOW, community_id=expected)).doc
    assert kept["network"]["community_id"] == expected
    computed = parse(parser, samples.EVE_FLOW).doc   # no community_id in EVE: seed 0, ours
    assert computed["network"]["community_id"] == CommunityID(seed=0).calc(
        FlowTuple.make_tcp("172.26.0.39", "172.217.14.206", 35958, 443))


@pytest.mark.parametrize("tcp, to_client, state", [
    ({"tcp_flags_ts": "02", "tcp_flags_tc": "00"}, 0, "S0"),
    ({"tcp_flags_ts": "02", "tcp_flags_tc": "14"}, 1, "REJ"),
    ({"tcp_flags_ts": "1b", "tcp_flags_tc": "1b"}, 5, "SF"),
    ({"tcp_flags_ts": "1a", "tcp_flags_tc": "1a"}, 5, "S1"),
    ({"tcp_flags_ts": "18", "tcp_flags_tc": "18"}, 5, "OTH"),
])
def test_flow_conn_state_approximation(parser, samples, tcp, to_client, state):
    flow = dict(samples.EVE_FLOW["flow"], pkts_toclient=to_client)
    doc = parse(parser, dict(samples.EVE_FLOW, tcp=tcp, flow=flow)).doc
    assert doc["watchkeeper"]["flow"]["conn_state"] == state


def test_dns_http_tls(parser, samples):
    dns = parse(parser, samples.EVE_DNS).doc
    assert dns["event"]["dataset"] == schema.DNS
    assert dns["dns"]["question"] == {"name": "portal.gov.example", "type": "A"}
    assert dns["dns"]["response_code"] == "NOERROR" and dns["dns"]["resolved_ip"] == ["198.51.100.20"]
    v3 = dict(samples.EVE_DNS, dns={"version": 3, "type": "request", "id": 7,
                                    "queries": [{"rrname": "x.example", "rrtype": "AAAA"}]})
    assert parse(parser, v3).doc["dns"]["question"]["name"] == "x.example"
    http = parse(parser, samples.EVE_HTTP).doc
    assert http["http"]["request"]["method"] == "GET"
    assert http["http"]["response"]["status_code"] == 200
    assert http["url"]["domain"] == "update.example.net" and http["url"]["path"] == "/dl/agent.bin"
    assert http["user_agent"]["original"] == "curl/8.5.0"
    tls = parse(parser, samples.EVE_TLS).doc
    assert tls["tls"]["version"] == "1.3" and tls["tls"]["client"]["server_name"] == "portal.gov.example"


def test_other_types_ignored_bad_lines_malformed(parser, samples):
    assert parse(parser, samples.EVE_STATS).outcome == "ignored"
    assert parse(parser, dict(samples.EVE_ALERT, event_type="anomaly")).outcome == "ignored"
    assert parser.parse("{truncated").outcome == "malformed"
    assert parser.parse("[]").outcome == "malformed"
    no_sid = dict(samples.EVE_ALERT, alert={"signature": "x"})
    assert "signature_id" in parse(parser, no_sid).reason
    bad_time = dict(samples.EVE_HTTP, timestamp="XXXX")
    assert parse(parser, bad_time).outcome == "malformed"
