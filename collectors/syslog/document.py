"""One syslog message -> one ECS document (dataset watchkeeper.syslog).

Event time (`@timestamp`) is the header's timestamp when it carries a zone (RFC 5424, or
rsyslog's RFC 3339 forward format); a zone-less RFC 3164 timestamp is kept in
`watchkeeper.syslog.local_time` and the receive time is used instead, named in
`watchkeeper.syslog.time_source`.

`event.id` = stable_id("syslog", peer IP, raw bytes, header timestamp or receive time):
- the peer's port is left out: a sender that retransmits after a reconnect uses a new one;
- a message with a timestamp is identified by its bytes (the timestamp is in them), so a TCP
  retransmission or a replay overwrites instead of duplicating, while the same line logged
  again later differs by its timestamp (two identical lines in the same second of a 3164
  sender are indistinguishable and collapse: nothing in them tells them apart);
- a message without a timestamp adds its receive time, so repeats are all kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from watchkeeper import schema, timeutil

from collectors.syslog.ecs import Extraction
from collectors.syslog.message import SyslogMessage

MAX_ORIGINAL = 16 * 1024     # event.original and message: evidence, not the whole payload


@dataclass
class Origin:
    """Where and when a message arrived."""
    peer_ip: str
    peer_port: int
    transport: str           # "udp" | "tcp"
    received: float          # epoch seconds at receipt


def event_id(origin: Origin, raw: bytes, msg: SyslogMessage) -> str:
    when = msg.timestamp_text if msg.timestamp_text else f"received:{origin.received!r}"
    return schema.stable_id("syslog", origin.peer_ip, raw, when)


def build(msg: SyslogMessage, raw: bytes, origin: Origin, found: Extraction | None) -> dict:
    zoned = msg.timestamp is not None
    doc: dict = {
        "@timestamp": timeutil.format(msg.timestamp if zoned else origin.received),
        "event": {"id": event_id(origin, raw, msg), "kind": "event", "dataset": schema.SYSLOG,
                  "module": found.module if found else "syslog",
                  "created": timeutil.format(origin.received),
                  "original": raw[:MAX_ORIGINAL].decode("utf-8", "backslashreplace")},
        "message": msg.message[:MAX_ORIGINAL],
        "log": {"syslog": _log_syslog(msg),
                "source": {"address": peer_address(origin.peer_ip, origin.peer_port)}},
        "watchkeeper": {"syslog": {"format": msg.format, "transport": origin.transport,
                                   "time_source": "message" if zoned else "received"}},
    }
    _put(doc, "watchkeeper.syslog.local_time", msg.local_time)
    _put(doc, "host.hostname", msg.hostname)
    _put(doc, "process.name", msg.app_name)
    _put(doc, "process.pid", _pid(msg.procid))
    if found is not None:
        _merge(doc, found.fields)
        _related(doc, found)
    return doc


def _log_syslog(msg: SyslogMessage) -> dict:
    out: dict = {"priority": msg.pri,
                 "facility": {"code": msg.facility, "name": msg.facility_name},
                 "severity": {"code": msg.severity, "name": msg.severity_name}}
    for key, value in (("version", None if msg.version is None else str(msg.version)),
                       ("hostname", msg.hostname), ("appname", msg.app_name),
                       ("procid", msg.procid), ("msgid", msg.msgid),
                       ("structured_data", msg.structured_data or None)):
        if value is not None:
            out[key] = value
    return out


def _related(doc: dict, found: Extraction) -> None:
    related = {}
    if found.ips:
        related["ip"] = list(found.ips)
    if found.users:
        related["user"] = list(found.users)
    if related:
        doc["related"] = related


def _merge(into: dict, fragment: dict) -> None:
    """Deep merge: the program parser's fields refine the generic ones (e.g. CEF's message)."""
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _put(doc: dict, dotted: str, value) -> None:
    if value is None:
        return
    node = doc
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _pid(procid: str | None) -> int | None:
    if procid and procid.isascii() and procid.isdigit() and len(procid) < 10:
        return int(procid)
    return None


def peer_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
