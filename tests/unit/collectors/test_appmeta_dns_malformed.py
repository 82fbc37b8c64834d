"""collectors.capture.appmeta.dnswire on malformed input: truncation, bad names and answers,
compression limits, fuzzing (the well-formed cases, against dnspython, are in test_appmeta_dns.py)."""
from __future__ import annotations

import struct

import dns.message
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.dnswire import parse_dns
from collectors.capture.appmeta.errors import AppParseError
from tests.unit.collectors.test_appmeta_dns import MIXED, Q_EXAMPLE, WIKI, _hand, _rr, messages


def _question_end(wire: bytes) -> int:
    m = dns.message.from_wire(wire)
    return 12 + len(m.question[0].name.to_wire()) + 4 if m.question else 12


@pytest.mark.parametrize("wire", [WIKI, MIXED], ids=["wikipedia", "mixed"])
def test_every_truncation(wire):
    full = parse_dns(wire)
    qend = _question_end(wire)
    for cut in range(len(wire)):
        part = wire[:cut]
        if cut < qend:
            with pytest.raises(AppParseError):
                parse_dns(part)
            continue
        msg = parse_dns(part)
        assert msg.questions == full.questions
        assert msg.answers == full.answers[:len(msg.answers)]
        assert msg.answers_truncated == (len(full.answers) > 0 and cut < len(wire))


def test_tcp_framing():
    framed = struct.pack("!H", len(WIKI)) + WIKI
    assert parse_dns(framed, tcp=True) == parse_dns(WIKI)
    # Two messages in one segment: only the first is read.
    assert parse_dns(framed + framed, tcp=True) == parse_dns(WIKI)
    # A message longer than the segment: what is there, answers flagged as cut.
    cut = parse_dns(framed[:-3], tcp=True)
    assert cut.questions == parse_dns(WIKI).questions and cut.answers_truncated
    for bad in (b"", b"\x00", struct.pack("!H", 11) + WIKI[:11], struct.pack("!H", 40) + WIKI[:5]):
        with pytest.raises(AppParseError):
            parse_dns(bad, tcp=True)


@pytest.mark.parametrize("question", [
    b"\xc0\x0c" + b"\x00\x01\x00\x01",                  # points at itself
    b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01",             # back into its own labels: a loop
    b"\x01a\xc0\x10" + b"\x00\x01\x00\x01",             # points forward
    b"\xc0\xff",                                        # forward, beyond the end
    b"\x3fabc",                                         # label longer than the data
    b"\x40abc\x00\x00\x01\x00\x01",                     # label type 0x40
    b"\x80abc\x00\x00\x01\x00\x01",                     # label type 0x80
    b"\x07example\x03com",                              # no root label
    b"\x07example\x03com\x00\x00\x01\x00",              # qclass cut
    (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01",  # 257-byte name
], ids=["self", "loop", "forward", "beyond", "long-label", "0x40", "0x80", "no-root",
        "class-cut", "too-long"])
def test_bad_question_raises(question):
    with pytest.raises(AppParseError):
        parse_dns(_hand(question, 1))


def test_longest_legal_name():
    name = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00"     # 255 bytes
    assert len(name) == 255
    msg = parse_dns(_hand(name + b"\x00\x01\x00\x01", 1))
    assert len(msg.questions[0][0]) == 253


def test_header_and_count_limits():
    for short in (b"", b"\x00" * 11):
        with pytest.raises(AppParseError):
            parse_dns(short)
    with pytest.raises(AppParseError):                  # Zeek's dns_max_queries
        parse_dns(_hand(Q_EXAMPLE * 26, 26))
    assert len(parse_dns(_hand(Q_EXAMPLE * 25, 25)).questions) == 25
    many = _hand(Q_EXAMPLE, 1, _rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04") * 100, 100)
    msg = parse_dns(many)
    assert len(msg.answers) == 64 and not msg.answers_truncated


def test_bad_answers_keep_the_question():
    good = _rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04")
    # (second record, its data if it is acceptable else None)
    cases = [(_rr(b"\xc0\x0c", 1, b"\x01\x02\x03"), None),         # A with 3 bytes
             (_rr(b"\xc0\x0c", 28, b"\x00" * 15), None),            # AAAA with 15
             (_rr(b"\xc0\x0c", 5, b"\x01a\x00\x00"), "a"),           # name shorter than rdata
             (_rr(b"\xc0\x40", 1, b"\x01\x02\x03\x04"), None),      # owner pointer forward
             (_rr(b"\xc0\x0c", 5, b"\x01a\xc0"), None),              # CNAME runs past rdata
             (_rr(b"\xc0\x0c", 16, b"\x05ab"), None),               # TXT string past rdata
             (_rr(b"\xc0\x0c", 15, b"\x00"), None),                 # MX without exchange
             (_rr(b"\xc0\x0c", 1, b"\x01\x02\x03\x04")[:-1], None)]  # rdata cut
    for bad, data in cases:
        msg = parse_dns(_hand(Q_EXAMPLE, 1, good + bad, 2))
        assert msg.questions == [("example.com", 1, 1)]
        assert msg.answers[0].data == "1.2.3.4"
        if data is None:
            assert msg.answers_truncated and len(msg.answers) == 1
        else:
            assert not msg.answers_truncated and msg.answers[1].data == data


def test_compression_jump_limit():
    # A NULL record whose rdata is a chain of pointers, each to the one before it (the
    # first to the question name); CNAMEs then point into the chain.
    start = 12 + len(Q_EXAMPLE) + 12
    chain = b"".join(struct.pack("!H", 0xC000 | (12 if i == 0 else start + 2 * (i - 1)))
                     for i in range(70))
    null = _rr(b"\xc0\x0c", 10, chain)

    def via(i: int) -> bytes:
        return _rr(b"\xc0\x0c", 5, struct.pack("!H", 0xC000 | (start + 2 * i)))

    ok = parse_dns(_hand(Q_EXAMPLE, 1, null + via(62), 2))      # 1 + 63 = 64 jumps
    assert ok.answers[1].data == "example.com" and not ok.answers_truncated
    bad = parse_dns(_hand(Q_EXAMPLE, 1, null + via(63), 2))     # 1 + 64 = 65 jumps
    assert bad.answers_truncated and len(bad.answers) == 1
    # In one message the chain is cached after the first read; the limit still holds.
    msg = parse_dns(_hand(Q_EXAMPLE, 1, null + via(61) + via(62) + via(63) + via(5), 5))
    assert [a.data for a in msg.answers[1:]] == ["example.com", "example.com"]
    assert msg.answers_truncated


def test_cached_suffix_obeys_the_same_limits():
    # www.example.com is read once; later pointers into it hit the cache, but a name that
    # would exceed 255 bytes through a cached suffix must still fail.
    q = b"\x03www\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
    long_owner = (b"\x3f" + b"b" * 63) * 3 + b"\x3a" + b"b" * 58 + b"\xc0\x10"   # + example.com
    msg = parse_dns(_hand(q, 1, _rr(b"\xc0\x10", 1, b"\x01\x02\x03\x04")
                          + _rr(long_owner, 1, b"\x01\x02\x03\x04"), 2))
    assert msg.answers[0].name == "example.com"
    assert msg.answers_truncated and len(msg.answers) == 1


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_arbitrary_bytes(data, tcp):
    try:
        parse_dns(data, tcp=tcp)
    except AppParseError:
        pass


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                            min_size=1, max_size=6), st.integers(0, 600))
def test_fuzz_mutated_messages(wire, edits, cut):
    data = bytearray(wire)
    for pos, value in edits:
        data[pos % len(data)] = value
    for candidate in (bytes(data), bytes(data[:cut])):
        try:
            msg = parse_dns(candidate)
        except AppParseError:
            continue
        assert len(msg.questions) <= 25 and len(msg.answers) <= 64
