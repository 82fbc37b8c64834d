"""Floods (SYN / UDP / ICMP, single or spoofed multi-source) against one target.

Per target, new flows and packets are counted in short event-time buckets and compared with
an exponentially weighted mean and deviation of that target's own buckets, and with an
absolute floor so a quiet host going from 1 to 50 connections a second stays quiet. The
runner feeds a stream keyed by `destination.ip`, so every flow to one target reaches one
instance. A bucket is judged as soon as it crosses its threshold (not when it closes), so a
flood that ends the stream still alerts without a later event moving the clock.

Flow records arrive when flows end, so their start times (the event time) run backwards by
up to an inactivity timeout: buckets stay open for `max_lateness_seconds` and each record is
counted in the bucket of its own start; a bucket joins the baseline only once it is closed.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydantic import Field

from detectors.base import Detector, DetectorConfig
from detectors.kit import (InterimDelta, KeyedState, SeededEwma, due, number, part,
                           refresh_field, text)
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

# A TCP flow that never carried originator payload and never closed normally.
HALF_OPEN = frozenset({"S0", "S1", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"})
MAX_GAP_STEPS = 500          # after this many empty buckets the EWMA is ~0 anyway
WARMUP_FLOOD_FACTOR = 10     # during warm-up, buckets this far over the floor are floods
MIN_SAMPLE = 10              # flows past the crossing before the source/port mix is judged


class DosConfig(DetectorConfig):
    bucket_seconds: float = Field(1.0, ge=0.1, le=60,
                                  description="event-time bucket of the per-target counts")
    min_flows: int = Field(100, ge=10, le=10_000_000,
                           description="absolute floor: new flows to one target per bucket")
    min_packets: int = Field(20_000, ge=100, le=100_000_000,
                             description="absolute floor: packets to one target per bucket "
                                         "(a flow's packets spread over its duration)")
    deviations: float = Field(6.0, ge=1, le=100,
                              description="buckets above mean + deviations * std are anomalous")
    ewma_alpha: float = Field(0.02, gt=0, le=0.5,
                              description="weight of the newest bucket in the target baseline")
    warmup_seconds: float = Field(300.0, ge=0, le=86_400,
                                  description="history before the baseline is trusted; until "
                                              "then only the absolute floors apply")
    max_lateness_seconds: float = Field(120.0, ge=1, le=3600,
                                        description="how long a bucket stays open for flow "
                                                    "records that arrive late (flow end)")
    episode_gap_seconds: float = Field(60.0, ge=1, le=3600,
                                       description="quiet time that ends a flood episode")
    resume_seconds: float = Field(10.0, ge=1, le=3600,
                                  description="a flood back over the threshold after this "
                                              "long below it (same episode) is raised again")
    refresh_seconds: float = refresh_field()
    single_source_share: float = Field(0.9, ge=0.5, le=1,
                                       description="flood share that names a single source")
    scan_port_ratio: float = Field(0.5, ge=0.05, le=1,
                                   description="distinct ports per flow (one main source) that "
                                               "make it a port scan, not a flood")
    idle_expiry_seconds: float = Field(3600.0, ge=60, le=7 * 86_400,
                                       description="target state dropped after this idle time")
    max_targets: int = Field(100_000, ge=100, le=10_000_000,
                             description="targets tracked; least recently seen evicted")
    max_sources: int = Field(10_000, ge=10, le=1_000_000,
                             description="distinct sources and ports kept per flood episode")
    max_open_flows: int = Field(200_000, ge=1000, le=10_000_000,
                                description="long flows whose interim counters are tracked")


@dataclass
class _Episode:
    """A flood: flows that landed in over-threshold buckets, until a quiet gap."""
    start: float
    last: float
    flows: int = 0                        # incl. each bucket's flows before its crossing
    sampled: int = 0                      # flows recorded below (from the crossing on)
    half_open: int = 0
    peak_flows: int = 0
    peak_packets: float = 0.0
    expected: float = 1.0                 # baseline mean when the flood began
    sources: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    transports: dict[str, int] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    reported_at: int = 0                  # flows at the last alert (re-raise when it doubles)
    resumed: bool = False                 # back over the threshold after a lull, not raised yet
    raised_at: float = 0.0                # event time of the last alert
    top: str = ""                         # the busiest source so far


@dataclass
class _Target:
    first_seen: float
    last_seen: float
    folded: int                           # last bucket index folded into the baseline
    # index -> [flows, packets, 1 once its flows before the crossing joined the episode]
    buckets: dict[int, list[float]] = field(default_factory=dict)
    flow_base: SeededEwma = field(default_factory=SeededEwma)     # per-bucket counts
    packet_base: SeededEwma = field(default_factory=SeededEwma)
    episode: _Episode | None = None

    def decay(self, empty_buckets: int, alpha: float) -> None:
        self.flow_base.decay(empty_buckets, alpha, MAX_GAP_STEPS)
        self.packet_base.decay(empty_buckets, alpha, MAX_GAP_STEPS)


class DosDetector(Detector):
    name = "dos"
    version = "4"
    category = "dos"
    datasets = frozenset({schema.FLOW})
    key_field = "destination.ip"
    Config = DosConfig

    def __init__(self, config: DosConfig | None = None):
        super().__init__(config)
        self._targets = KeyedState(_Target, self.config.max_targets)
        self._open = InterimDelta(self.config.max_open_flows)   # packets already counted
        self.late = 0                        # records older than every open bucket

    @property
    def evicted(self) -> int:
        """Targets and open flows dropped by the caps."""
        return self._targets.evicted + self._open.evicted

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        dst = part(event, "destination").get("ip")
        if not dst:
            return []
        new_flow, packets = self._increment(event)
        if not new_flow and not packets:
            return []
        target = self._target(dst, event_time)
        index = int(event_time // self.config.bucket_seconds)
        if index <= target.folded:
            self.late += 1
            return []
        bucket = target.buckets.setdefault(index, [0, 0.0, 0])
        bucket[0] += new_flow
        bucket[1] += packets
        return self._judge(dst, target, bucket, event, event_time, new_flow)

    def _increment(self, event: dict) -> tuple[int, float]:
        """(1 if this record opens a flow, its new packets spread over its duration)."""
        total = part(event, "source").get("packets", 0) or 0
        seen = self._open.advance(event, total)
        duration = number(part(event, "event").get("duration")) / 1e9
        spread = max(1.0, duration / self.config.bucket_seconds)
        return (1 if seen is None else 0), max(0, total - (seen or 0)) / spread

    def _target(self, dst: str, event_time: float) -> _Target:
        target = self._targets.touch(dst, lambda: _Target(
            event_time, event_time,
            int(event_time // self.config.bucket_seconds) - self._horizon_buckets()))
        target.last_seen = max(target.last_seen, event_time)
        self._fold(target, int(target.last_seen // self.config.bucket_seconds))
        return target

    def _horizon_buckets(self) -> int:
        return max(1, int(self.config.max_lateness_seconds / self.config.bucket_seconds))

    def _fold(self, target: _Target, newest: int) -> None:
        """Close buckets older than the lateness horizon into the baseline, gaps as zeros."""
        until = newest - self._horizon_buckets()
        if until <= target.folded:
            return     # every open bucket is newer than `folded` (older events are late)
        alpha = self.config.ewma_alpha
        for index in sorted(i for i in target.buckets if i <= until):
            flows, packets = target.buckets.pop(index)[:2]
            target.decay(index - target.folded - 1, alpha)
            if not self._teaches_flood(target, flows, packets):
                target.flow_base.update(flows, alpha)
                target.packet_base.update(packets, alpha)
            target.folded = index
        if until > target.folded:
            target.decay(until - target.folded, alpha)
            target.folded = until

    def _teaches_flood(self, target: _Target, flows: float, packets: float) -> bool:
        """Floods must not teach the baseline; while warming up only gross ones are known."""
        if self._warm(target):
            return self._over(target, flows, packets)
        return (flows >= WARMUP_FLOOD_FACTOR * self.config.min_flows
                or packets >= WARMUP_FLOOD_FACTOR * self.config.min_packets)

    def _warm(self, target: _Target) -> bool:
        return target.last_seen - target.first_seen >= self.config.warmup_seconds

    def _over(self, target: _Target, flows: float, packets: float) -> bool:
        k, warm = self.config.deviations, self._warm(target)
        flow_limit = max(self.config.min_flows, target.flow_base.threshold(k) if warm else 0)
        packet_limit = max(self.config.min_packets,
                           target.packet_base.threshold(k) if warm else 0)
        return flows >= flow_limit or packets >= packet_limit

    def _judge(self, dst: str, target: _Target, bucket: list[float], event: dict,
               event_time: float, new_flow: int) -> list[AlertSpec]:
        ep = target.episode
        if ep is not None and event_time - ep.last > self.config.episode_gap_seconds:
            ep = target.episode = None
        if not self._over(target, bucket[0], bucket[1]):
            return []
        if ep is None:
            ep = target.episode = _Episode(event_time, event_time)
            ep.expected = max(1.0, target.flow_base.mean)
            bucket[2:] = [0]
        elif event_time - ep.last >= self.config.resume_seconds:
            # A second wave inside the episode (the same or new sources after a pause): the
            # stored alert is brought up to date now, not only once the total has doubled.
            ep.resumed = True
        if len(bucket) > 2 and not bucket[2]:
            ep.flows += int(bucket[0]) - new_flow      # the flows before this bucket crossed
            bucket[2] = 1
        self._record(ep, event, event_time, new_flow)
        ep.peak_flows = max(ep.peak_flows, int(bucket[0]))
        ep.peak_packets = max(ep.peak_packets, bucket[1])
        # A flood that goes on for an hour doubles ever more rarely: it is also raised each
        # `refresh_seconds`, so its stored alert's count and last-seen time stay current.
        raise_now = ep.resumed or due(ep.flows, ep.reported_at, ep.raised_at, event_time,
                                      self.config.refresh_seconds)
        if raise_now and ep.sampled >= MIN_SAMPLE and not self._scan(ep):
            ep.reported_at, ep.resumed, ep.raised_at = ep.flows, False, event_time
            return [self._alert(dst, ep)]
        return []

    def _record(self, ep: _Episode, event: dict, event_time: float, new_flow: int) -> None:
        ep.start, ep.last = min(ep.start, event_time), max(ep.last, event_time)
        if not new_flow:
            return
        ep.flows += 1
        ep.sampled += 1
        ep.half_open += _half_open(event)
        cap = self.config.max_sources
        src = part(event, "source").get("ip", "")
        _bump(ep.sources, src, cap)
        if ep.sources.get(src, 0) > ep.sources.get(ep.top, 0):
            ep.top = src                      # kept as we go: max() per event is too slow
        _bump(ep.ports, str(part(event, "destination").get("port")), cap)
        _bump(ep.transports, part(event, "network").get("transport", "other"), cap)
        if len(ep.evidence) < 100:
            ep.evidence.append(event["event"]["id"])

    def _top_source(self, ep: _Episode) -> tuple[str | None, float]:
        """(the single source if one sends nearly all, share of the busiest source)."""
        share = ep.sources.get(ep.top, 0) / max(1, ep.sampled)
        return (ep.top if share >= self.config.single_source_share else None), share

    def _scan(self, ep: _Episode) -> bool:
        """Few sources, nearly one port per flow: the scan detector's business."""
        _, share = self._top_source(ep)
        return share >= 0.5 and len(ep.ports) / max(1, ep.sampled) >= self.config.scan_port_ratio

    def _alert(self, dst: str, ep: _Episode) -> AlertSpec:
        transport = max(ep.transports, key=ep.transports.get) if ep.transports else "other"
        half_open = ep.half_open / max(1, ep.sampled)
        single, share = self._top_source(ep)
        syn = transport == "tcp" and half_open >= 0.5
        kind = "SYN" if syn else transport.upper() if transport in ("udp", "icmp") else "traffic"
        top = [ip for ip, _ in Counter(ep.sources).most_common(49)]
        more = "+" if len(ep.sources) >= self.config.max_sources else ""
        origin = f"from {single}" if single else f"from {len(ep.sources)}{more} sources"
        origin_zh = f"来自 {single}" if single else f"来自 {len(ep.sources)}{more} 个源地址"
        ratio = max(ep.peak_flows, 1) / ep.expected
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id=f"wk.dos.{kind.lower()}_flood", rule_name=f"{kind} flood",
            severity=3 if ep.peak_flows >= 10 * self.config.min_flows or not single else 2,
            message=f"{kind} flood against {dst} {origin}: {ep.flows} flows, peak "
                    f"{ep.peak_flows} flows / {ep.peak_packets:.0f} packets per "
                    f"{self.config.bucket_seconds:g} s ({ratio:.0f}x baseline), "
                    f"{half_open:.0%} half-open",
            rule_name_zh=f"{kind} 洪泛攻击" if kind != "traffic" else "流量洪泛攻击",
            message_zh=f"针对 {dst} 的{kind if kind != 'traffic' else '流量'}洪泛攻击（{origin_zh}）："
                       f"{ep.flows} 条流，峰值每 {self.config.bucket_seconds:g} 秒 "
                       f"{ep.peak_flows} 条流 / {ep.peak_packets:.0f} 个包（基线的 {ratio:.0f} 倍），"
                       f"半开连接占 {half_open:.0%}",
            entity=dst, first_seen=ep.start, last_seen=ep.last,
            source_ip=single, destination_ip=dst, related_ips=[dst, *top],
            evidence=list(ep.evidence),
            subscores={"rate_vs_baseline": max(0.0, min(1.0, 1 - 1 / ratio)),
                       "half_open_ratio": half_open, "source_spread": 1.0 - share},
            technique_id="T1499" if syn else "T1498",
            technique_name="Endpoint Denial of Service" if syn else "Network Denial of Service",
            count=ep.flows)

    def on_timer(self, now: float) -> list[AlertSpec]:
        horizon = now - self.config.idle_expiry_seconds
        self._targets.expire(lambda t: t.last_seen < horizon)
        alerts, gap, quiet = [], self.config.episode_gap_seconds, self.config.refresh_seconds
        for dst, target in self._targets.items():
            ep = target.episode
            if ep is None:
                continue
            idle = now - ep.last
            # A flood that grew past its last raise and stopped: its final count, once.
            if (ep.reported_at and ep.flows > ep.reported_at and (idle >= quiet or idle > gap)
                    and not self._scan(ep)):
                ep.reported_at, ep.raised_at = ep.flows, now
                alerts.append(self._alert(dst, ep))
            if idle > gap:
                target.episode = None
        return alerts

    def snapshot(self) -> dict:
        return {"targets": self._targets.snapshot(), "open": self._open.snapshot(),
                "evicted": self.evicted, "late": self.late}

    def restore(self, state: dict) -> None:
        self._targets.restore(state.get("targets", {}), state.get("evicted", 0))
        self._open.restore(state.get("open", {}))
        self.late = state.get("late", 0)


def _bump(counts: dict[str, int], key: str, cap: int) -> None:
    if key in counts or len(counts) < cap:
        counts[key] = counts.get(key, 0) + 1


def _half_open(event: dict) -> int:
    flow = part(event, "watchkeeper", "flow")
    return int(part(event, "network").get("transport") == "tcp"
               and text(flow.get("conn_state")) in HALF_OPEN and not flow.get("orig_bytes"))
