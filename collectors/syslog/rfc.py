"""RFC 5424 and RFC 3164 headers -> SyslogMessage (PRI, time, host, app, procid, msgid, SD).

RFC 5424 is strict: a header that breaks the grammar is malformed (SyslogError). RFC 3164
is a description of practice, not a grammar, so anything after a valid PRI is accepted and
the parts that are recognisably there (timestamp, hostname, TAG[pid]:) are picked out. A
message without PRI is accepted as user.notice (RFC 3164 §4.3.3); an invalid PRI is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.syslog import timestamps
from collectors.syslog.message import DEFAULT_PRI, SyslogError, SyslogMessage

_PRI = re.compile(r"<(\d{1,3})>")
# TAG[pid]: as sent by syslog(3), and the rarer TAG[pid] without the colon.
_TAG_COLON = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]\s]{0,128})\])?:(?: |$)")
_TAG_PID = re.compile(r"([^\s\[\]:]{1,48})\[([^\]\s]{0,128})\](?: |$)")
# After TIMESTAMP HOSTNAME, rsyslog reads a bare word as the TAG too: it forwards RFC 5424
# messages in its traditional format as `host app text`, without the colon.
_TAG_WORD = re.compile(r"([A-Za-z0-9_./-]{1,48})(?: |$)()")
_PRINTABLE = re.compile(r"[!-~]+")      # PRINTUSASCII: the 5424 header alphabet
_LIMITS = {"hostname": 255, "app-name": 48, "procid": 128, "msgid": 32}
_SD_NAME = re.compile(r'[^\s="\]]{1,32}')


@dataclass
class _Sd:
    elements: dict[str, dict[str, str]] = field(default_factory=dict)
    end: int = 0                         # index just past the last ']'


@dataclass
class _Value:
    text: str
    end: int                             # index just past the closing quote


def parse(raw: bytes, received: float) -> SyslogMessage:
    """One framed message (no trailing LF) -> SyslogMessage, or SyslogError if malformed."""
    text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n\x00")
    if not text.strip():
        raise SyslogError("empty message")
    match = _PRI.match(text)
    if text.startswith("<") and match is None:
        raise SyslogError(f"invalid PRI in {text[:12]!r}")
    if match is None:
        return _parse_3164(text, DEFAULT_PRI, received, pri_present=False)
    pri = int(match.group(1))
    if pri > 191:
        raise SyslogError(f"PRI {pri} is above 191 (facility 23, severity 7)")
    rest = text[match.end():]
    if rest.startswith("1 "):
        return _parse_5424(rest[2:], pri)
    return _parse_3164(rest, pri, received)


# --- RFC 5424 --------------------------------------------------------------------------------
def _parse_5424(rest: str, pri: int) -> SyslogMessage:
    parts = rest.split(" ", 5)
    if len(parts) < 6:
        raise SyslogError("rfc5424: header has fewer than 7 fields")
    stamp, host, app, procid, msgid, tail = parts
    msg = SyslogMessage(
        pri=pri, format="rfc5424", version=1, message="",
        timestamp_text=None if stamp == "-" else stamp,
        timestamp=None if stamp == "-" else timestamps.parse_rfc3339(stamp),
        hostname=_header_field(host, "hostname"), app_name=_header_field(app, "app-name"),
        procid=_header_field(procid, "procid"), msgid=_header_field(msgid, "msgid"))
    sd = _parse_sd(tail)
    body = tail[sd.end:]
    if body and not body.startswith(" "):
        raise SyslogError("rfc5424: no space between STRUCTURED-DATA and MSG")
    msg.structured_data = sd.elements
    msg.message = msg.content = body[1:].removeprefix("\ufeff")   # MSG may start with a BOM
    return msg


def _header_field(value: str, name: str) -> str | None:
    if value == "-":
        return None
    if len(value) > _LIMITS[name] or not _PRINTABLE.fullmatch(value):
        raise SyslogError(f"rfc5424: {name} {value[:40]!r} is not 1-{_LIMITS[name]} "
                          "printable ASCII characters")
    return value


def _parse_sd(text: str) -> _Sd:
    """STRUCTURED-DATA: '-' or one or more [SD-ID param="value" ...] elements."""
    if text == "-" or text.startswith("- "):
        return _Sd(end=1)
    if not text.startswith("["):
        raise SyslogError("rfc5424: STRUCTURED-DATA is neither '-' nor '['")
    sd = _Sd()
    pos = 0
    while pos < len(text) and text[pos] == "[":
        pos = _parse_element(text, pos + 1, sd.elements)
    sd.end = pos
    return sd


def _parse_element(text: str, pos: int, out: dict[str, dict[str, str]]) -> int:
    """Parse one element after its '['; return the index past its ']'."""
    name = _SD_NAME.match(text, pos)
    if name is None:
        raise SyslogError(f"rfc5424: bad SD-ID at offset {pos}")
    params = out.setdefault(name.group(0), {})
    pos = name.end()
    while pos < len(text) and text[pos] == " ":
        param = _SD_NAME.match(text, pos + 1)
        if param is None or text[param.end():param.end() + 2] != '="':
            raise SyslogError(f"rfc5424: bad SD-PARAM at offset {pos + 1}")
        value = _sd_value(text, param.end() + 2)
        params[param.group(0)] = value.text
        pos = value.end
    if pos >= len(text) or text[pos] != "]":
        raise SyslogError(f"rfc5424: SD-ELEMENT not closed at offset {pos}")
    return pos + 1


def _sd_value(text: str, pos: int) -> _Value:
    """PARAM-VALUE up to the closing quote; \\" \\\\ \\] are escapes, other backslashes stay."""
    chars: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\]':
            chars.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return _Value("".join(chars), pos + 1)
        chars.append(char)
        pos += 1
    raise SyslogError("rfc5424: PARAM-VALUE not closed")


# --- RFC 3164 --------------------------------------------------------------------------------
def _parse_3164(rest: str, pri: int, received: float, pri_present: bool = True) -> SyslogMessage:
    msg = SyslogMessage(pri=pri, format="bare", message=rest, content=rest,
                        pri_present=pri_present)
    after = _take_timestamp(msg, rest, received)
    if msg.timestamp_text is not None:
        msg.format = "rfc3164"
        first, _, remainder = after.partition(" ")
        if first and not _is_tag(first) and _PRINTABLE.fullmatch(first):
            msg.hostname, after = first, remainder   # a token that is not TAG: is the host
    msg.content = after
    tag = _TAG_COLON.match(after) or _TAG_PID.match(after)
    if tag is None and msg.hostname is not None:
        tag = _TAG_WORD.match(after)
    if tag is not None:
        msg.app_name, msg.procid = tag.group(1), tag.group(2) or None
        after = after[tag.end():]
    msg.message = after
    return msg


def _is_tag(token: str) -> bool:
    return bool(_TAG_COLON.fullmatch(token) or _TAG_PID.fullmatch(token + " "))


def _take_timestamp(msg: SyslogMessage, rest: str, received: float) -> str:
    """Consume a BSD or RFC 3339 timestamp at the start of `rest`; return what follows."""
    bsd = timestamps.match_bsd_prefix(rest, received)
    if bsd is not None:
        msg.timestamp_text, msg.local_time = bsd.text, bsd.local
        return rest[len(bsd.text) + 1:]
    stamp = timestamps.match_rfc3339_prefix(rest)
    if stamp is not None:
        try:
            msg.timestamp = timestamps.parse_rfc3339(stamp)
        except SyslogError:
            return rest          # looks like a time but is not one (month 13): plain text
        msg.timestamp_text = stamp
        return rest[len(stamp) + 1:]
    return rest
