"""Slow denial of service (slowloris, slow POST): many connections held open, each starved.

A flood is volume; a slow attack is the opposite: one source opens hundreds of connections to
a server port and keeps each alive with a few bytes, never completing a request, until the
server's connection pool is exhausted. The collector reports every flow still open 5 s after
its start (an interim record, `final=False`) and again every active timeout, so an open
connection is visible while it runs. Counted here, per target: connections from one source
that are established, have sent request bytes and have received *nothing* back. Keep-alive
pools and websockets have had responses and do not count; a final record closes the
connection. Long-polling clients hold a request unanswered too, but a handful per source,
far below `min_connections`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from detectors.base import Detector, DetectorConfig
from detectors.kit import KeyedState, due, ended, part, refresh_field
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

OPEN_STATES = frozenset({"S1", "S2", "S3"})     # established, not closed by both sides


class SlowDosConfig(DetectorConfig):
    min_connections: int = Field(50, ge=5, le=1_000_000, description=(
        "starved connections open at once from one source to one server port that make an "
        "alert (browsers open ~6 per server)"))
    stale_seconds: float = Field(150.0, ge=10, le=86_400, description=(
        "an open connection with no record for this long is forgotten (its end was lost); "
        "keep it above the collector's active timeout"))
    refresh_seconds: float = refresh_field()     # a held count levels off: it never doubles
    max_open: int = Field(200_000, ge=100, le=10_000_000, description=(
        "starved connections tracked over all targets; the oldest are dropped first"))


@dataclass
class _Conn:
    src: str
    port: int
    seen: float                 # detector time of its latest record
    event_id: str


@dataclass
class _Target:
    conns: dict[str, _Conn] = field(default_factory=dict)          # uid -> connection
    counts: dict[str, int] = field(default_factory=dict)           # "src|port" -> open
    reported: dict[str, int] = field(default_factory=dict)         # "src|port" -> count
    raised: dict[str, float] = field(default_factory=dict)         # "src|port" -> time
    first_seen: dict[str, float] = field(default_factory=dict)     # "src|port" -> time


class SlowDosDetector(Detector):
    name = "slow_dos"
    version = "2"
    category = "dos"
    datasets = frozenset({schema.FLOW})
    key_field = "destination.ip"
    Config = SlowDosConfig

    def __init__(self, config: SlowDosConfig | None = None):
        super().__init__(config)
        self._targets = KeyedState(_Target)     # bounded by max_open over all targets
        self._now = 0.0
        self._open = 0
        self.evicted = 0

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        flow = part(event, "watchkeeper", "flow")
        dst = part(event, "destination")
        if part(event, "network").get("transport") != "tcp" or not dst.get("ip"):
            return []
        # the record's last packet: its start plus its duration (ns), no time string parsed
        self._now = max(self._now, ended(event, event_time))
        target, uid = self._targets.get(dst["ip"]), flow.get("uid", "")
        if flow.get("final", True) or not _starved(flow):
            if target is not None and uid in target.conns:
                self._forget(target, uid)
            return []
        target = self._targets.setdefault(dst["ip"], _Target)
        src, port = part(event, "source").get("ip", ""), int(dst.get("port") or 0)
        key = f"{src}|{port}"
        if uid not in target.conns:
            self._open += 1
            target.counts[key] = target.counts.get(key, 0) + 1
        target.conns[uid] = _Conn(src, port, self._now, event["event"]["id"])
        if self._open > self.config.max_open:
            self._drop_oldest()
        return self._judge(dst["ip"], target, key, event_time)   # its start: first_seen

    def _forget(self, target: _Target, uid: str) -> None:
        conn = target.conns.pop(uid)
        key = f"{conn.src}|{conn.port}"
        target.counts[key] -= 1
        if not target.counts[key]:
            del target.counts[key]
        self._open -= 1

    def _judge(self, dst: str, target: _Target, key: str, event_time: float) -> list[AlertSpec]:
        target.first_seen.setdefault(key, event_time)
        n, last = target.counts.get(key, 0), target.reported.get(key, 0)
        # Held connections are re-reported with their start time: the clock that tells the
        # attack goes on is their last packets' (`_now`).
        if n < self.config.min_connections or not due(
                n, last, target.raised.get(key, 0.0), self._now, self.config.refresh_seconds):
            return []
        target.reported[key], target.raised[key] = n, self._now
        src, port = key.rsplit("|", 1)
        held = [c for c in target.conns.values() if c.src == src and c.port == int(port)]
        last_seen = max(c.seen for c in held)
        return [self._alert(dst, src, int(port), held, target.first_seen[key], last_seen)]

    def _alert(self, dst: str, src: str, port: int, held: list[_Conn], first: float,
               last: float) -> AlertSpec:
        n = len(held)
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.dos.slow_connections", rule_name="Slow DoS (connection exhaustion)",
            severity=3 if n >= 4 * self.config.min_connections else 2,
            message=f"{src} holds {n} connections open to {dst}:{port}, each with request "
                    f"bytes sent and no response (slowloris / slow POST)",
            rule_name_zh="慢速拒绝服务（连接耗尽）",
            message_zh=f"{src} 对 {dst}:{port} 保持 {n} 个连接，每个连接都已发送请求数据却无响应"
                       f"（slowloris / 慢速 POST）",
            entity=f"{dst}|{src}|{port}", first_seen=first, last_seen=max(first, last),
            source_ip=src, destination_ip=dst, evidence=[c.event_id for c in held[:100]],
            subscores={"connections": min(1.0, n / (4 * self.config.min_connections)),
                       "starved": 1.0},
            technique_id="T1499.002", technique_name="Service Exhaustion Flood", count=n)

    def _drop_oldest(self) -> None:
        oldest = min(((c.seen, t, uid) for t in self._targets.values()
                      for uid, c in t.conns.items()), default=None)
        if oldest is not None:
            self._forget(oldest[1], oldest[2])
            self.evicted += 1

    def on_timer(self, now: float) -> list[AlertSpec]:
        self._now = max(self._now, now)
        horizon = self._now - self.config.stale_seconds
        for target in self._targets.values():
            for uid in [uid for uid, c in target.conns.items() if c.seen < horizon]:
                self._forget(target, uid)
            live = target.counts
            target.reported = {k: v for k, v in target.reported.items() if k in live}
            target.raised = {k: v for k, v in target.raised.items() if k in live}
            target.first_seen = {k: v for k, v in target.first_seen.items() if k in live}
        self._targets.expire(lambda t: not t.conns)
        return []

    def snapshot(self) -> dict:
        return {"targets": self._targets.snapshot(), "now": self._now, "evicted": self.evicted}

    def restore(self, state: dict) -> None:
        self._targets.restore(state.get("targets", {}))
        self._open = sum(len(t.conns) for t in self._targets.values())
        self._now = state.get("now", 0.0)
        self.evicted = state.get("evicted", 0)


def _starved(flow: dict) -> bool:
    """Established, request bytes sent, not one response byte back."""
    return (flow.get("conn_state") in OPEN_STATES and (flow.get("orig_bytes") or 0) > 0
            and (flow.get("resp_bytes") or 0) == 0)
