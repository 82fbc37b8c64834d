"""SSH identification string (RFC 4253 section 4.2) from the first payload segment."""
from __future__ import annotations

from collectors.capture.appmeta.errors import AppParseError

MAX_BANNER = 255        # RFC 4253: at most 255 characters, CR LF included
# Printable US-ASCII and space; anything left after deleting these is not allowed.
_PRINTABLE = bytes(range(0x20, 0x7F))


def parse_banner(payload: bytes) -> str | None:
    """The `SSH-protoversion-softwareversion [comments]` line without CR/LF.

    None when the payload does not start with "SSH-" (servers may send other lines
    first; those are not handled here). A line cut by the segment end is returned as
    far as it goes; no line end within 255 bytes of a longer payload, control or
    non-ASCII bytes, or a line without protoversion and softwareversion raise
    AppParseError.
    """
    if not payload.startswith(b"SSH-"):
        return None
    eol = payload.find(b"\n", 0, MAX_BANNER + 1)
    if eol < 0:
        if len(payload) > MAX_BANNER:
            raise AppParseError("SSH identification line longer than 255 bytes")
        line = payload                       # cut by the segment end
    else:
        line = payload[:eol]
        if line.endswith(b"\r"):
            line = line[:-1]
    if line.translate(None, _PRINTABLE):
        raise AppParseError("SSH identification line has non-printable bytes")
    if eol >= 0:
        # SSH-<protoversion>-<softwareversion>: both parts non-empty.
        dash = line.find(b"-", 4)
        if dash <= 4 or dash + 1 >= len(line) or line[dash + 1] == 0x20:
            raise AppParseError("SSH identification line without versions")
    return line.decode("ascii")
