"""Message boundaries: RFC 6587 over TCP (octet-counting or LF, per message), one per datagram.

A TCP frame that starts `DIGITS SP <` is octet-counted (RFC 6587 §3.4.1; a syslog message
always starts with its PRI, which tells a length from a line that merely starts with a
number); anything else runs to the next LF (§3.4.2). Memory is bounded by `max_size`:
- an octet-counted frame longer than `max_size` is rejected and its declared bytes skipped,
  so the stream stays in step with the sender (what rsyslog's imtcp does too);
- a line longer than `max_size` is rejected and skipped up to its LF.
Errors come back as Frames with `error` set and a bounded sample (ERROR_SAMPLE) of the bad bytes: the
framer never raises, and a connection never has to be dropped to recover.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE = 64 * 1024
ERROR_SAMPLE = 4096       # bytes of an oversized frame kept as evidence for the dead letter
_MAX_DIGITS = 10          # "4294967295 " is the longest length anyone means
_BLANK = b"\r\n\x00 \t"   # between frames: stray line ends, NUL terminators, keep-alives
_DIGITS = frozenset(b"0123456789")


@dataclass
class Frame:
    data: bytes                 # one message, or a bounded sample of the bad input
    error: str | None = None


def datagram_frame(data: bytes, max_size: int = MAX_MESSAGE) -> Frame:
    """A UDP datagram is one message (RFC 5426); senders often add a trailing LF."""
    if len(data) > max_size:
        return Frame(data[:min(max_size, ERROR_SAMPLE)], f"oversized: datagram of {len(data)} bytes > {max_size}")
    return Frame(data.rstrip(b"\r\n\x00"))


class StreamFramer:
    """Incremental RFC 6587 decoder for one TCP connection: `feed()` bytes, get Frames."""

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self._buf = bytearray()
        self._pos = 0              # start of unread data in _buf (compacted once per feed)
        self._discard = 0          # bytes of an oversized octet-counted frame still to skip
        self._skip_line = False    # inside an oversized line: skip to its LF

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        del self._buf[:self._pos]  # one compaction per read, not one per frame
        self._pos = 0
        return frames

    def close(self) -> list[Frame]:
        """End of stream: a last line without LF is a message; half an octet frame is not."""
        frames = self.feed(b"")
        rest = bytes(self._buf[self._pos:]).strip(_BLANK)
        self._buf.clear()
        self._pos = 0
        if rest and not (self._discard or self._skip_line):
            if self._octet_header(rest) is not None:
                frames.append(Frame(rest[:self.max_size], "truncated: connection closed "
                                    "inside an octet-counted frame"))
            else:
                frames.append(Frame(rest))
        return frames

    # -- one frame at a time ------------------------------------------------------------------
    def _next(self) -> Frame | None:
        if not self._resync():
            return None
        buf, pos = self._buf, self._pos
        while pos < len(buf) and buf[pos] in _BLANK:
            pos += 1
        self._pos = pos
        if pos == len(buf):
            return None
        if buf[pos] in _DIGITS:
            header = self._octet_header(buf[pos:pos + _MAX_DIGITS + 2])
            if header == -1:
                return None          # "12" so far: wait for the rest of the length
            if header is not None:
                return self._octet_frame(header)
        return self._line_frame()

    def _resync(self) -> bool:
        """Skip what is left of an oversized frame; True once at a frame boundary."""
        if self._discard:
            step = min(self._discard, len(self._buf) - self._pos)
            self._pos += step
            self._discard -= step
            if self._discard:
                return False
        if self._skip_line:
            end = self._buf.find(b"\n", self._pos)
            if end < 0:
                self._pos = len(self._buf)
                return False
            self._pos = end + 1
            self._skip_line = False
        return True

    def _octet_header(self, head: bytes | bytearray) -> int | None:
        """Length of an octet-counted frame starting `head`, None if it is a line, -1: unsure."""
        digits = 0
        while digits < len(head) and head[digits] in _DIGITS:
            digits += 1
        if digits > _MAX_DIGITS:
            return None
        if digits + 1 >= len(head):
            return -1                # need the space and the first byte of the message
        if head[digits] != 0x20 or head[digits + 1] != 0x3C:   # "N <"
            return None
        return int(head[:digits])

    def _octet_frame(self, length: int) -> Frame | None:
        pos = self._pos
        start = self._buf.index(b" ", pos) + 1
        if length > self.max_size:
            self._pos = start
            self._discard = length
            sample = bytes(self._buf[start:start + min(length, self.max_size, ERROR_SAMPLE)])
            return Frame(sample, f"oversized: octet-counted frame of {length} bytes "
                                 f"> {self.max_size}")
        if len(self._buf) - start < length:
            return None
        self._pos = start + length
        return Frame(bytes(self._buf[start:start + length]))

    def _line_frame(self) -> Frame | None:
        pos = self._pos
        end = self._buf.find(b"\n", pos, pos + self.max_size + 1)
        if end >= 0:
            self._pos = end + 1
            return Frame(bytes(self._buf[pos:end]).rstrip(b"\r\x00"))
        if len(self._buf) - pos <= self.max_size:
            return None              # an incomplete line: wait for its LF
        sample = bytes(self._buf[pos:pos + min(self.max_size, ERROR_SAMPLE)])
        self._pos = pos + self.max_size
        self._skip_line = True
        return Frame(sample, f"oversized: line longer than {self.max_size} bytes")
