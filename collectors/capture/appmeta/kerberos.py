"""Kerberos (RFC 4120) messages from one UDP datagram or the first TCP segment of a message.

Only what a login's outcome needs: the message type, the client principal and realm, the
service, and a KRB-ERROR's code. The DER walk reads definite lengths and single-byte tags
(all Kerberos uses); a field past the end of a cut segment is simply absent. The AS exchange
is a login: a wrong password is KDC_ERR_PREAUTH_FAILED, an unknown account
KDC_ERR_C_PRINCIPAL_UNKNOWN, success an AS-REP; KDC_ERR_PREAUTH_REQUIRED is the protocol's
first step (every Windows logon starts with it), not a failure.
"""
from __future__ import annotations

from dataclasses import dataclass

from collectors.capture.appmeta.errors import AppParseError

AS_REQ, AS_REP, TGS_REQ, TGS_REP, KRB_ERROR = 10, 11, 12, 13, 30
APPLICATION_TAGS = {0x60 | t: t for t in (AS_REQ, AS_REP, TGS_REQ, TGS_REP)} | {0x7E: KRB_ERROR}
PORT = 88
ERRORS = {6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
          12: "KDC_ERR_POLICY", 14: "KDC_ERR_ETYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED",
          23: "KDC_ERR_KEY_EXPIRED", 24: "KDC_ERR_PREAUTH_FAILED",
          25: "KDC_ERR_PREAUTH_REQUIRED", 31: "KRB_AP_ERR_BAD_INTEGRITY", 37: "KRB_AP_ERR_SKEW",
          52: "KRB_ERR_RESPONSE_TOO_BIG", 68: "KDC_ERR_WRONG_REALM"}
# Errors that mean the password (or the account) was wrong: a failed login try. MIT KDCs before
# 1.x answered a wrong encrypted timestamp with BAD_INTEGRITY (31) instead of PREAUTH_FAILED.
FAILED_LOGIN = frozenset({6, 18, 24, 31})


@dataclass(frozen=True, slots=True)
class KrbMessage:
    msg_type: int
    client: str | None = None         # the client principal's names joined by "/" ("alice")
    realm: str | None = None
    service: str | None = None        # "krbtgt/CORP.EXAMPLE"
    error_code: int | None = None


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the element at `pos`; the end is clipped to the data."""
    if pos + 2 > end:
        raise AppParseError("Kerberos element cut before its length")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        width = first & 0x7F
        if not 1 <= width <= 4 or pos + width > end:
            raise AppParseError("Kerberos element with a bad length")
        length = int.from_bytes(data[pos:pos + width], "big")
        pos += width
    return tag, pos, min(pos + length, end)


def _fields(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """Context-tagged fields [n] of a SEQUENCE's value: n -> (value start, value end)."""
    out, pos = {}, start
    while pos < end:
        try:
            tag, vstart, vend = _tlv(data, pos, end)
        except AppParseError:
            break                                   # cut by the segment end: keep what we have
        if tag & 0xE0 == 0xA0:
            out[tag & 0x1F] = (vstart, vend)
        pos = vend
    return out


def _sequence(data: bytes, span: tuple[int, int]) -> dict[int, tuple[int, int]]:
    tag, start, end = _tlv(data, *span)
    if tag != 0x30:
        raise AppParseError("Kerberos field is not a SEQUENCE")
    return _fields(data, start, end)


def _integer(data: bytes, span: tuple[int, int]) -> int:
    tag, start, end = _tlv(data, *span)
    if tag != 0x02 or not 1 <= end - start <= 8:
        raise AppParseError("Kerberos INTEGER expected")
    return int.from_bytes(data[start:end], "big", signed=True)


def _string(data: bytes, span: tuple[int, int]) -> str:
    _, start, end = _tlv(data, *span)
    return data[start:end].decode("utf-8", "replace")


def _principal(data: bytes, span: tuple[int, int] | None) -> list[str] | None:
    if span is None:
        return None
    fields = _sequence(data, span)
    if 1 not in fields:
        return None
    tag, pos, end = _tlv(data, *fields[1])
    names = []
    while tag == 0x30 and pos < end:
        _, vstart, vend = _tlv(data, pos, end)
        names.append(data[vstart:vend].decode("utf-8", "replace"))
        pos = vend
    return names or None


def parse_kerberos(payload: bytes, tcp: bool) -> KrbMessage | None:
    """The message, or None when the payload is not a Kerberos message."""
    data = payload[4:] if tcp else payload      # TCP: a 4-byte record length first
    if not data or data[0] not in APPLICATION_TAGS:
        return None
    msg_type = APPLICATION_TAGS[data[0]]
    _, start, end = _tlv(data, 0, len(data))
    top = _sequence(data, (start, end))
    if msg_type == KRB_ERROR:
        if 6 not in top:
            raise AppParseError("KRB-ERROR without an error code")
        client = _principal(data, top.get(8))
        service = _principal(data, top.get(10))
        realm = _string(data, top[9]) if 9 in top else None
        return KrbMessage(msg_type, "/".join(client) if client else None, realm,
                          "/".join(service) if service else None, _integer(data, top[6]))
    if msg_type in (AS_REQ, TGS_REQ):
        if 4 not in top:
            return KrbMessage(msg_type)             # cut before the request body
        body = _sequence(data, top[4])
        client = _principal(data, body.get(1))
        service = _principal(data, body.get(3))
        realm = _string(data, body[2]) if 2 in body else None
        return KrbMessage(msg_type, "/".join(client) if client else None, realm,
                          "/".join(service) if service else None)
    client = _principal(data, top.get(4))           # AS-REP / TGS-REP
    realm = _string(data, top[3]) if 3 in top else None
    return KrbMessage(msg_type, "/".join(client) if client else None, realm)


def login_outcome(request: KrbMessage | None, answer: KrbMessage | None) -> str:
    """ECS event.outcome of an AS exchange: success (AS-REP), failure (wrong password, unknown
    or revoked account), or unknown (no answer, or a protocol step such as PREAUTH_REQUIRED)."""
    if answer is None:
        return "unknown"
    if answer.msg_type == AS_REP:
        return "success"
    return "failure" if answer.error_code in FAILED_LOGIN else "unknown"


def is_login(request: KrbMessage | None, answer: KrbMessage | None) -> bool:
    """An AS exchange (a login); a KRB-ERROR seen without its request counts when it is about
    the ticket-granting service."""
    if request is not None:
        return request.msg_type == AS_REQ
    if answer is None:
        return False
    return answer.msg_type == AS_REP or (answer.msg_type == KRB_ERROR
                                         and (answer.service or "").startswith("krbtgt/"))
