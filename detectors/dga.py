"""DGA: one source resolving several algorithmically generated domain names.

Malware with a domain generation algorithm tries many fresh registered domains until one
answers, so most lookups fail with NXDOMAIN. A single random-looking name proves nothing (ad-tech
and CDN names look random too: ~2.6 % of real benign names score >= 0.9), so per source and
event-time window we require several distinct DGA-looking registered domains that also make up
a real share of what the host resolved, or several of them answered NXDOMAIN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from detectors import dgamodel
from detectors.base import Detector, DetectorConfig
from detectors.kit import KeyedState, Unreported, due, part, refresh_field
from detectors.dns import FORWARDED, _hash, split_name
from watchkeeper import schema
from watchkeeper.documents import AlertSpec


class DgaConfig(DetectorConfig):
    window_seconds: float = Field(3600.0, ge=60, le=86_400,
                                  description="event-time window in which names are counted")
    min_score: float = Field(0.9, ge=0.5, le=1.0,
                             description="model probability that makes a label DGA-looking")
    min_label_length: int = Field(7, ge=3, le=63,
                                  description="shorter registered labels are not scored "
                                              "(acronyms are ambiguous)")
    min_names: int = Field(8, ge=2, le=10_000,
                           description="distinct DGA-looking registered domains needed")
    min_ratio: float = Field(0.2, ge=0.0, le=1.0,
                             description="share of the source's distinct domains that must be "
                                         "DGA-looking, unless min_nxdomain_names is reached")
    min_nxdomain_names: int = Field(5, ge=1, le=10_000,
                                    description="DGA-looking domains answered NXDOMAIN that "
                                                "alert whatever the ratio")
    max_domains_per_source: int = Field(4096, ge=100, le=1_000_000,
                                        description="distinct domains remembered per source")
    refresh_seconds: float = refresh_field()
    max_sources: int = Field(50_000, ge=100, le=1_000_000,
                             description="sources tracked; the least recently seen is evicted")


@dataclass
class _Source:
    window_start: float
    last_seen: float
    domains: list[int] = field(default_factory=list)           # hashes of distinct domains
    flagged: dict[str, float] = field(default_factory=dict)    # domain -> model score
    nxdomain: list[str] = field(default_factory=list)          # flagged domains answered NX
    evidence: list[str] = field(default_factory=list)
    reported_at: int = 0
    raised_at: float = 0.0


class DgaDetector(Detector):
    name = "dga"
    version = "3"
    category = "dga"
    datasets = frozenset({schema.DNS})
    Config = DgaConfig

    def __init__(self, config: DgaConfig | None = None):
        super().__init__(config)
        self._model = dgamodel.load_default()
        self._sets: dict[str, set[int]] = {}      # lookup sets beside the JSON-friendly lists
        self._sources = KeyedState(_Source, self.config.max_sources,
                                   on_drop=lambda src: self._sets.pop(src, None))
        self._unreported = Unreported()    # raised hosts that looked up more DGA names since

    @property
    def evicted_sources(self) -> int:
        return self._sources.evicted

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        src = part(event, "source").get("ip")
        if schema.get(event, FORWARDED):
            return []       # a resolver relaying a client's query: the client's leg is judged
        dns = part(event, "dns")
        parts = split_name(dns.get("question", {}).get("name"))
        if not src or parts is None:
            return []
        state = self._touch(src, event_time)
        state.last_seen = max(state.last_seen, event_time)
        self._remember(src, state, parts.registered)
        label = parts.registered.split(".")[0]
        if len(label) < self.config.min_label_length:
            return []
        score = state.flagged.get(parts.registered)
        if score is None and len(state.flagged) < self.config.max_domains_per_source:
            score = self._model.score_samples([label])[0]
            if score < self.config.min_score:
                return []
            state.flagged[parts.registered] = round(score, 4)
            if len(state.evidence) < 100:
                state.evidence.append(event["event"]["id"])
        if score is not None and str(dns.get("response_code", "")).upper() == "NXDOMAIN" \
                and parts.registered not in state.nxdomain:
            state.nxdomain.append(parts.registered)
        return self._maybe_alert(src, state, flagged_now=score is not None)

    def _touch(self, src: str, now: float) -> _Source:
        window = self.config.window_seconds
        return self._sources.touch(src, lambda: _Source(now, now),
                                   stale=lambda st: now - st.window_start > window)

    def _remember(self, src: str, state: _Source, domain: str) -> None:
        seen = self._sets.setdefault(src, set(state.domains))
        digest = _hash(domain)
        if digest not in seen and len(state.domains) < self.config.max_domains_per_source:
            seen.add(digest)
            state.domains.append(digest)

    def _maybe_alert(self, src: str, state: _Source, flagged_now: bool) -> list[AlertSpec]:
        flagged = len(state.flagged)
        ratio = flagged / max(1, len(state.domains))
        enough = flagged >= self.config.min_names and (
            ratio >= self.config.min_ratio or len(state.nxdomain) >= self.config.min_nxdomain_names)
        # Refreshed only by a flagged name (the host's ordinary look-ups say nothing).
        raised_at = state.raised_at if flagged_now else None
        if not enough or not due(flagged, state.reported_at, raised_at, state.last_seen,
                                 self.config.refresh_seconds):
            if state.reported_at and flagged > state.reported_at:
                self._unreported.grew(src, state.last_seen)   # final count on the timer
            return []
        return [self._raise(src, state, ratio, state.last_seen)]

    def _raise(self, src: str, state: _Source, ratio: float, now: float) -> AlertSpec:
        state.reported_at, state.raised_at = len(state.flagged), now
        self._unreported.reported(src)
        return self._alert(src, state, ratio)

    def _alert(self, src: str, state: _Source, ratio: float) -> AlertSpec:
        flagged = len(state.flagged)
        nx_ratio = len(state.nxdomain) / flagged
        examples = sorted(state.flagged, key=lambda d: -state.flagged[d])[:5]
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.dga", rule_name="Domain generation algorithm lookups",
            severity=3 if nx_ratio >= 0.5 else 2,
            message=f"{src} resolved {flagged} DGA-looking domains ({len(state.nxdomain)} "
                    f"NXDOMAIN), e.g. {', '.join(examples)}",
            rule_name_zh="域名生成算法（DGA）域名解析",
            message_zh=f"{src} 解析了 {flagged} 个疑似 DGA 生成的域名（{len(state.nxdomain)} 个 "
                       f"NXDOMAIN），例如 {', '.join(examples)}",
            entity=src, first_seen=state.window_start, last_seen=state.last_seen,
            source_ip=src, related_ips=[src], evidence=list(state.evidence),
            subscores={"model_confidence": round(sum(state.flagged.values()) / flagged, 4),
                       "volume": min(1.0, flagged / (4 * self.config.min_names)),
                       "dga_share": round(ratio, 4), "nxdomain_ratio": round(nx_ratio, 4)},
            technique_id="T1568.002", technique_name="Dynamic Resolution: Domain Generation "
                                                     "Algorithms", count=flagged)

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = []               # first the final counts: a settled window may expire below
        for src, state in self._unreported.settled_in(self._sources, now,
                                                      self.config.refresh_seconds):
            if 0 < state.reported_at < len(state.flagged):
                ratio = len(state.flagged) / max(1, len(state.domains))
                alerts.append(self._raise(src, state, ratio, now))
        horizon = now - self.config.window_seconds
        self._sources.expire(lambda st: st.window_start < horizon)
        return alerts

    def snapshot(self) -> dict:
        return {"sources": self._sources.snapshot(), "evicted_sources": self.evicted_sources,
                "unreported": self._unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self._sources.restore(state.get("sources", {}), state.get("evicted_sources", 0))
        self._sets = {}
        self._unreported.restore(state.get("unreported"))
