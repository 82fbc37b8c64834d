"""Per-host windowed features for the anomaly scorer (a documented, versioned list).

One row per (internal host, tumbling event-time window). A host is *internal* when it initiates
the flow and the flow's ECS `network.direction` is `outbound` or `internal` (the collector set it
from the configured internal networks). Windows are aligned to multiples of `window_seconds`
since the epoch, so a replay, a restart and training all cut the same windows.

Features, version FEATURES_VERSION (change the version whenever a definition changes: a model
trained on another version is refused by `detectors.model.load`):

  flows_out          log1p(flows the host initiated)
  distinct_dsts      log1p(distinct destination addresses)
  distinct_ports     log1p(distinct destination ports)
  bytes_out          log1p(IP bytes sent, `source.bytes`)
  bytes_in           log1p(IP bytes received, `destination.bytes`)
  failed_ratio       fraction of flows with no session (TCP conn_state S0/REJ/RSTO/RSTOS0/SH/OTH)
  external_ratio     fraction of flows to external addresses (direction `outbound`)
  mean_duration      log1p(mean flow duration, seconds)
  upload_ratio       bytes_out / (bytes_out + bytes_in), 0.5 when both are 0
  bytes_per_flow_out log1p(mean IP bytes sent per flow)

Counts and volumes are log1p so a tenfold change weighs the same at every scale; ratios stay in
[0, 1]. Distinct sets are capped (`MAX_DISTINCT`) so one host's memory is bounded.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from detectors.kit.events import part
from watchkeeper import schema, timeutil

FEATURES_VERSION = "1"
FEATURE_NAMES: tuple[str, ...] = (
    "flows_out", "distinct_dsts", "distinct_ports", "bytes_out", "bytes_in", "failed_ratio",
    "external_ratio", "mean_duration", "upload_ratio", "bytes_per_flow_out",
)
# Human wording for alert messages, one per feature.
FEATURE_LABELS: dict[str, str] = {
    "flows_out": "flows", "distinct_dsts": "distinct destinations",
    "distinct_ports": "distinct destination ports", "bytes_out": "bytes sent",
    "bytes_in": "bytes received", "failed_ratio": "failed-connection ratio",
    "external_ratio": "external-destination ratio", "mean_duration": "mean flow duration",
    "upload_ratio": "upload ratio", "bytes_per_flow_out": "bytes sent per flow",
}
FAILED_STATES = frozenset({"S0", "REJ", "RSTO", "RSTOS0", "SH", "OTH"})
INTERNAL_DIRECTIONS = frozenset({"outbound", "internal"})
MAX_DISTINCT = 4096          # per host and window; past it a set stops growing (counts saturate)


@dataclass
class HostWindow:
    """Running totals of one host in one window; JSON-friendly through `to_json`/`from_json`."""
    host: str
    start: float                              # window start (aligned), event time
    first_seen: float
    last_seen: float
    flows: int = 0
    failed: int = 0
    external: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    duration_s: float = 0.0
    dsts: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    evidence: list[str] = field(default_factory=list)   # a few event ids, for the alert

    def add(self, event: dict, event_time: float) -> None:
        src, dst = part(event, "source"), part(event, "destination")
        net = part(event, "network")
        flow = part(event, "watchkeeper", "flow")
        self.first_seen = min(self.first_seen, event_time)
        self.last_seen = max(self.last_seen, event_time)
        self.flows += 1
        self.failed += net.get("transport") == "tcp" and flow.get("conn_state") in FAILED_STATES
        self.external += net.get("direction") == "outbound"
        self.bytes_out += int(src.get("bytes") or 0)
        self.bytes_in += int(dst.get("bytes") or 0)
        self.duration_s += (part(event, "event").get("duration") or 0) / 1e9
        if len(self.dsts) < MAX_DISTINCT and dst.get("ip"):
            self.dsts.add(dst["ip"])
        if len(self.ports) < MAX_DISTINCT and dst.get("port") is not None:
            self.ports.add(int(dst["port"]))
        if len(self.evidence) < 20 and part(event, "event").get("id"):
            self.evidence.append(event["event"]["id"])

    def vector(self) -> list[float]:
        """The feature row, in FEATURE_NAMES order."""
        n = max(1, self.flows)
        total = self.bytes_out + self.bytes_in
        return [
            math.log1p(self.flows), math.log1p(len(self.dsts)), math.log1p(len(self.ports)),
            math.log1p(self.bytes_out), math.log1p(self.bytes_in), self.failed / n,
            self.external / n, math.log1p(self.duration_s / n),
            self.bytes_out / total if total else 0.5, math.log1p(self.bytes_out / n),
        ]

    def to_json(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k not in ("dsts", "ports")},
                "dsts": sorted(self.dsts), "ports": sorted(self.ports)}

    @classmethod
    def from_json(cls, data: dict) -> "HostWindow":
        data = dict(data)
        return cls(**{**data, "dsts": set(data["dsts"]), "ports": set(data["ports"])})


def window_start(event_time: float, window_seconds: float) -> float:
    return math.floor(event_time / window_seconds) * window_seconds


def internal_host(event: dict) -> str | None:
    """The internal host a flow event counts for, or None (not a flow, or external initiator)."""
    if part(event, "event").get("dataset") != schema.FLOW:
        return None
    if part(event, "network").get("direction") not in INTERNAL_DIRECTIONS:
        return None
    return part(event, "source").get("ip") or None


def event_time_of(event: dict) -> float:
    """The event time the detection runner uses (`@timestamp`), so training cuts the same windows."""
    return timeutil.parse(event["@timestamp"])


def windows_from_events(events: Iterable[dict], window_seconds: float) -> Iterator[HostWindow]:
    """Every (host, window) of a stream of flow events, for training.

    Events are expected roughly in time order (as the store returns them): a window is yielded
    once the stream is a whole window past its end, so memory holds about two windows of hosts.
    An event more than a window late opens a second, partial row for its (host, window).
    """
    open_: dict[tuple[str, float], HostWindow] = {}
    oldest = math.inf
    for event in events:
        host = internal_host(event)
        if host is None:
            continue
        t = event_time_of(event)
        key = (host, window_start(t, window_seconds))
        win = open_.get(key)
        if win is None:
            win = open_[key] = HostWindow(host, key[1], t, t)
            oldest = min(oldest, key[1])
        win.add(event, t)
        horizon = key[1] - window_seconds
        if oldest < horizon:
            for done in sorted((k for k in open_ if k[1] < horizon), key=lambda k: (k[1], k[0])):
                yield open_.pop(done)
            oldest = min((k[1] for k in open_), default=math.inf)
    yield from (open_[k] for k in sorted(open_, key=lambda k: (k[1], k[0])))
