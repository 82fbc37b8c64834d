"""ArcSight Common Event Format (CEF) carried in syslog.

    CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension

Header fields escape `\\|` and `\\\\`; extension values escape `\\=`, `\\\\`, `\\n`, `\\r`, and
a value runs until the space before the next `key=`. Mapped to ECS the way Elastic's CEF
decoder does for the common keys; every extension is also kept under
`watchkeeper.syslog.cef.extensions`.
"""
from __future__ import annotations

import re

from collectors.syslog.ecs import Extraction
from collectors.syslog.message import SyslogMessage

_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z0-9_.\[\]-]+)=")
_UNESCAPE = {"\\": "\\", "=": "=", "|": "|", "n": "\n", "r": "\r"}
_HEADER = ("version", "device_vendor", "device_product", "device_version", "signature_id",
           "name", "severity")
_ENDPOINTS = {"src": ("source", "spt"), "dst": ("destination", "dpt")}
_PLAIN = {"shost": "source.domain", "dhost": "destination.domain", "smac": "source.mac",
          "dmac": "destination.mac", "act": "event.action", "request": "url.original",
          "requestMethod": "http.request.method", "fname": "file.name", "filePath": "file.path",
          "dvchost": "observer.hostname", "reason": "event.reason", "msg": "event.reason"}
_USERS = {"suser": "source.user.name", "duser": "destination.user.name"}
_SEVERITY_WORDS = {"low": 1, "medium": 2, "high": 3, "very-high": 4, "very high": 4}


def parse(msg: SyslogMessage) -> Extraction | None:
    text = msg.content
    start = text.find("CEF:")
    if start < 0 or (start > 0 and not text[start - 1].isspace()):
        return None
    fields = _split_header(text[start + 4:])
    if fields is None:
        return None
    header = dict(zip(_HEADER, fields[:7]))
    extensions = parse_extension(fields[7])
    return _extraction(header, extensions)


def _split_header(text: str) -> list[str] | None:
    """Seven unescaped-pipe-separated fields and the extension; None if fewer than seven."""
    fields: list[str] = []
    current: list[str] = []
    pos = 0
    while pos < len(text) and len(fields) < 7:
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in "\\|":
            current.append(text[pos + 1])
            pos += 2
            continue
        if char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        pos += 1
    if len(fields) < 7:
        return None
    return [*fields, text[pos:]]


def parse_extension(text: str) -> dict[str, str]:
    """`k1=v1 k2=v with spaces` -> {k1: v1, k2: 'v with spaces'}, escapes undone."""
    matches = [m for m in _KEY.finditer(text) if not _escaped(text, m.end() - 1)]
    out: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        out[match.group(1)] = _unescape(text[match.end():end].rstrip(" "))
    return out


def _escaped(text: str, pos: int) -> bool:
    """Is text[pos] preceded by an odd number of backslashes?"""
    count = 0
    while pos - count - 1 >= 0 and text[pos - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)), value)


def _extraction(header: dict[str, str], ext: dict[str, str]) -> Extraction:
    out = Extraction("cef")
    out.put("observer.vendor", header["device_vendor"])
    out.put("observer.product", header["device_product"])
    out.put("observer.version", header["device_version"])
    out.put("event.code", header["signature_id"])
    out.put("message", header["name"])
    out.put("event.severity", severity(header["severity"]))
    for key, (side, port_key) in _ENDPOINTS.items():
        if key in ext:
            out.endpoint(side, ext[key], ext.get(port_key))
    for key, dotted in _PLAIN.items():
        out.put(dotted, ext.get(key))
    for key, dotted in _USERS.items():
        out.user(dotted, ext.get(key))
    out.put("network.transport", ext.get("proto", "").lower() or None)
    out.put("network.protocol", ext.get("app", "").lower() or None)
    out.put("source.bytes", _count(ext.get("in")))
    out.put("destination.bytes", _count(ext.get("out")))
    outcome = ext.get("outcome", "").lower()
    out.put("event.outcome", outcome if outcome in ("success", "failure") else None)
    out.put("watchkeeper.syslog.cef", {**header, "extensions": ext})
    return out


def severity(text: str) -> int | None:
    """CEF 0-10 (or Low/Medium/High/Very-High) -> our 1-4: 0-3 low, 4-6 medium, 7-8 high,
    9-10 critical (the bands of the CEF spec)."""
    if text.strip().isascii() and text.strip().isdigit():
        value = int(text)
        if value > 10:
            return None
        return 1 if value <= 3 else 2 if value <= 6 else 3 if value <= 8 else 4
    return _SEVERITY_WORDS.get(text.strip().lower())


def _count(text: str | None) -> int | None:
    """Byte counts: a non-negative integer that fits a signed 64-bit field, or nothing."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)
