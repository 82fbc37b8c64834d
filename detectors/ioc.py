"""Indicators of compromise: traffic to or from known-bad IPs, networks, domains and URLs.

Indicators come from CSV files (type,value,source,confidence,description) and STIX 2.1 bundles.
Lookups cost O(1) or O(log n) per observed value: a dict of addresses, sorted integer ranges per
IP version for networks, a label-suffix walk for domains; the indicator list is never scanned per
event. One alert per (indicator, internal host); repeats update it (`HitTable`).
Hot reload and alert updates: `WatchedFiles` and `HitTable` from the toolkit (detectors/kit).
"""
from __future__ import annotations

import csv
import ipaddress
import json
import re
import socket
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import stix2
from pydantic import Field
from stix2 import patterns as sp
from stix2.pattern_visitor import create_pattern_object

from detectors.base import Detector, DetectorConfig
from detectors.dns import FORWARDED
from detectors.kit import FileLoad, HitTable, WatchedFiles, hit_alert, part
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

DEFAULT_TECHNIQUE = ("T1071", "Application Layer Protocol")
_WORD_CONFIDENCE = {"low": 25, "medium": 50, "high": 75, "critical": 95}
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]{1,63}$")
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$", re.IGNORECASE)
_STIX_KINDS = {"ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain", "url": "url"}
_CSV_KINDS = {"ip": "ip", "ipv4": "ip", "ipv6": "ip", "ipv4-addr": "ip", "ipv6-addr": "ip",
              "cidr": "ip", "network": "ip", "domain": "domain", "domain-name": "domain",
              "hostname": "domain", "fqdn": "domain", "url": "url"}


class IocConfig(DetectorConfig):
    paths: tuple[str, ...] = Field((), max_length=256, description=(
        "CSV (.csv) and STIX 2.1 bundle (.json) files, or directories holding them"))
    reload_seconds: float = Field(30.0, ge=1, le=86_400, description=(
        "wall-clock seconds between checks of the files' modification times"))
    idle_seconds: float = Field(3600.0, ge=60, le=7 * 86_400, description=(
        "event time after which a quiet (indicator, host) pair is forgotten"))
    update_seconds: float = Field(60.0, ge=5, le=86_400, description=(
        "event time between updates of an alert whose count kept growing"))
    default_confidence: int = Field(50, ge=0, le=100, description=(
        "confidence of an indicator that states none"))
    max_tracked: int = Field(50_000, ge=100, le=5_000_000, description=(
        "(indicator, host) pairs kept; the least recently seen is dropped first"))


# --- indicators and files --------------------------------------------------------------------
@dataclass(frozen=True)
class Indicator:
    kind: str                       # ip | domain | url  ("ip" includes networks)
    value: str                      # normalised: canonical address/network, lower-case name
    source: str
    confidence: int | None          # 0..100
    description: str
    origin: str                     # file:line or file:STIX id, for the analyst
    technique_id: str | None = None
    technique_name: str | None = None
    valid_until: float | None = None


def normalise(kind: str, text: str) -> str:
    """Canonical form of an indicator or observed value; ValueError when it is not one."""
    text = text.strip()
    if kind == "ip":
        net = ipaddress.ip_network(text, strict=False)
        return str(net.network_address) if net.num_addresses == 1 else str(net)
    if kind == "domain":
        name = text.rstrip(".").lower()
        if not _DOMAIN.match(name):
            raise ValueError(f"{text!r} is not a domain name")
        return name
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"{text!r} is not an absolute URL")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/",
                       parts.query, ""))


def load_csv(path: Path) -> FileLoad:
    out = FileLoad()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"type", "value"} - set(reader.fieldnames or ())
        if missing:
            return FileLoad(errors=[f"{path}:1: missing column(s) {sorted(missing)}"], fatal=True)
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                out.items.append(_csv_indicator(row, where))
            except (ValueError, KeyError) as exc:
                out.errors.append(f"{where}: {exc}")
    return out


def _csv_indicator(row: dict, where: str) -> Indicator:
    kind = _CSV_KINDS.get((row.get("type") or "").strip().lower())
    if kind is None:
        raise ValueError(f"unknown indicator type {row.get('type')!r}")
    raw = (row.get("confidence") or "").strip().lower()
    confidence = _WORD_CONFIDENCE.get(raw) if raw in _WORD_CONFIDENCE else (
        int(raw) if raw else None)
    if confidence is not None and not 0 <= confidence <= 100:
        raise ValueError(f"confidence {raw} is outside 0..100")
    return Indicator(kind, normalise(kind, row.get("value") or ""),
                     (row.get("source") or "").strip() or "csv", confidence,
                     (row.get("description") or "").strip(), where)


def load_stix(path: Path) -> FileLoad:
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return FileLoad(errors=[f"{path}: not JSON: {exc}"], fatal=True)
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        return FileLoad(errors=[f"{path}: not a STIX bundle"], fatal=True)
    raw = [o for o in bundle.get("objects") or [] if isinstance(o, dict)]
    names = {o.get("id"): o.get("name") for o in raw if o.get("type") == "identity"}
    out = FileLoad()
    for obj in raw:
        if obj.get("type") != "indicator":
            continue
        where = f"{path}: {obj.get('id', '<no id>')}"
        try:
            out.items += _stix_indicators(stix2.parse(obj, allow_custom=True), names, where)
        except Exception as exc:   # stix2 raises many types; every one is this object's problem
            out.errors.append(f"{where}: {type(exc).__name__}: {exc}")
    return out


def _stix_indicators(ind, names: dict, where: str) -> list[Indicator]:
    if ind.get("revoked"):
        return []
    if ind.pattern_type != "stix":
        raise ValueError(f"pattern_type {ind.pattern_type!r} is not supported")
    technique = _stix_technique(ind)
    until = ind.get("valid_until")
    common = dict(source=names.get(ind.get("created_by_ref")) or "stix",
                  confidence=ind.get("confidence"), origin=where,
                  description=ind.get("name") or ind.get("description") or "",
                  technique_id=technique[0], technique_name=technique[1],
                  valid_until=until.timestamp() if until else None)
    return [Indicator(kind, normalise(kind, value), **common)
            for kind, value in _comparisons(create_pattern_object(ind.pattern, version="2.1"))]


def _comparisons(node) -> list[tuple[str, str]]:
    """(kind, value) of a pattern made only of ORs of `x:value =`/`ISSUBSET` comparisons: any
    of them alone is a hit. AND, FOLLOWEDBY, qualifiers and other properties are refused."""
    if isinstance(node, (sp.ObservationExpression, sp.ParentheticalExpression)):
        return _comparisons(getattr(node, "operand", None) or node.expression)
    if isinstance(node, (sp.OrObservationExpression, sp.OrBooleanExpression)):
        return [pair for operand in node.operands for pair in _comparisons(operand)]
    if isinstance(node, (sp.EqualityComparisonExpression, sp.IsSubsetComparisonExpression)):
        kind = _STIX_KINDS.get(node.lhs.object_type_name)
        props = [c.property_name for c in node.lhs.property_path]
        if not node.negated and kind and props == ["value"] and (
                node.operator == "=" or kind == "ip"):
            return [(kind, str(node.rhs.value))]
    raise ValueError(f"unsupported pattern part: {node}")


def _stix_technique(ind) -> tuple[str | None, str | None]:
    for ref in ind.get("external_references") or []:
        ext = ref.get("external_id") or ""
        if ref.get("source_name") == "mitre-attack" and _TECHNIQUE.match(ext):
            return ext.upper(), ref.get("description")
    for phase in ind.get("kill_chain_phases") or []:
        if _TECHNIQUE.match(phase.phase_name):
            return phase.phase_name.upper(), None
    return None, None


@lru_cache(maxsize=128)
def load_feed(path: str, mtime_ns: int, size: int) -> FileLoad:
    """Parse one file; cached on its stamp, so each partition's detector shares one parse."""
    file = Path(path)
    try:
        if file.suffix.lower() == ".csv":
            return load_csv(file)
        if file.suffix.lower() == ".json":
            return load_stix(file)
        return FileLoad(errors=[f"{path}: expected .csv or .json"], fatal=True)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return FileLoad(errors=[f"{path}: {exc}"], fatal=True)


# --- lookups ---------------------------------------------------------------------------------
@dataclass
class _Ranges:
    """Networks of one IP version as sorted integer ranges. `reach[i]` is the highest end among
    ranges 0..i, so a lookup walks back from the bisect point only while a range can still
    contain the address (overlapping and nested networks stay correct)."""
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    reach: list[int] = field(default_factory=list)
    items: list[Indicator] = field(default_factory=list)

    @classmethod
    def build(cls, nets: list[tuple[int, int, Indicator]]) -> _Ranges:
        out = cls()
        for start, end, ind in sorted(nets, key=lambda n: n[0]):
            out.starts.append(start)
            out.ends.append(end)
            out.reach.append(max(end, out.reach[-1] if out.reach else 0))
            out.items.append(ind)
        return out

    def find(self, value: int) -> Indicator | None:
        best, i = None, bisect_right(self.starts, value) - 1
        while i >= 0 and self.reach[i] >= value:
            if self.ends[i] >= value and (best is None or self.ends[i] - self.starts[i] < best[0]):
                best = (self.ends[i] - self.starts[i], self.items[i])   # narrowest network wins
            i -= 1
        return best[1] if best else None


@lru_cache(maxsize=65536)
def _address(text: str) -> tuple[int, int] | None:
    """(version, integer) of an address, or None. inet_pton is ~10x faster than ipaddress, and
    the cache helps more: the same hosts recur in every flow."""
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            return version, int.from_bytes(socket.inet_pton(family, text), "big")
        except (OSError, ValueError):
            continue
    return None


class IocIndex:
    def __init__(self, indicators: list[Indicator]):
        self.addresses: dict[tuple[int, int], Indicator] = {}    # (version, int) -> indicator
        self.domains: dict[str, Indicator] = {}
        self.urls: dict[str, Indicator] = {}
        nets: dict[int, list] = {4: [], 6: []}
        for ind in indicators:
            if ind.kind == "ip" and "/" in ind.value:
                text, prefix = ind.value.split("/")
                version, start = _address(text)    # normalised at load: no need to re-check
                host_bits = (32 if version == 4 else 128) - int(prefix)
                nets[version].append((start, start | ((1 << host_bits) - 1), ind))
            elif ind.kind == "ip":
                _keep(self.addresses, _address(ind.value), ind)
            else:
                _keep(self.domains if ind.kind == "domain" else self.urls, ind.value, ind)
        self.ranges = {version: _Ranges.build(n) for version, n in nets.items()}
        self.size = len(indicators)

    def ip(self, text: str) -> Indicator | None:
        parsed = _address(text)
        if parsed is None:
            return None
        return self.addresses.get(parsed) or self.ranges[parsed[0]].find(parsed[1])

    def domain(self, text: str) -> Indicator | None:
        labels = text.rstrip(".").lower().split(".")
        for i in range(len(labels)):          # a.b.evil.example, b.evil.example, evil.example…
            hit = self.domains.get(".".join(labels[i:]))
            if hit is not None:
                return hit
        return None

    def url(self, text: str) -> Indicator | None:
        try:
            return self.urls.get(normalise("url", text))
        except ValueError:
            return None




def _keep(table: dict, key, ind: Indicator) -> None:
    """On duplicates the most confident indicator wins."""
    old = table.get(key)
    if old is None or (ind.confidence or 0) > (old.confidence or 0):
        table[key] = ind


# --- detector --------------------------------------------------------------------------------
@dataclass
class Match:
    indicator: Indicator
    observed: str        # the value in the event that matched
    field: str           # where it was found
    host: str            # the internal host involved (the other side of the indicator)


class IocDetector(Detector):
    name = "ioc_match"
    version = "1"
    category = "ioc_match"
    datasets = frozenset({schema.FLOW, schema.DNS, schema.HTTP, schema.TLS})
    Config = IocConfig

    def __init__(self, config: IocConfig | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(config)
        cfg = self.config
        self.files = WatchedFiles(cfg.paths, (".csv", ".json"), load_feed, cfg.reload_seconds,
                                  clock)
        self.index = IocIndex(self.files.items())
        self.hits = HitTable(cfg.idle_seconds, cfg.update_seconds, cfg.max_tracked)

    def _reload(self) -> None:
        if self.files.poll():
            self.index = IocIndex(self.files.items())

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        self._reload()
        if not self.index.size:
            return []                     # no feed loaded: nothing can match
        alerts = []
        for match in self.matches(event):
            until = match.indicator.valid_until
            if until is not None and event_time > until:
                continue                  # expired STIX indicator (valid_until, event time)
            entity = f"{match.indicator.value}|{match.host}"
            hit = self.hits.record(entity, event_time, schema.get(event, "event.id"),
                                   self._context(match, event))
            if hit is not None:
                alerts.append(hit_alert(self, entity, hit))
        return alerts

    def matches(self, event: dict) -> list[Match]:
        """Every indicator an event touches: flows by address, the rest by name or URL."""
        src, dst = part(event, "source").get("ip"), part(event, "destination").get("ip")
        found: list[tuple[Indicator | None, str, str, str | None]] = []
        if part(event, "event").get("dataset") == schema.FLOW:
            found += [(self.index.ip(src), src, "source.ip", dst)] if src else []
            found += [(self.index.ip(dst), dst, "destination.ip", src)] if dst else []
        # A resolver relaying a client's lookup: the client is the host that asked.
        asker = schema.get(event, FORWARDED) or src
        url = part(event, "url")
        for name_field, name in (("dns.question.name", part(event, "dns", "question").get("name")),
                                 ("url.domain", url.get("domain")),
                                 ("tls.client.server_name",
                                  part(event, "tls", "client").get("server_name"))):
            if isinstance(name, str) and name:
                hit = self.index.domain(name) or self.index.ip(name)   # a Host: may be an IP
                found.append((hit, name, name_field, asker))
        full = url.get("full")
        if isinstance(full, str) and full:
            found.append((self.index.url(full), full, "url.full", src))
        return [Match(ind, observed, where, host or "-")
                for ind, observed, where, host in found if ind is not None]

    def _context(self, match: Match, event: dict) -> dict:
        ind = match.indicator
        confidence = ind.confidence if ind.confidence is not None else (
            self.config.default_confidence)
        technique = (ind.technique_id, ind.technique_name) if ind.technique_id else (
            DEFAULT_TECHNIQUE)
        src, dst = schema.get(event, "source.ip"), schema.get(event, "destination.ip")
        detail = f" ({ind.description})" if ind.description else ""
        return {
            "rule_id": f"ioc:{ind.kind}", "rule_name": f"IOC match: {ind.kind}",
            "severity": severity(confidence),
            "message": f"{match.host} and {ind.kind} indicator {ind.value} from {ind.source}"
                       f"{detail}: {match.field}={match.observed} [{ind.origin}]",
            "rule_name_zh": f"威胁情报命中：{ind.kind}",
            "message_zh": f"{match.host} 命中 {ind.kind} 类威胁情报指标 {ind.value}（来源 "
                          f"{ind.source}）{detail}：{match.field}={match.observed} [{ind.origin}]",
            "source_ip": src, "destination_ip": dst,
            "related_ips": sorted({ip for ip in (src, dst) if ip}),
            "subscores": {"confidence": confidence / 100},
            "technique_id": technique[0], "technique_name": technique[1]}

    def on_timer(self, now: float) -> list[AlertSpec]:
        self._reload()
        return [hit_alert(self, entity, hit) for entity, hit in self.hits.due(now)]

    def snapshot(self) -> dict:
        return {"hits": self.hits.snapshot()}

    def restore(self, state: dict) -> None:
        self.hits.restore(state.get("hits", {}))


def severity(confidence: int) -> int:
    """STIX confidence 0-100 -> alert severity 1-4 (low, medium, high, critical)."""
    return 1 if confidence < 30 else 2 if confidence < 60 else 3 if confidence < 85 else 4
