"""Beaconing: a host calling the same (destination, port) on a regular clock with regular sizes.

RITA-style scoring (activecm/rita, beacon analyzer): per (source, destination, port) pair, the
inter-arrival deltas of connection start times and the originator payload sizes are summarised
by Bowley (quartile) skewness and the median absolute deviation about the median (MADM). A clock
gives symmetric, tightly packed deltas; a browser gives bursts (many ~0 deltas and a long tail).
Unlike RITA's absolute 30 s cut-off, interval dispersion is taken *relative to the median
interval*, so a 1 h beacon with ±20 % jitter scores like a 2 s one with ±20 %.

The composite score is a weighted sum of named subscores in [0, 1] (weights validated to sum to
1), kept beside the total. Service ports that are regular by design (NTP 123 by default) are not
tracked at all: a host syncing its clock every 64 s is a perfect "beacon" and never interesting.
Only connections that carried originator payload count by default (a check-in sends data; SYN
retries and spoofed floods are regular too but belong to the scan / DoS detectors).
"""
from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorConfig
from detectors.clock import steady_clock
from detectors.dns_beacon import PORT as DNS_POLL, DnsPolls, poll_size
from detectors.kit import KeyedState, number, part, refresh_field, refreshed
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

SUBSCORES = ("interval_skew", "interval_dispersion", "size_skew", "size_dispersion",
             "connection_count")


class BeaconConfig(DetectorConfig):
    window_seconds: float = Field(86_400.0, ge=60, le=7 * 86_400,
                                  description="event-time window of connection starts analysed "
                                              "per pair (RITA analyses a day)")
    min_connections: int = Field(13, ge=5, le=10_000,
                                 description="connections a pair needs in the window before it "
                                             "is scored (13: a dozen periods)")
    full_count_connections: int = Field(30, ge=5, le=10_000,
                                        description="connections at which the connection_count "
                                                    "subscore reaches 1")
    min_interval_seconds: float = Field(1.0, ge=0.0, le=3600,
                                        description="median interval below which a pair is "
                                                    "treated as a burst, not a clock")
    interval_dispersion_cutoff: float = Field(0.5, gt=0, le=5,
                                              description="MADM of the intervals, as a fraction "
                                                          "of the median interval, at which "
                                                          "interval_dispersion reaches 0")
    size_dispersion_cutoff_bytes: float = Field(32.0, gt=0, le=1e6,
                                                description="MADM of originator payload bytes at "
                                                            "which size_dispersion reaches 0 "
                                                            "(RITA: 32)")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"interval_skew": 0.2, "interval_dispersion": 0.3,
                                 "size_skew": 0.1, "size_dispersion": 0.2,
                                 "connection_count": 0.2},
        description=f"weight of each subscore in the composite; keys {SUBSCORES}, sum 1")
    threshold: float = Field(0.8, ge=0.5, le=1.0, description="composite score that alerts")
    excluded_ports: frozenset[int] = Field(frozenset({123}),
                                           description="destination ports regular by design "
                                                       "(NTP), never tracked")
    refresh_seconds: float = refresh_field()     # a clock's count doubles ever more rarely
    require_payload: bool = Field(True, description="count only connections that carried "
                                  "originator payload: a check-in sends data, whereas unanswered "
                                  "SYN retries and spoofed floods are regular but are no session")
    max_timestamps: int = Field(256, ge=20, le=4096,
                                description="newest connection starts kept per pair")
    max_pairs: int = Field(10_000, ge=100, le=1_000_000,
                           description="pairs tracked at once; the least recently seen is "
                                       "evicted first")

    @model_validator(mode="after")
    def _check_weights(self) -> BeaconConfig:
        if set(self.weights) != set(SUBSCORES):
            raise ValueError(f"weights must name exactly {SUBSCORES}")
        if any(not 0 <= w <= 1 for w in self.weights.values()):
            raise ValueError("each weight must be in [0, 1]")
        if abs(sum(self.weights.values()) - 1.0) > 1e-6:
            raise ValueError("weights must sum to 1")
        if self.full_count_connections < self.min_connections:
            raise ValueError("full_count_connections must be >= min_connections")
        return self


@dataclass
class _Pair:
    starts: list[float] = field(default_factory=list)   # sorted connection start times
    sizes: list[int] = field(default_factory=list)      # orig payload bytes, same order
    evidence: list[str] = field(default_factory=list)   # newest event ids (<= 100)
    total: int = 0              # connections ever seen in the current run of the pair
    last_seen: float = 0.0
    reported_at: int = 0        # total at the last alert (re-raise when it doubles)
    next_score_at: int = 0      # score again only once the pair has grown (see on_event)
    raised_at: float = 0.0      # event time of the last alert, or of the last refresh try
    alert_first_seen: float | None = None   # the episode's start: the alert id's hour


@dataclass
class BeaconScore:
    score: float
    subscores: dict[str, float]
    median_interval: float
    connections: int


class BeaconDetector(Detector):
    name = "beaconing"
    version = "3"
    category = "beaconing"
    datasets = frozenset({schema.FLOW, schema.DNS})
    Config = BeaconConfig

    def __init__(self, config: BeaconConfig | None = None):
        super().__init__(config)
        self._pairs = KeyedState(_Pair, self.config.max_pairs)
        self._polls = DnsPolls(self.config.max_pairs)     # beacons over DNS (dns_beacon.py)

    @property
    def evicted_pairs(self) -> int:
        return self._pairs.evicted

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        key = self._key(event, event_time)
        if key is None:
            return []
        pair = self._pairs.touch(key, _Pair)
        self._add(pair, event, event_time)
        # A beacon goes on for days: its alert is refreshed while it keeps the clock, or
        # its stored last-seen time would fall hours behind (kit/reraise.py).
        refresh = refreshed(pair.reported_at, pair.raised_at, event_time,
                            self.config.refresh_seconds)
        if len(pair.starts) < self.config.min_connections or (
                pair.total < pair.next_score_at and not refresh):
            return []
        # Scoring sorts the pair's history: do it as the pair grows by a tenth, not on
        # every connection of a busy benign pair (that was 90 % of the detector's time).
        result = score_pair(pair.starts, pair.sizes, self.config)
        if refresh:
            pair.raised_at = event_time     # tried: a pair off its clock waits another period
        else:
            pair.next_score_at = pair.total + max(1, pair.total // 10)
        if result is None or (result.score < self.config.threshold and not steady_clock(
                pair.starts, pair.sizes, self.config.min_interval_seconds)):
            return []
        pair.reported_at, pair.raised_at = pair.total, event_time
        pair.next_score_at = 2 * pair.total     # the re-raise policy: not before it doubled
        if pair.alert_first_seen is None:
            pair.alert_first_seen = pair.starts[0]
        return [self._alert(key, pair, result)]

    def _key(self, event: dict, event_time: float) -> str | None:
        if part(event, "event").get("dataset") == schema.DNS:
            return self._polls.key(event, event_time)
        if part(event, "network").get("transport") not in ("tcp", "udp"):
            return None
        flow = part(event, "watchkeeper", "flow")
        if flow.get("final") is False:
            return None     # an interim update of a flow already counted at its start
        if self.config.require_payload and not flow.get("orig_bytes"):
            return None
        src, dst = part(event, "source"), part(event, "destination")
        if not src.get("ip") or not dst.get("ip") or dst.get("port") in self.config.excluded_ports:
            return None
        return f"{src['ip']}|{dst['ip']}|{dst.get('port')}"

    def _add(self, pair: _Pair, event: dict, start: float) -> None:
        # Flows arrive when they end, so starts come slightly out of order: insert sorted.
        idx = bisect.bisect_right(pair.starts, start)
        pair.starts.insert(idx, start)
        pair.sizes.insert(idx, int(number(part(event, "watchkeeper", "flow").get("orig_bytes"))
                                   or poll_size(event)))
        horizon = max(pair.starts[-1], pair.last_seen) - self.config.window_seconds
        cut = max(bisect.bisect_left(pair.starts, horizon),
                  len(pair.starts) - self.config.max_timestamps)
        if cut > 0:
            del pair.starts[:cut], pair.sizes[:cut]
        pair.evidence.append(event["event"]["id"])
        if len(pair.evidence) > 100:
            del pair.evidence[:-100]
        pair.total += 1
        pair.last_seen = max(pair.last_seen, start)

    def _alert(self, key: str, pair: _Pair, result: BeaconScore) -> AlertSpec:
        src, dst, port = key.split("|")
        over_dns = port == DNS_POLL         # dst is a registered domain, not an address
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.beaconing", rule_name="Periodic connections (beaconing)",
            severity=3 if result.score >= 0.9 else 2,
            message=(f"{src} polled fresh names under {dst} over DNS" if over_dns else
                     f"{src} connected to {dst}:{port}") + f" {pair.total} times at a regular "
                    f"{result.median_interval:.1f}s interval with regular sizes "
                    f"(score {result.score:.2f}"
                    + (")" if result.score >= self.config.threshold else "; a steady clock)"),
            rule_name_zh="周期性外联（信标）",
            message_zh=(f"{src} 通过 DNS 周期性查询 {dst} 下的新域名" if over_dns else
                        f"{src} 周期性连接 {dst}:{port}") + f" 共 {pair.total} 次，间隔稳定在 "
                       f"{result.median_interval:.1f} 秒，大小规律（评分 {result.score:.2f}"
                       + ("）" if result.score >= self.config.threshold else "；时钟稳定）"),
            entity=f"{src}->{dst}:{port}", first_seen=pair.alert_first_seen,
            last_seen=pair.last_seen,
            source_ip=src, destination_ip=None if over_dns else dst,
            related_ips=[src] if over_dns else [src, dst],
            evidence=list(pair.evidence), subscores=result.subscores, score=result.score,
            technique_id="T1071", technique_name="Application Layer Protocol", count=pair.total)

    def on_timer(self, now: float) -> list[AlertSpec]:
        horizon = now - self.config.window_seconds
        self._pairs.expire_idle(horizon)
        self._polls.expire(horizon)
        return []

    def snapshot(self) -> dict:
        return {"pairs": self._pairs.snapshot(), "evicted_pairs": self.evicted_pairs,
                **self._polls.snapshot()}

    def restore(self, state: dict) -> None:
        self._pairs.restore(state.get("pairs", {}), state.get("evicted_pairs", 0))
        self._polls.restore(state)


def score_pair(starts: list[float], sizes: list[int], config: BeaconConfig) -> BeaconScore | None:
    """RITA-style subscores and weighted composite; None when the pair is a burst, not a clock."""
    deltas = [b - a for a, b in zip(starts, starts[1:])]
    median = statistics.median(deltas)
    if median < config.min_interval_seconds or median <= 0:
        return None
    subscores = {
        "interval_skew": 1.0 - abs(bowley_skew(deltas)),
        "interval_dispersion": _unit(1.0 - madm(deltas) / median
                                     / config.interval_dispersion_cutoff),
        "size_skew": 1.0 - abs(bowley_skew(sizes)),
        "size_dispersion": _unit(1.0 - madm(sizes) / config.size_dispersion_cutoff_bytes),
        "connection_count": _unit(len(starts) / config.full_count_connections),
    }
    total = sum(config.weights[name] * value for name, value in subscores.items())
    return BeaconScore(round(total, 4), {k: round(v, 4) for k, v in subscores.items()},
                       median, len(starts))


def bowley_skew(values: list[float]) -> float:
    """Quartile skewness in [-1, 1]; 0 when the middle is degenerate (as RITA does)."""
    low, mid, high = statistics.quantiles(values, n=4, method="inclusive")
    if high == low or mid == low or mid == high:
        return 0.0
    return (low + high - 2 * mid) / (high - low)


def madm(values: list[float]) -> float:
    """Median absolute deviation about the median."""
    mid = statistics.median(values)
    return statistics.median(abs(v - mid) for v in values)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
