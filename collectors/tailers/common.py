"""What the Zeek and Suricata parsers share: the parse outcome, ids, times, endpoints."""
from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass
from typing import Any

from watchkeeper import schema, timeutil
from watchkeeper.networks import InternalNetworks

EVENT, ALERT, HEADER, IGNORED, MALFORMED = "event", "alert", "header", "ignored", "malformed"


class MappingError(ValueError):
    """A parsed record lacks what its ECS document needs."""


@dataclass
class Parsed:
    """One line's outcome: a document to publish (event or alert), or why there is none."""
    outcome: str
    doc: dict | None = None
    reason: str = ""


@dataclass
class Context:
    """Where the documents come from: stamped on each and used for network.direction."""
    observer: str
    networks: InternalNetworks
    site: str | None = None


def record_id(module: str, kind: str, record: dict) -> str:
    """Hash of the record's content, not of the file or offset: a re-read (restart, a rotated
    file read twice, the same log as TSV and JSON) gives the same id."""
    content = {k: v for k, v in record.items() if not k.startswith("_")}  # _path, _write_ts
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return schema.stable_id(module, kind, text)


def epoch(value: Any, name: str = "ts") -> float:
    """Epoch seconds from a number, a numeric string or an ISO-8601 time with a zone."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{name} missing or not a time: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(value)
        except ValueError:
            number = _iso(str(value), name)
    if not math.isfinite(number) or not 0 <= number < 253402300800:   # year 1970..9999
        raise MappingError(f"{name} {value!r} is out of range")
    return number


def _iso(text: str, name: str) -> float:
    try:
        return timeutil.parse(text)
    except ValueError:
        raise MappingError(f"{name} {text!r} is not a time") from None


def endpoints(doc: dict, ctx: Context, src: Any, sport: Any, dst: Any, dport: Any) -> None:
    """source/destination/related.ip/network.direction from a connection's 4-tuple."""
    if src:
        doc["source"] = _endpoint(src, sport)
    if dst:
        doc["destination"] = _endpoint(dst, dport)
    related = sorted({address(ip) for ip in (src, dst) if ip})
    if related:
        doc["related"] = {"ip": related}
    if src and dst:
        direction = ctx.networks.direction(address(src), address(dst))
        doc.setdefault("network", {})["direction"] = direction


def _endpoint(ip: Any, port: Any) -> dict:
    out: dict = {"ip": address(ip)}
    if isinstance(port, int) and not isinstance(port, bool):
        if not 0 <= port <= 65535:
            raise MappingError(f"port {port} out of range")
        out["port"] = port
    return out


def address(value: Any) -> str:
    """A validated IP address string (ipaddress would also accept ints and bytes)."""
    if not isinstance(value, str):
        raise MappingError(f"address {value!r} is not a string")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise MappingError(f"{value!r} is not an IP address") from None


def compact(value: Any) -> Any:
    """Drop unset parts (None, "", [], {}) so documents carry only what the log said."""
    if isinstance(value, dict):
        out = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    return value


def stamp(doc: dict, ctx: Context) -> dict:
    doc["observer"] = {"name": ctx.observer, "type": "sensor"}
    if ctx.site:
        doc["labels"] = {"site": ctx.site}
    return doc


def pick(record: dict, *names: str) -> dict:
    """The named fields that are set, for the module-specific extras."""
    return {n: record[n] for n in names if record.get(n) not in (None, "", [])}
