"""TLS ClientHello / ServerHello fields from the first payload segment of each direction.

A hello cut by the segment end is normal (big ClientHellos with post-quantum key shares
span two segments; the SNI usually sits in the first): the fields that are fully present
are returned and `truncated` is set. A length that cannot be right - a field running past
the length its own header declares - raises AppParseError.

Only the first record's bytes are read; a hello fragmented over several records (rare)
counts as cut at the record end.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from collectors.capture.appmeta.errors import AppParseError

MAX_RECORD = 16384 + 2048   # TLSCiphertext limit; plaintext handshakes stay below 2^14
MAX_EXTENSIONS = 128       # real hellos carry < 30; bounds the walk over empty ones
EXT_SERVER_NAME, EXT_ALPN, EXT_SUPPORTED_VERSIONS = 0, 16, 43
_CLIENT_EXTS = frozenset((EXT_SERVER_NAME, EXT_ALPN, EXT_SUPPORTED_VERSIONS))
_SERVER_EXTS = frozenset((EXT_SUPPORTED_VERSIONS,))
_ESC = {i: f"\\x{i:02x}" for i in range(256) if not 0x20 <= i < 0x7F or i == 0x5C}


@dataclass(slots=True)
class ClientHello:
    record_version: int
    client_version: int                     # legacy_version; 0 if cut before it
    server_name: str | None
    supported_versions: list[int] = field(default_factory=list)    # GREASE removed
    alpn: list[str] = field(default_factory=list)
    truncated: bool = False                 # the hello goes on past this segment


@dataclass(slots=True)
class ServerHello:
    version: int        # negotiated: supported_versions if present (TLS 1.3) else legacy
    cipher: int         # 0 if cut before it
    truncated: bool = False


class _Cut(Exception):
    """Internal: the segment ends inside a field that its header says is complete."""


def _text(raw: bytes) -> str:
    s = raw.decode("latin-1")
    if s.isascii() and s.isprintable() and "\\" not in s:
        return s
    return s.translate(_ESC)


def _is_grease(v: int) -> bool:
    # RFC 8701: 0x0A0A, 0x1A1A, ... 0xFAFA.
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _need(end: int, have: int, hard: int) -> None:
    """Bytes up to `end` must lie within the declared length `hard` (else the hello is
    malformed) and within the `have` bytes this segment holds (else it is cut)."""
    if end > hard:
        raise AppParseError("TLS hello field runs past its declared length")
    if end > have:
        raise _Cut


def _handshake(payload: bytes, hs_type: int) -> tuple[int, int, int] | None:
    """(record version, bytes available, end of the handshake body), or None if the
    payload is not a handshake record starting with this hello type."""
    if len(payload) < 6 or payload[0] != 0x16 or payload[1] != 3 or payload[5] != hs_type:
        return None
    rec_len = (payload[3] << 8) | payload[4]
    if rec_len < 4 or rec_len > MAX_RECORD:
        raise AppParseError("impossible TLS record length")
    # Reads stop at the record end: a hello fragmented over records counts as cut.
    have = min(len(payload), 5 + rec_len)
    if have < 9:
        return (payload[1] << 8) | payload[2], have, 1 << 30    # cut in the header
    hs_len = (payload[6] << 16) | (payload[7] << 8) | payload[8]
    return (payload[1] << 8) | payload[2], min(have, 9 + hs_len), 9 + hs_len


def _fixed(buf: bytes, have: int, hard: int) -> int:
    """Check legacy_version, random and session id; return the position after them."""
    _need(44, have, hard)                       # 9 + version 2 + random 32 + sid length 1
    sid = buf[43]
    if sid > 32:
        raise AppParseError("TLS session id longer than 32 bytes")
    _need(44 + sid, have, hard)
    return 44 + sid


def _walk(buf: bytes, pos: int, have: int, hard: int, wanted: frozenset[int],
          got: dict[int, tuple[int, int]]) -> None:
    """Record (start, end) of each wanted extension present in full into `got` (first
    one wins), so a cut later in the block keeps what came before it."""
    _need(pos + 2, have, hard)
    end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if end > hard:
        raise AppParseError("TLS extensions run past the hello")
    pos += 2
    for _ in range(MAX_EXTENSIONS):
        if pos >= end:
            return
        _need(pos + 4, have, end)
        body = pos + 4
        pos = body + ((buf[pos + 2] << 8) | buf[pos + 3])
        _need(pos, have, end)
        etype = (buf[body - 4] << 8) | buf[body - 3]
        if etype in wanted and etype not in got:
            got[etype] = (body, pos)
    if pos < end:
        raise AppParseError("too many TLS extensions")


def parse_client_hello(payload: bytes) -> ClientHello | None:
    """ClientHello fields, or None unless the payload starts a TLS handshake record
    holding a ClientHello."""
    found = _handshake(payload, 1)
    if found is None:
        return None
    record_version, have, hard = found
    hello = ClientHello(record_version, 0, None)
    got: dict[int, tuple[int, int]] = {}
    try:
        _need(11, have, hard)
        hello.client_version = (payload[9] << 8) | payload[10]
        pos = _fixed(payload, have, hard)
        _need(pos + 2, have, hard)              # cipher suites
        size = (payload[pos] << 8) | payload[pos + 1]
        if size == 0 or size & 1:
            raise AppParseError("bad TLS cipher suites length")
        pos += 2 + size
        _need(pos + 1, have, hard)              # compression methods
        size = payload[pos]
        if size == 0:
            raise AppParseError("no TLS compression methods")
        pos += 1 + size
        _need(pos, have, hard)
        if pos < hard:                          # old clients send no extensions
            _walk(payload, pos, have, hard, _CLIENT_EXTS, got)
    except _Cut:
        hello.truncated = True
    if have < hard:
        hello.truncated = True                  # the hello goes on past these bytes
    if got:
        span = got.get(EXT_SERVER_NAME)
        if span:
            hello.server_name = _server_name(payload, *span)
        span = got.get(EXT_SUPPORTED_VERSIONS)
        if span:
            hello.supported_versions = _versions(payload, *span)
        span = got.get(EXT_ALPN)
        if span:
            hello.alpn = _alpn(payload, *span)
    return hello


def _server_name(buf: bytes, pos: int, end: int) -> str | None:
    """First host_name of a server_name extension (RFC 6066 section 3)."""
    if end - pos < 2:
        raise AppParseError("TLS server_name extension too short")
    list_end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if list_end > end:
        raise AppParseError("TLS server_name list runs past its extension")
    pos += 2
    while pos + 3 <= list_end:
        kind = buf[pos]
        size = (buf[pos + 1] << 8) | buf[pos + 2]
        pos += 3
        if pos + size > list_end:
            raise AppParseError("TLS server name runs past its list")
        if kind == 0:
            return _text(buf[pos:pos + size])
        pos += size
    if pos != list_end:
        raise AppParseError("TLS server_name list has a partial entry")
    return None


def _versions(buf: bytes, pos: int, end: int) -> list[int]:
    """ClientHello supported_versions (RFC 8446 4.2.1), GREASE removed."""
    if end - pos < 1:
        raise AppParseError("TLS supported_versions extension too short")
    size = buf[pos]
    if size & 1 or pos + 1 + size > end:
        raise AppParseError("bad TLS supported_versions length")
    out = []
    for p in range(pos + 1, pos + 1 + size, 2):
        v = (buf[p] << 8) | buf[p + 1]
        if not _is_grease(v):
            out.append(v)
    return out


def _alpn(buf: bytes, pos: int, end: int) -> list[str]:
    """Protocol names of an ALPN extension (RFC 7301 section 3.1)."""
    if end - pos < 2:
        raise AppParseError("TLS ALPN extension too short")
    list_end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if list_end > end:
        raise AppParseError("TLS ALPN list runs past its extension")
    pos += 2
    out = []
    while pos < list_end:
        size = buf[pos]
        pos += 1
        if pos + size > list_end:
            raise AppParseError("TLS ALPN name runs past its list")
        out.append(_text(buf[pos:pos + size]))
        pos += size
    return out


def parse_server_hello(payload: bytes) -> ServerHello | None:
    """ServerHello version and cipher, or None unless the payload starts a TLS
    handshake record holding a ServerHello (HelloRetryRequest included)."""
    found = _handshake(payload, 2)
    if found is None:
        return None
    _record_version, have, hard = found
    hello = ServerHello(0, 0)
    got: dict[int, tuple[int, int]] = {}
    try:
        _need(11, have, hard)
        hello.version = (payload[9] << 8) | payload[10]
        pos = _fixed(payload, have, hard)
        _need(pos + 3, have, hard)              # cipher suite, compression method
        hello.cipher = (payload[pos] << 8) | payload[pos + 1]
        pos += 3
        if pos < hard:
            _walk(payload, pos, have, hard, _SERVER_EXTS, got)
    except _Cut:
        hello.truncated = True
    if have < hard:
        hello.truncated = True
    span = got.get(EXT_SUPPORTED_VERSIONS)
    if span:
        start, end = span
        if end - start != 2:
            raise AppParseError("bad TLS selected version length")
        hello.version = (payload[start] << 8) | payload[start + 1]
    return hello


_NAMES = {0x0300: ("ssl", "3.0"), 0x0301: ("tls", "1.0"), 0x0302: ("tls", "1.1"),
          0x0303: ("tls", "1.2"), 0x0304: ("tls", "1.3")}


def version_text(v: int) -> tuple[str, str]:
    """ECS tls.version_protocol / tls.version for a wire version: 0x0303 -> ("tls", "1.2")."""
    return _NAMES.get(v) or ("tls", f"{v:#06x}")
