"""RFC 6587 framing: both methods, per message, split anywhere; oversize and garbage resync."""
from __future__ import annotations

import pytest

from collectors.syslog.framing import StreamFramer, datagram_frame

A, B = b"<13>1 - h a - - - first", b"<13>Nov 22 20:00:00 h app: second"


def octet(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


def messages(frames) -> list[bytes]:
    return [f.data for f in frames if f.error is None]


def errors(frames) -> list[str]:
    return [f.error for f in frames if f.error is not None]


@pytest.mark.parametrize("stream,expected", [
    (octet(A) + octet(B), [A, B]),
    (A + b"\n" + B + b"\n", [A, B]),
    (A + b"\r\n" + B + b"\r\n", [A, B]),
    (octet(A) + B + b"\n" + octet(A), [A, B, A]),                 # detected per message
    (octet(b"<13>multi\nline") + b"\n", [b"<13>multi\nline"]),  # LF inside a counted frame
    (b"2024 was a year\n" + octet(A), [b"2024 was a year", A]),   # digits, no '<': a line
    (b"\n\n" + octet(A) + b"\n\x00" + B + b"\n", [A, B]),         # stray terminators skipped
])
def test_frames_in_any_split(stream, expected):
    whole = StreamFramer()
    assert messages(whole.feed(stream) + whole.close()) == expected
    bytewise = StreamFramer()
    frames = [f for i in range(len(stream)) for f in bytewise.feed(stream[i:i + 1])]
    assert messages(frames + bytewise.close()) == expected


def test_oversized_octet_frame_is_skipped_and_stream_stays_in_step():
    framer = StreamFramer(max_size=64)
    big = b"<13>" + b"x" * 200
    frames = framer.feed(octet(big)[:50]) + framer.feed(octet(big)[50:] + octet(A))
    assert errors(frames) == ["oversized: octet-counted frame of 204 bytes > 64"]
    assert messages(frames) == [A]
    assert frames[0].data == big[:46]       # a bounded sample of what had arrived


def test_oversized_line_is_skipped_to_its_lf():
    framer = StreamFramer(max_size=40)
    frames = framer.feed(b"<13>" + b"y" * 100) + framer.feed(b"y" * 100 + b"\n" + B[:20])
    frames += framer.feed(B[20:] + b"\n")
    assert errors(frames) == ["oversized: line longer than 40 bytes"]
    assert frames[0].data == b"<13>" + b"y" * 36
    assert messages(frames) == [B]


def test_buffer_stays_bounded_under_endless_garbage():
    framer = StreamFramer(max_size=1024)
    for _ in range(200):
        framer.feed(b"q" * 4096)
        assert len(framer._buf) <= 1024 + 4096
    assert messages(framer.feed(b"\n" + A + b"\n")) == [A]


def test_end_of_stream():
    assert messages(StreamFramer().close()) == []
    last = StreamFramer()
    assert last.feed(B) == [] and messages(last.close()) == [B]
    cut = StreamFramer()
    assert cut.feed(octet(A)[:-3]) == []
    assert errors(cut.close()) == ["truncated: connection closed inside an octet-counted frame"]


def test_zero_length_frame_is_an_empty_message():
    assert messages(StreamFramer().feed(b"0 " + A + b"\n")) == [b"", A]


def test_datagrams():
    assert datagram_frame(A + b"\n").data == A
    over = datagram_frame(b"x" * 70_000)
    assert over.error and len(over.data) == 4096      # a bounded sample (ERROR_SAMPLE)
