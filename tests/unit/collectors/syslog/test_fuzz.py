"""Random input through framing, header and program parsers: only SyslogError ever escapes,
and every document that comes out passes the event schema."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.syslog.document import Origin
from collectors.syslog.framing import StreamFramer, datagram_frame
from collectors.syslog.message import SyslogError
from collectors.syslog.pipeline import Received, to_document
from watchkeeper import schema

ORIGIN = Origin("192.0.2.1", 514, "tcp", 1_795_000_000.0)

# Pieces real messages are made of, so the generator reaches the deep parser paths.
PIECES = st.sampled_from([
    b"<13>", b"<38>", b"<191>", b"<999>", b"<", b">", b"1 ", b"- ", b"2026-11-22T20:23:01Z ",
    b"Nov 22 20:23:01 ", b"Feb 29 00:00:00 ", b"host ", b"sshd[1]: ", b"sudo: ", b"kernel: ",
    b"[a@1 k=\"v\\\"\"]", b"[", b"]", b"\"", b"\\", b"=", b" ; ", b"COMMAND=", b"USER=",
    b"Accepted password for ", b"Failed password for invalid user ", b" from ", b" port ",
    b"1.2.3.4", b"::1", b"99999", b"pam_unix(sshd:auth): authentication failure; ",
    b"rhost=", b"user=", b"PAM 3 more authentication failures;", b"IN=eth0 OUT= ", b"SRC=",
    b"DST=", b"PROTO=TCP ", b"SPT=", b"DPT=", b"MAC=", b"CEF:0|", b"|", b"\\|", b"src=",
    b"spt=", b"in=", b"\xef\xbb\xbf", b"\xff", b"\n", b"\r\n", b"12 ", b"\x00", b" "])
LINES = st.lists(st.one_of(PIECES, st.binary(max_size=12)), max_size=24).map(b"".join)


def check(data: bytes) -> None:
    item = Received(datagram_frame(data), ORIGIN, 1)
    try:
        doc = to_document(item)
    except SyslogError:
        return
    schema.validate(doc)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    check(data)


@settings(max_examples=1500, deadline=None)
@given(LINES)
def test_syslog_like_lines_never_raise(data):
    check(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.binary(max_size=40)), max_size=12),
       st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_framing_any_chunks_never_raises_and_stays_bounded(parts, cuts):
    stream = b"".join(parts)
    framer = StreamFramer(max_size=128)
    frames, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        frames += framer.feed(stream[pos:pos + step])
        assert len(framer._buf) <= 128 + 16 + 64
        pos, i = pos + step, i + 1
    frames += framer.close()
    for frame in frames:
        assert len(frame.data) <= 128
        item = Received(frame, ORIGIN, 1)
        try:
            schema.validate(to_document(item))
        except SyslogError:
            pass
