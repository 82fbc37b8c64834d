"""collectors.capture.appmeta.dnswire against dnspython (test-only oracle); malformed input is in
test_appmeta_dns_malformed.py."""
from __future__ import annotations

import ipaddress
import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.dnswire import (DnsAnswer, DnsMessage, opcode_name, parse_dns,
                                        qclass_name, qtype_name, rcode_name)

# --- dnspython as the oracle ------------------------------------------------------------


def _name_text(name: dns.name.Name) -> str:
    # Test names are letters, digits and "-", so joining the labels is the wire text.
    return ".".join(label.decode("ascii") for label in name.labels if label)


def _data_text(rdata) -> str:
    """What dnswire should render for one rdata, written from dnspython's fields."""
    t = rdata.rdtype
    if t == dns.rdatatype.A:
        return rdata.address
    if t == dns.rdatatype.AAAA:
        mapped = ipaddress.IPv6Address(rdata.address).ipv4_mapped
        return str(mapped) if mapped else rdata.address     # Zeek prints v4-mapped dotted
    if t in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR, dns.rdatatype.DNAME):
        return _name_text(rdata.target)
    if t == dns.rdatatype.MX:
        return _name_text(rdata.exchange)
    if t == dns.rdatatype.SRV:
        return _name_text(rdata.target)
    if t == dns.rdatatype.SOA:
        return _name_text(rdata.mname)
    if t == dns.rdatatype.TXT:
        return " ".join(f"TXT {len(s)} {s.decode('ascii')}" for s in rdata.strings)
    return f"<unknown type={int(t)}>"


def expected(wire: bytes) -> DnsMessage:
    # One RR per RRset: dnspython would otherwise merge records and keep the lowest TTL.
    m = dns.message.from_wire(wire, one_rr_per_rrset=True)
    answers = [DnsAnswer(_name_text(rrset.name), int(rrset.rdtype), int(rrset.rdclass),
                         rrset.ttl, _data_text(rd))
               for rrset in m.answer for rd in rrset]
    return DnsMessage(
        id=m.id, response=bool(m.flags & dns.flags.QR), opcode=int(m.opcode()),
        rcode=int(m.rcode()) & 0xF, aa=bool(m.flags & dns.flags.AA),
        tc=bool(m.flags & dns.flags.TC), rd=bool(m.flags & dns.flags.RD),
        ra=bool(m.flags & dns.flags.RA),
        questions=[(_name_text(q.name), int(q.rdtype), int(q.rdclass)) for q in m.question],
        answers=answers)


def response(qname: str, qtype: str, records: list[tuple[str, int, str, str]],
             rcode: int = 0, flags: int = 0) -> bytes:
    """Wire bytes of a response to (qname, qtype) with records (name, ttl, type, text)."""
    q = dns.message.make_query(qname, qtype)
    r = dns.message.make_response(q)
    r.flags |= flags
    r.set_rcode(rcode)
    for name, ttl, rtype, text in records:
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", rtype, text))
    return r.to_wire()


WIKI = response("upload.wikimedia.org", "A", [
    ("upload.wikimedia.org.", 124, "CNAME", "upload.pmtpa.wikimedia.org."),
    ("upload.pmtpa.wikimedia.org.", 2156, "A", "208.80.152.3")], flags=dns.flags.RA)

MIXED = response("Mixed.Example.COM", "ANY", [
    ("Mixed.Example.COM.", 60, "A", "192.0.2.1"),
    ("Mixed.Example.COM.", 60, "A", "192.0.2.2"),
    ("Mixed.Example.COM.", 61, "AAAA", "2001:db8::1"),
    ("Mixed.Example.COM.", 62, "AAAA", "::ffff:198.51.100.7"),
    ("Mixed.Example.COM.", 63, "AAAA", "fe80::217:f2ff:fed7:cf65"),
    ("alias.example.com.", 64, "CNAME", "Mixed.Example.COM."),
    ("Mixed.Example.COM.", 65, "MX", "10 mail.Example.COM."),
    ("Mixed.Example.COM.", 66, "TXT", '"hello world" "v=spf1 -all" ""'),
    ("Mixed.Example.COM.", 67, "NULL", r"\# 3 010203"),
    ("_sip._tcp.example.com.", 68, "SRV", "0 5 5060 sip.example.com."),
    ("example.com.", 69, "SOA", "ns1.example.com. hostmaster.example.com. 1 2 3 4 5"),
    ("4.3.2.1.in-addr.arpa.", 70, "PTR", "host.example.com."),
    ("example.com.", 71, "NS", "ns1.example.com."),
    ("d.example.com.", 72, "DNAME", "example.net."),
])


@pytest.mark.parametrize("wire", [WIKI, MIXED], ids=["wikipedia", "mixed"])
def test_matches_dnspython(wire):
    assert parse_dns(wire) == expected(wire)


def test_wikipedia_answer_text_as_in_zeek_dns_log():
    msg = parse_dns(WIKI)
    assert [a.data for a in msg.answers] == ["upload.pmtpa.wikimedia.org", "208.80.152.3"]
    assert [a.ttl for a in msg.answers] == [124, 2156]
    assert (msg.response, msg.rd, msg.ra, msg.aa, msg.tc) == (True, True, True, False, False)


def test_mixed_rendering():
    # dnspython compresses case-insensitively, so "example.com" after "Example.COM" is a
    # pointer to the latter (SRV targets are never compressed); wire case is kept.
    data = [a.data for a in parse_dns(MIXED).answers]
    assert data == [
        "192.0.2.1", "192.0.2.2", "2001:db8::1", "198.51.100.7", "fe80::217:f2ff:fed7:cf65",
        "Mixed.Example.COM", "mail.Example.COM", "TXT 11 hello world TXT 11 v=spf1 -all TXT 0 ",
        "<unknown type=10>", "sip.example.com", "ns1.Example.COM", "host.Example.COM",
        "ns1.Example.COM", "example.net"]


def test_query_and_flags():
    q = dns.message.make_query("www.example.org", "AAAA")
    q.flags &= ~dns.flags.RD
    q.id = 0xBEEF
    msg = parse_dns(q.to_wire())
    assert msg.id == 0xBEEF and not msg.response and not msg.rd
    assert msg.questions == [("www.example.org", 28, 1)] and msg.answers == []
    assert not msg.answers_truncated


@pytest.mark.parametrize("rcode", [0, 1, 2, 3, 5, 9])
def test_rcodes_and_opcode(rcode):
    wire = response("nx.example", "A", [], rcode=rcode)
    msg = parse_dns(wire)
    assert msg.rcode == rcode and msg.opcode == 0 and msg == expected(wire)


def test_opcode_and_tc_bits():
    hdr = struct.pack("!HHHHHH", 7, 0x8000 | (4 << 11) | 0x0200 | 0x0400 | 5, 0, 0, 0, 0)
    msg = parse_dns(hdr)
    assert (msg.opcode, msg.tc, msg.aa, msg.rcode) == (4, True, True, 5)
    assert opcode_name(msg.opcode) == "notify"


def test_root_name_and_rrsig_like_renderings():
    r = response(".", "NS", [(".", 5, "NS", "a.root-servers.net.")])
    msg = parse_dns(r)
    assert msg.questions == [("", 2, 1)] and msg.answers[0].name == ""
    assert msg.answers[0].data == "a.root-servers.net"


def _hand(questions: bytes, qd: int, answers: bytes = b"", an: int = 0, ident: int = 1) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x8180, qd, an, 0, 0) + questions + answers


Q_EXAMPLE = b"\x07example\x03com\x00" + struct.pack("!HH", 1, 1)      # at offset 12


def _rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 30) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


@pytest.mark.parametrize("rtype,rdata,text", [
    (46, struct.pack("!HBBIIIH", 1, 13, 2, 3600, 0, 0, 7) + b"\x00" + b"sig", "RRSIG 1 <Root>"),
    (46, struct.pack("!HBBIIIH", 28, 8, 2, 3600, 0, 0, 7) + b"\xc0\x0c" + b"sig",
     "RRSIG 28 example.com"),
    (48, struct.pack("!HBB", 257, 3, 13) + b"key", "DNSKEY 13"),
    (43, struct.pack("!HBB", 2371, 13, 2) + b"digest", "DS 13 2"),
    (47, b"\x01a\xc0\x0c" + b"\x00\x01\x40", "NSEC example.com a.example.com"),
    (50, b"\x01\x00\x00\x00", "NSEC3"),
    (51, b"\x01\x00\x00\x00", "NSEC3PARAM"),
    (44, b"\x01\x02\xde\xad\xbe\xef", "SSHFP: deadbeef"),
    (29, b"\x00\x12\x16\x13" + b"\x00" * 12, "LOC:  18 22 19"),
    (99, b"\x05v=spf", "SPF 5 v=spf"),
    (65534, b"\x01\x02", "BIND9 signing signal"),
    (13, b"\x03cpu\x02os", ""),                     # Zeek decodes HINFO but logs nothing
    (65, b"\x00\x01\x00", ""),                      # HTTPS: likewise (zeek/zeek#5467)
    (257, b"\x00\x05issue", ""),
    (35, b"\x00\x01", "<unknown type=35>"),
    (4242, b"", "<unknown type=4242>"),
])
def test_other_rdata_renderings(rtype, rdata, text):
    msg = parse_dns(_hand(Q_EXAMPLE, 1, _rr(b"\xc0\x0c", rtype, rdata), 1))
    assert not msg.answers_truncated
    assert msg.answers == [DnsAnswer("example.com", rtype, 1, 30, text)]


def test_non_printable_label_bytes_are_escaped():
    q = b"\x05a\x00b\\c\x04\xc3\xa9t\xe9\x00" + struct.pack("!HH", 16, 1)
    txt = _rr(b"\xc0\x0c", 16, b"\x03a\tb")
    msg = parse_dns(_hand(q, 1, txt, 1))
    assert msg.questions[0][0] == "a\\x00b\\x5cc.\\xc3\\xa9t\\xe9"
    assert msg.answers[0].name == msg.questions[0][0]
    assert msg.answers[0].data == "TXT 3 a\\x09b"


# --- random messages via hypothesis -----------------------------------------------------

LABEL = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
                min_size=1, max_size=20)
NAME = st.lists(LABEL, min_size=1, max_size=5).map(lambda ls: ".".join(ls) + ".")
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(str)
TXT = st.lists(st.text("abc xyz=;", max_size=40), min_size=1, max_size=4).map(
    lambda ss: " ".join(f'"{s}"' for s in ss))


@st.composite
def messages(draw) -> bytes:
    base = draw(NAME)
    # Share suffixes between names so that compression has something to point at.
    names = [base] + [draw(LABEL) + "." + base for _ in range(3)] + [draw(NAME)]
    pick = st.sampled_from(names)
    qname = draw(pick)
    records = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["A", "AAAA", "CNAME", "TXT", "MX", "NULL"]))
        text = {"A": IPV4, "AAAA": IPV6, "CNAME": pick, "TXT": TXT,
                "MX": pick.map(lambda n: f"10 {n}"),
                "NULL": st.binary(max_size=8).map(lambda b: rf"\# {len(b)} {b.hex()}")}[kind]
        records.append((draw(pick), draw(st.integers(0, 2**31 - 1)), kind, draw(text)))
    q = dns.message.make_query(qname, draw(st.sampled_from(["A", "AAAA", "TXT", "MX", "ANY"])))
    q.id = draw(st.integers(0, 0xFFFF))
    if not draw(st.booleans()):
        return q.to_wire()
    r = dns.message.make_response(q)
    r.set_rcode(draw(st.sampled_from([0, 2, 3])))
    r.flags |= draw(st.sampled_from([0, dns.flags.AA, dns.flags.RA, dns.flags.TC]))
    for name, ttl, kind, text in records:
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", kind, text))
    return r.to_wire()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_random_messages_match_dnspython(wire):
    assert parse_dns(wire) == expected(wire)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_random_messages_over_tcp(wire):
    framed = struct.pack("!H", len(wire)) + wire
    assert parse_dns(framed, tcp=True) == expected(wire)


def test_name_tables_are_zeeks():
    assert [qtype_name(t) for t in (1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 43, 46, 47, 48,
                                     10, 13, 64, 65, 251, 252, 255, 257, 32, 999)] == [
        "A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "NAPTR", "DS", "RRSIG",
        "NSEC", "DNSKEY", "NULL", "HINFO", "SVCB", "HTTPS", "IXFR", "AXFR", "*", "CAA",
        "NIMLOC", "query-999"]
    assert [rcode_name(r) for r in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 99)] == [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
        "YXRRSET", "NXRRSet", "NOTAUTH", "NOTZONE", "unassigned-11", "BADVERS", "rcode-99"]
    assert [qclass_name(c) for c in (1, 3, 4, 254, 255, 7)] == [
        "C_INTERNET", "C_CHAOS", "C_HESIOD", "C_NONE", "C_ANY", "qclass-7"]
    assert opcode_name(0) == "query" and opcode_name(9) == "opcode-9"
