"""Event model: valid documents pass unchanged; invalid ones fail with the field named."""
from __future__ import annotations

import copy
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper import schema
from watchkeeper.documents import AlertSpec, FlowRecord, alert_document, community_id, flow_document
from watchkeeper.networks import InternalNetworks

FLOW = flow_document(FlowRecord(uid="C1", start=1.7e9, end=1.7e9 + 2, proto=6, orig_ip="10.0.0.1",
                                orig_port=5555, resp_ip="93.184.216.34", resp_port=443,
                                orig_pkts=5, resp_pkts=4, orig_ip_bytes=400, resp_ip_bytes=900,
                                conn_state="SF"), "s1", InternalNetworks())
ALERT = alert_document(AlertSpec("scan", "1", "scan", "wk.scan", "Port scan", 2, "m", "10.0.0.1",
                                 1.7e9, 1.7e9 + 9, source_ip="10.0.0.1",
                                 subscores={"fanout": 0.4}), created=1.7e9 + 10)


def _with(doc: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(last)
    else:
        node[last] = value
    return out


_DELETE = object()


def test_valid_documents_pass_unchanged():
    for doc in (FLOW, ALERT):
        before = copy.deepcopy(doc)
        assert schema.validate(doc) is doc and doc == before


@pytest.mark.parametrize("base, field, value, named", [
    (FLOW, "@timestamp", "yesterday", "@timestamp"),
    (FLOW, "@timestamp", "2026-01-01T00:00:00", "@timestamp"),          # no zone
    (FLOW, "event.id", _DELETE, "id"),
    (FLOW, "event.kind", "weird", "kind"),
    (FLOW, "source.ip", "10.0.0.999", "source.ip"),
    (FLOW, "source.port", 70000, "source.port"),
    (FLOW, "destination.bytes", -1, "destination.bytes"),
    (FLOW, "network.packets", "many", "network.packets"),
    (ALERT, "watchkeeper.alert.category", "mischief", "category"),
    (ALERT, "watchkeeper.alert.status", "ignored", "status"),
    (ALERT, "event.severity", 5, "severity"),
    (ALERT, "event.risk_score", 101, "risk_score"),
    (ALERT, "watchkeeper.alert.subscores", {"x": 1.5}, "subscores"),
    (ALERT, "rule", _DELETE, "rule"),
])
def test_invalid_documents_name_the_field(base, field, value, named):
    with pytest.raises(schema.ValidationError, match=named.replace(".", r"\.")):
        schema.validate(_with(base, field, value))


@pytest.mark.parametrize("value", [None, [], "text", 42, {"event": {}}])
def test_non_documents_are_refused(value):
    with pytest.raises(schema.ValidationError):
        schema.validate(value)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids), max_leaves=30))
def test_validation_only_ever_raises_validation_error(value):
    try:
        schema.validate(value)
    except schema.ValidationError:
        pass


def test_ids_are_deterministic_and_distinct():
    assert schema.stable_id("a", 1) == schema.stable_id("a", 1)
    assert schema.stable_id("a", 1) != schema.stable_id("a", 2)
    assert schema.stable_id("a|b") != schema.stable_id("a", "b")


def test_community_id_matches_the_spec_vectors():
    # Test vectors from the Community ID spec (corelight/community-id-spec, baseline).
    assert community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80) == \
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(17, "192.168.1.52", "8.8.8.8", 54585, 53) == \
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
    # direction does not matter
    assert community_id(6, "66.35.250.204", "128.232.110.120", 80, 34855) == \
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


@given(st.sampled_from([6, 17, 132]), st.booleans(), st.integers(0, 2**128 - 1),
       st.integers(0, 2**128 - 1), st.integers(0, 65535), st.integers(0, 65535))
def test_fast_community_id_equals_the_reference_package(proto, v6, a, b, sport, dport):
    from communityid import CommunityID, FlowTuple
    if v6:
        src, dst = str(ipaddress.IPv6Address(a)), str(ipaddress.IPv6Address(b))
    else:
        src, dst = str(ipaddress.IPv4Address(a % 2**32)), str(ipaddress.IPv4Address(b % 2**32))
    make = {6: FlowTuple.make_tcp, 17: FlowTuple.make_udp, 132: FlowTuple.make_sctp}[proto]
    reference = CommunityID(seed=0).calc(make(src, dst, sport, dport))
    assert community_id(proto, src, dst, sport, dport) == reference


def test_flow_direction_and_alert_shape():
    assert FLOW["network"]["direction"] == "outbound"
    assert ALERT["event"]["kind"] == "alert" and 0 <= ALERT["event"]["risk_score"] <= 100
    assert ALERT["related"]["ip"] == ["10.0.0.1"]


def test_get_reads_dotted_paths_defensively():
    from watchkeeper import schema
    doc = {"a": {"b": {"c": 1, "n": None}, "s": "text", "l": [1]}, "z": 0}
    assert schema.get(doc, "a.b.c") == 1
    assert schema.get(doc, "z") == 0
    assert schema.get(doc, "a.b.n", "dflt") is None          # present and null: null
    assert schema.get(doc, "a.b.missing", "dflt") == "dflt"
    assert schema.get(doc, "a.s.deeper", "dflt") == "dflt"    # through a string: missing
    assert schema.get(doc, "a.l.0", "dflt") == "dflt"         # lists are not indexed
    assert schema.get(doc, "nope.x") is None
    assert schema.get({}, "a.b.c") is None
    for _ in range(2):                                       # the second time: cached parts
        assert schema.get(doc, "a.b.c") == 1
