"""HTTP/1.x request and response heads from the first payload segment of each direction.

Only what a flow record needs: the request line, Host, User-Agent and Referer, and the
status line. Bytes are decoded as latin-1 (every byte maps to one character, so decoding
never fails). A head cut by the segment end is normal: the complete lines are used.
"""
from __future__ import annotations

from dataclasses import dataclass

from collectors.capture.appmeta.errors import AppParseError

MAX_LINE = 8192         # longest request/status line or header line looked at
MAX_HEADERS = 100       # header lines scanned; the interesting ones come early
MAX_HEAD = 32768        # bytes of payload scanned for the end of the head

# Methods of RFC 9110, WebDAV, CalDAV and friends, and the SSDP/UPnP ones; anything
# else is "not HTTP" rather than a malformed request.
METHODS = frozenset((
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT",
    b"TRACE", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK",
    b"SEARCH", b"REPORT", b"MKACTIVITY", b"CHECKOUT", b"CHECKIN", b"UNCHECKOUT",
    b"MERGE", b"MKCALENDAR", b"MKWORKSPACE", b"VERSION-CONTROL", b"BASELINE-CONTROL",
    b"LABEL", b"UPDATE", b"ACL", b"BIND", b"UNBIND", b"REBIND", b"ORDERPATCH", b"LINK",
    b"UNLINK", b"PURGE", b"M-SEARCH", b"NOTIFY", b"SUBSCRIBE", b"UNSUBSCRIBE", b"PRI",
    b"QUERY",
))
_MAX_METHOD = max(len(m) for m in METHODS)
_WANTED = {b"host": 0, b"user-agent": 1, b"referer": 2}


@dataclass(slots=True)
class HttpRequest:
    method: str
    uri: str            # as far as the segment goes when the line is cut ("" if at once)
    version: str        # "1.1"; "0.9" for a simple request; "" when the line was cut
    host: str | None    # header value as sent, ":port" included (Zeek's http.log drops it)
    user_agent: str | None
    referrer: str | None


@dataclass(slots=True)
class HttpResponse:
    version: str        # "1.1"
    status_code: int
    reason: str


def _version(token: bytes) -> str:
    """The x.y of "HTTP/x.y"; AppParseError when it is not digits and dots."""
    v = token[5:]
    if not v or len(v) > 8 or v.strip(b"0123456789.") or not v[:1].isdigit():
        raise AppParseError("bad HTTP version")
    return v.decode("latin-1")


def _line_end(payload: bytes, start: int) -> int:
    """Index of the LF ending the line at `start`, or -1 (bare LF ends a line too)."""
    return payload.find(b"\n", start, start + MAX_LINE)


def parse_request(payload: bytes) -> HttpRequest | None:
    """Parse a request head, or None when the payload does not start with a method."""
    sp = payload.find(b" ", 0, _MAX_METHOD + 1)
    if sp <= 0 or payload[:sp] not in METHODS:
        return None
    method = payload[:sp].decode("latin-1")
    eol = _line_end(payload, 0)
    cut = eol < 0
    line = payload[sp + 1:(MAX_LINE if cut else eol)].rstrip(b"\r")
    # URI runs to the last space; tolerate extra spaces around it, as servers do.
    last = line.rfind(b" ")
    tail = line[last + 1:] if last >= 0 else b""
    if cut:
        # The line goes on in the next segment: keep what is there, check nothing more.
        if last >= 0 and (tail.startswith(b"HTTP/") or b"HTTP/".startswith(tail)):
            uri = line[:last].strip(b" ")
            v = tail[5:]
            version = v.decode("latin-1") if v and not v.strip(b"0123456789.") else ""
        else:
            uri, version = line.strip(b" "), ""
    elif tail.startswith(b"HTTP/"):
        uri = line[:last].strip(b" ")
        version = _version(tail)
        if not uri:
            raise AppParseError("HTTP request line without URI")
    elif last < 0 and line:
        uri, version = line, "0.9"                 # HTTP/0.9 simple request: "GET /"
    else:
        raise AppParseError("HTTP request line without version")

    found: list[str | None] = [None, None, None]
    if not cut:
        _headers(payload, eol + 1, found)
    return HttpRequest(method, uri.decode("latin-1"), version, found[0], found[1], found[2])


def _headers(payload: bytes, pos: int, found: list[str | None]) -> None:
    """Fill `found` (host, user-agent, referer; first occurrence wins) from complete lines."""
    # The head ends at the first empty line, CRLF or bare LF (servers accept both).
    crlf = payload.find(b"\r\n\r\n", pos - 2, MAX_HEAD)
    lf = payload.find(b"\n\n", pos - 1, MAX_HEAD)
    end = lf if crlf < 0 or 0 <= lf < crlf else crlf
    if end >= 0:
        block = payload[pos:end]
        lines = block.split(b"\n", MAX_HEADERS)[:MAX_HEADERS]
    else:
        # Cut head: drop the last, incomplete line.
        lines = payload[pos:MAX_HEAD].split(b"\n", MAX_HEADERS)[:-1][:MAX_HEADERS]
    missing = 3
    for line in lines:
        colon = line.find(b":", 0, 64)
        if colon <= 0:
            continue                # not a header we look for (or obs-fold continuation)
        slot = _WANTED.get(line[:colon].strip().lower())
        if slot is not None and found[slot] is None:
            found[slot] = line[colon + 1:MAX_LINE].strip().decode("latin-1")
            missing -= 1
            if not missing:
                return


def parse_response(payload: bytes) -> HttpResponse | None:
    """Parse a status line, or None when the payload does not start with "HTTP/"."""
    if not payload.startswith(b"HTTP/"):
        return None
    eol = _line_end(payload, 0)
    line = payload[:MAX_LINE if eol < 0 else eol].rstrip(b"\r")
    parts = line.split(b" ", 2)
    version = _version(parts[0])
    if len(parts) < 2:
        raise AppParseError("HTTP status line without status code")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise AppParseError("HTTP status code is not 3 digits")
    reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
    return HttpResponse(version, int(code), reason)
