"""Whatever a line holds, parsing never raises: it yields a document or a reason."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from watchkeeper import schema
from watchkeeper.networks import InternalNetworks

from collectors.tailers.common import Context
from collectors.tailers.suricata import SuricataParser
from collectors.tailers.zeek import ZeekParser

CTX = Context("sensor-1", InternalNetworks())   # hypothesis reuses no function fixtures
KEYS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
        "orig_bytes", "query", "answers", "TTLs", "_path", "timestamp", "event_type", "src_ip",
        "dest_ip", "src_port", "alert", "flow", "dns", "http", "tls", "proto", "community_id"]
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20) \
    | st.sampled_from(["10.0.0.1", "::1", "conn", "dns", "alert", "flow", "TCP", "udp", "-"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS + ["signature_id", "start", "rrname"]),
                                        inner, max_size=4), max_leaves=12)
records = st.dictionaries(st.sampled_from(KEYS), values, max_size=10)
raw_lines = st.text(max_size=200) | st.text(alphabet="\t#-,(){}\"\\x0123456789.abcTF:", max_size=120)


def check(parser, line: str) -> None:
    result = parser.parse(line)
    assert result.outcome in ("event", "alert", "header", "ignored", "malformed")
    if result.outcome == "malformed":
        assert result.reason
    if result.doc is not None:
        try:
            schema.validate(result.doc)
        except schema.ValidationError:
            pass    # allowed: the publisher dead-letters it; we only require no exception here


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(raw_lines, max_size=8))
def test_zeek_random_lines(samples, lines):
    parser = ZeekParser("/logs/conn.log", CTX)
    for line in samples.CONN_HEADER.splitlines() + lines:
        check(parser, line)


@settings(max_examples=300, deadline=None)
@given(record=records, log=st.sampled_from(["conn", "dns", "http", "ssl", "ssh", "ftp", "notice"]))
def test_zeek_random_json(record, log):
    check(ZeekParser(f"/logs/{log}.log", CTX), json.dumps(record, default=str))


@settings(max_examples=300, deadline=None)
@given(record=records, kind=st.sampled_from(["alert", "flow", "dns", "http", "tls", "stats"]),
       line=raw_lines)
def test_suricata_random(record, kind, line):
    parser = SuricataParser("eve.json", CTX)
    check(parser, json.dumps(dict(record, event_type=kind), default=str))
    check(parser, line)


def test_pathological_inputs():
    zeek, eve = ZeekParser("/logs/dns.log", CTX), SuricataParser("eve.json", CTX)
    for line in ("[" * 100_000, '{"a":' * 50_000,
                 '{"ts": 1710152102.5, "id.orig_h": "10.0.0.1", "TTLs": [Infinity, NaN], '
                 '"answers": ["a", "b"], "query": "x"}',
                 '{"ts": 1e308}', '{"ts": -1}', '{"ts": "2024-03-11T10:15:02"}'):
        check(zeek, line)
        check(eve, line.replace('"ts"', '"timestamp"', 1).replace("{", '{"event_type": "dns", ', 1))
