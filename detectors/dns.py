"""DNS tunnelling: one source pushing many long, high-entropy, never-repeated subdomains under one
registered domain (iodine, dns2tcp, dnscat2, DNS exfiltration).

Data can only leave through a name the attacker's authoritative server sees, so a tunnel encodes
it in fresh labels under the attacker's domain. Per (source, registered domain) and event-time
window we count unique subdomains that are long and high-entropy; a CDN or cloud host also has
many unique subdomains, but they are short and low-entropy (`e1234.a`, `img3`). Record types a
tunnel prefers (TXT, NULL, CNAME, MX: bigger answers) raise confidence. The registered domain
comes from the Public Suffix List bundled with `tldextract`, used offline; a name under a suffix
not on the list (`.lan`, `.internal`, a private zone) registers as its last two labels, or as the
label below a configured `internal_zones` entry, so a tunnel to such a zone is not invisible.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

import tldextract
from pydantic import Field

from detectors.base import Detector, DetectorConfig
from detectors.dns_features import (DomainFeatures, Resolvers, downstream_verdict,
                                    encoded_verdict, looks_encoded, observe)
from detectors.dns_rotation import RotationTracker, failed, rotation_alert, shown_zh
from detectors.dns_spread import SpreadTracker, SpreadVerdict
from detectors.kit import KeyedState, Unreported, due, part, refresh_field
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

FORWARDED = "watchkeeper.dns.forwarded_for"    # set by the packet collector (appmeta)


class DnsTunnelConfig(DetectorConfig):
    window_seconds: float = Field(3600.0, ge=10, le=86_400,
                                  description="event-time window in which names are counted; an "
                                              "hour holds a dozen polls of a tunnel idling at "
                                              "one every five minutes")
    min_suspicious_names: int = Field(30, ge=5, le=100_000,
                                      description="unique long high-entropy subdomains under one "
                                                  "registered domain that make a tunnel")
    min_encoded_names: int = Field(10, ge=3, le=100_000, description=(
        "fresh encoded (hex/base32/base64) subdomains under one registered domain that make a "
        "tunnel together with one tunnel signal (detectors/dns_features.py); ten times as many "
        "make one alone"))
    min_subdomain_length: int = Field(20, ge=8, le=253,
                                      description="subdomain characters (dots excluded) that "
                                                  "make a name long")
    min_entropy_bits: float = Field(3.5, ge=1.0, le=6.0,
                                    description="Shannon entropy per character of the subdomain "
                                                "that makes a name random-looking")
    tunnel_query_types: frozenset[str] = Field(frozenset({"TXT", "NULL", "CNAME", "MX", "ANY"}),
                                               description="record types tunnels prefer (large "
                                                           "answers); they raise confidence")
    ignored_domains: frozenset[str] = Field(
        frozenset({"in-addr.arpa", "ip6.arpa", "local", "sophosxl.net", "mcafee.com", "e5.sk",
                   "cymru.com", "spamhaus.org", "spamhaus.net"}),
        description="registered domains never analysed (reverse lookups are long and unique; "
                    ".local is mDNS service discovery; file-reputation services of anti-virus "
                    "products and Spamhaus' hash lists put a hash in every name by design)")
    internal_zones: frozenset[str] = Field(frozenset(), description="private DNS zones (e.g. "
                                           "gov.internal): a name under one registers as the "
                                           "label below the zone; names under no public suffix "
                                           "and no listed zone register as their last two labels")
    min_spread_domains: int = Field(3, ge=2, le=1000, description=(
        "registered domains, each with >= 3 of a client's long high-entropy names, over which "
        "min_suspicious_names are counted together: a tunnel rotated over look-alike domains "
        "(detectors/dns_spread.py)"))
    min_rotation_domains: int = Field(5, ge=2, le=1000, description=(
        "registered domains among a client's last 13 failing look-ups, each under another "
        "domain than the one before and on a clock, that make an idle tunnel rotated over "
        "domains (detectors/dns_rotation.py)"))
    max_names_per_key: int = Field(512, ge=50, le=100_000,
                                   description="unique names remembered per (source, domain)")
    refresh_seconds: float = refresh_field()
    max_keys: int = Field(20_000, ge=100, le=1_000_000,
                          description="(source, domain) pairs tracked; the least recently seen "
                                      "is evicted first")


@dataclass
class _Key:
    window_start: float
    last_seen: float
    names: list[int] = field(default_factory=list)    # 64-bit hashes of unique subdomains
    suspicious: int = 0
    length_sum: int = 0         # over unique names
    entropy_sum: float = 0.0
    queries: int = 0
    tunnel_types: int = 0       # unique names first asked with a tunnel-friendly type
    overflow: int = 0           # unique names not remembered (max_names_per_key reached)
    evidence: list[str] = field(default_factory=list)
    reported_at: int = 0
    raised_at: float = 0.0
    features: DomainFeatures = field(default_factory=DomainFeatures)


@dataclass
class NameParts:
    subdomain: str
    registered: str


class DnsTunnelDetector(Detector):
    name = "dns_tunneling"
    version = "7"
    category = "dns_tunneling"
    datasets = frozenset({schema.DNS})
    Config = DnsTunnelConfig

    def __init__(self, config: DnsTunnelConfig | None = None):
        super().__init__(config)
        self._sets: dict[str, set[int]] = {}  # lookup sets beside the JSON-friendly lists
        self._keys = KeyedState(_Key, self.config.max_keys,
                                on_drop=lambda key: self._sets.pop(key, None))
        self.resolvers = Resolvers()
        self.unreported = Unreported()          # raised tunnels that grew since
        # Per client, over the domains a channel is rotated across: long high-entropy names
        # going out, and answers of encoded data coming back (detectors/dns_spread.py).
        cfg = self.config
        self.spread = SpreadTracker(cfg.min_suspicious_names, cfg.min_spread_domains,
                                    cfg.window_seconds, cfg.max_keys, cfg.refresh_seconds)
        self.spread_answers = SpreadTracker(cfg.min_encoded_names, cfg.min_spread_domains,
                                            cfg.window_seconds, cfg.max_keys,
                                            cfg.refresh_seconds)
        # Per client, idle polls that fail under the next domain each time (dns_rotation.py).
        self.rotation = RotationTracker(self.config.min_rotation_domains,
                                        self.config.window_seconds, self.config.max_keys)
        # Longest zone first, so "a.gov.internal" wins over "internal".
        self._zones = tuple(sorted({z.strip(".").lower() for z in self.config.internal_zones},
                                   key=len, reverse=True))

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        src = part(event, "source").get("ip")
        if schema.get(event, FORWARDED):
            return []       # a resolver relaying a client's query: the client's leg is judged
        self.resolvers.observe(event, event_time)
        if src in self.resolvers:
            return []       # answers other hosts' queries: what it asks, it asks for them
        question = part(event, "dns", "question")
        parts = split_name(question.get("name"), self._zones)
        if not src or parts is None or _ignored(parts.registered, self.config.ignored_domains):
            return []
        alerts = self._rotation(src, parts, event, event_time)
        key = f"{src}|{parts.registered}"
        state = self._touch(key, event_time)
        state.queries += 1
        state.last_seen = max(state.last_seen, event_time)
        fresh = bool(parts.subdomain) and self._is_new(key, state, parts.subdomain)
        if fresh and self._count(state, parts.subdomain, question.get("type"), event):
            spread = self.spread.add(src, parts.registered, state.suspicious, event_time,
                                     event["event"]["id"])
            if spread is not None:
                alerts.append(self._spread_alert(src, spread, event_time, answers=False))
        if observe(state.features, event, parts.subdomain, fresh, event_time):
            if len(state.evidence) < 100 and event["event"]["id"] not in state.evidence:
                state.evidence.append(event["event"]["id"])
            spread = self.spread_answers.add(src, parts.registered, state.features.data_answers,
                                             event_time, event["event"]["id"])
            if spread is not None:
                alerts.append(self._spread_alert(src, spread, event_time, answers=True))
        count, signals = self._evidence(state)
        if count and due(count, state.reported_at, state.raised_at, event_time,
                         self.config.refresh_seconds):
            alerts.append(self._raise(key, state, count, signals, event_time))
        elif state.reported_at and count > state.reported_at:
            self.unreported.grew(key, event_time)       # its final count comes on the timer
        return alerts

    def _raise(self, key: str, state: _Key, count: int, signals: list[str],
               now: float) -> AlertSpec:
        state.reported_at, state.raised_at = count, now
        self.unreported.reported(key)
        return self._alert(key, state, signals)

    def _final_counts(self, now: float) -> list[AlertSpec]:
        """A tunnel that grew past its last raise and then stopped: its final count."""
        alerts = []
        for key, state in self.unreported.settled_in(self._keys, now, self.config.refresh_seconds):
            count, signals = self._evidence(state)
            if 0 < state.reported_at < count:        # raised in this episode, grown since
                alerts.append(self._raise(key, state, count, signals, now))
        return alerts

    def _rotation(self, src: str, parts: NameParts, event: dict,
                  event_time: float) -> list[AlertSpec]:
        """Failing polls rotated over domains on a clock: an idle tunnel (dns_rotation.py)."""
        dns = part(event, "dns")
        name = f"{parts.subdomain}.{parts.registered}".lstrip(".")
        if not failed(dns):
            # Suricata logs a query and its answer as two records: the answer withdraws it.
            self.rotation.withdraw(src, name)
            return []
        verdict = self.rotation.add(src, parts.registered, name, event_time,
                                    event["event"]["id"])
        return [rotation_alert(self, src, verdict, event_time)] if verdict else []

    def _evidence(self, state: _Key) -> tuple[int, list[str]]:
        """(names that make the case, signals) of the strongest rule that holds, else (0, [])."""
        if state.suspicious >= self.config.min_suspicious_names:
            return state.suspicious, ["long_high_entropy_names"]
        verdict = encoded_verdict(state.features, len(state.names) + state.overflow,
                                  state.queries, state.tunnel_types,
                                  self.config.min_encoded_names)
        verdict = verdict or downstream_verdict(state.features, self.config.min_encoded_names)
        return (verdict.count, verdict.signals) if verdict else (0, [])

    def _touch(self, key: str, now: float) -> _Key:
        window = self.config.window_seconds
        return self._keys.touch(key, lambda: _Key(now, now),
                                stale=lambda st: now - st.window_start > window)

    @property
    def evicted_keys(self) -> int:
        return self._keys.evicted

    def _is_new(self, key: str, state: _Key, subdomain: str) -> bool:
        seen = self._sets.setdefault(key, set(state.names))
        digest = _hash(subdomain)
        if digest in seen:
            return False
        if len(state.names) < self.config.max_names_per_key:
            state.names.append(digest)
            seen.add(digest)
        else:
            state.overflow += 1     # beyond the cap a repeat may count again: an over-estimate
        return True

    def _count(self, state: _Key, subdomain: str, qtype: str | None, event: dict) -> bool:
        """Count a fresh name; True when it is long and high-entropy."""
        text = subdomain.replace(".", "")
        entropy = shannon_entropy(text)
        state.length_sum += len(text)
        state.entropy_sum += entropy
        state.tunnel_types += (qtype or "").upper() in self.config.tunnel_query_types
        long_enough = len(text) >= self.config.min_subdomain_length
        suspicious = long_enough and entropy >= self.config.min_entropy_bits
        state.suspicious += suspicious
        if (suspicious or looks_encoded(subdomain)) and len(state.evidence) < 100:
            state.evidence.append(event["event"]["id"])
        return suspicious

    def _spread_alert(self, src: str, verdict: SpreadVerdict, now: float,
                      answers: bool) -> AlertSpec:
        domains = verdict.domains
        shown = ", ".join(domains[:5]) + (f" and {len(domains) - 5} more" if len(domains) > 5
                                          else "")
        what = "answers of encoded data to fresh names" if answers \
            else "unique long high-entropy names"
        what_zh = "条针对新域名的编码数据应答" if answers else "个不重复的高熵长域名"
        floor = self.config.min_encoded_names if answers else self.config.min_suspicious_names
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.dns_tunneling.spread" + ("_answers" if answers else ""),
            rule_name="DNS tunnelling over many domains", severity=3,
            message=f"{src} {'received' if answers else 'queried'} {verdict.names} {what} "
                    f"spread over {len(domains)} registered domains ({shown}; signals: spread)",
            rule_name_zh="分散于多域名的 DNS 隧道",
            message_zh=f"{src} {'收到' if answers else '查询了'} {verdict.names} {what_zh}，分散在 "
                       f"{len(domains)} 个注册域名下（{shown_zh(domains)}；信号：spread）",
            entity=f"{src}->*", first_seen=verdict.state.first_seen, last_seen=now,
            source_ip=src, related_ips=[src], evidence=list(verdict.state.evidence),
            subscores={"volume": min(1.0, verdict.names / (2 * floor)),
                       "domains": min(1.0, len(domains) / (3 * self.config.min_spread_domains))},
            technique_id="T1071.004", technique_name="Application Layer Protocol: DNS",
            count=verdict.names)

    def _alert(self, key: str, state: _Key, signals: list[str]) -> AlertSpec:
        src, domain = key.split("|", 1)
        unique = len(state.names) + state.overflow
        subscores = {
            "volume": min(1.0, state.suspicious / (2 * self.config.min_suspicious_names)),
            "length": min(1.0, state.length_sum / unique / 52),   # 52: a full label's payload
            "entropy": min(1.0, state.entropy_sum / unique / 4.5),
            "uniqueness": min(1.0, unique / state.queries),
            "record_types": state.tunnel_types / unique,
            "encoded": min(1.0, state.features.encoded / unique),
            "encoded_answers": min(1.0, state.features.data_answers / unique),
        }
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.dns_tunneling", rule_name="DNS tunnelling",
            severity=3 if subscores["record_types"] >= 0.5 or subscores["volume"] >= 1 else 2,
            message=f"{src} queried {state.suspicious} unique long high-entropy names and "
                    f"{state.features.encoded} fresh encoded names under {domain}, "
                    f"{state.features.data_answers} answers of encoded data "
                    f"({state.queries} queries, mean subdomain {state.length_sum / unique:.0f} "
                    f"chars; signals: {', '.join(signals)})",
            rule_name_zh="DNS 隧道",
            message_zh=f"{src} 在 {domain} 下查询了 {state.suspicious} 个不重复的高熵长域名、"
                       f"{state.features.encoded} 个新的编码域名，收到 "
                       f"{state.features.data_answers} 条编码数据应答（共 {state.queries} 次"
                       f"查询，子域名平均 {state.length_sum / unique:.0f} 个字符；"
                       f"信号：{'、'.join(signals)}）",
            entity=f"{src}->{domain}", first_seen=state.window_start, last_seen=state.last_seen,
            source_ip=src, related_ips=[src], evidence=list(state.evidence),
            subscores={k: round(v, 4) for k, v in subscores.items()},
            technique_id="T1071.004", technique_name="Application Layer Protocol: DNS",
            count=max(state.suspicious, state.features.encoded, state.features.data_answers))

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = self._final_counts(now)          # before a settled window expires below
        for tracker, answers in ((self.spread, False), (self.spread_answers, True)):
            alerts += [self._spread_alert(c, v, v.last, answers) for c, v in tracker.finals(now)]
        self.resolvers.expire(now)
        self.spread.expire(now)
        self.spread_answers.expire(now)
        self.rotation.expire(now)
        horizon = now - self.config.window_seconds
        self._keys.expire(lambda s: s.window_start < horizon)
        return alerts

    def snapshot(self) -> dict:
        return {"keys": self._keys.snapshot(), "evicted_keys": self.evicted_keys,
                "resolvers": self.resolvers.snapshot(), "spread": self.spread.snapshot(),
                "spread_evicted": self.spread.clients.evicted,
                "spread_answers": self.spread_answers.snapshot(),
                "spread_answers_evicted": self.spread_answers.clients.evicted,
                "rotation": self.rotation.snapshot(),
                "rotation_evicted": self.rotation.clients.evicted,
                "unreported": self.unreported.snapshot(),
                "spread_unreported": self.spread.unreported.snapshot(),
                "spread_answers_unreported": self.spread_answers.unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self._keys.restore(state.get("keys", {}), state.get("evicted_keys", 0))
        self._sets = {}
        self.resolvers.restore(state.get("resolvers", {}))
        self.spread.restore(state.get("spread", {}), state.get("spread_evicted", 0))
        self.spread_answers.restore(state.get("spread_answers", {}),
                                    state.get("spread_answers_evicted", 0))
        self.rotation.restore(state.get("rotation", {}), state.get("rotation_evicted", 0))
        self.unreported.restore(state.get("unreported"))
        self.spread.unreported.restore(state.get("spread_unreported"))
        self.spread_answers.unreported.restore(state.get("spread_answers_unreported"))


@cache
def _extractor() -> tldextract.TLDExtract:
    # Bundled Public Suffix List only: no fetch, no cache directory (sensors are offline).
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def split_name(name: object, internal_zones: tuple[str, ...] | None = None) -> NameParts | None:
    """Subdomain and registered domain of a query name.

    With `internal_zones` None, only names under a public suffix have one (None otherwise).
    Given a tuple (longest zone first), a name under a listed private zone registers as the
    label below the zone, and any other name without a public suffix as its last two labels:
    tunnels to `.lan`, `.internal` or an unlisted suffix are then analysed too."""
    if not isinstance(name, str) or not name.strip("."):
        return None
    name = name.strip(".").lower()
    if internal_zones is not None:
        zone = next((z for z in internal_zones if name == z or name.endswith("." + z)), None)
        if zone is not None:
            return _below(name[:-len(zone)].rstrip("."), zone)
    parts = _extractor()(name)
    if parts.suffix and parts.domain:
        return NameParts(parts.subdomain, f"{parts.domain}.{parts.suffix}")
    if internal_zones is None or "." not in name:
        return None
    head, _, last = name.rpartition(".")
    return _below(head, last)


def _below(head: str, zone: str) -> NameParts:
    """`head` = the labels left of `zone`; the registered domain keeps the last of them."""
    if not head:
        return NameParts("", zone)
    subdomain, _, label = head.rpartition(".")
    return NameParts(subdomain, f"{label}.{zone}")


def _ignored(registered: str, ignored: frozenset[str]) -> bool:
    # "in-addr.arpa" is itself a public suffix, so reverse names register as "<x>.in-addr.arpa".
    return any(registered == d or registered.endswith("." + d) for d in ignored)


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def _hash(text: str) -> int:
    # Stable across processes (Python's hash() is salted), so snapshots restore anywhere.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
