"""Port scans: one source probing many (host, port) targets that never complete a session.

A first, deliberately simple detector for the spine: distinct failed targets per source within
an event-time window. Threshold Random Walk (Jung et al. 2004) replaces it in the detectors
issue; the contract (datasets, key, alert shape) stays.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pydantic import Field

from detectors.base import Detector, DetectorConfig
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

# Zeek conn_state values of a TCP attempt that carried no session: no answer, refused, or
# torn down before any payload.
FAILED_TCP = frozenset({"S0", "REJ", "RSTO", "RSTOS0", "RSTR", "RSTRH", "SH", "SHR", "OTH"})


class ScanConfig(DetectorConfig):
    window_seconds: float = Field(60.0, ge=1, le=3600,
                                  description="event-time window in which targets are counted")
    min_targets: int = Field(20, ge=3, le=100_000,
                             description="distinct failed (host, port) targets that make a scan")
    max_tracked_targets: int = Field(10_000, ge=100, le=1_000_000,
                                     description="per-source memory bound")


@dataclass
class _SourceState:
    window_start: float
    last_seen: float
    targets: dict[str, str] = field(default_factory=dict)   # "ip|port" -> first event id
    attempts: int = 0
    reported_at: int = 0        # target count at the last alert (re-raise when it doubles)


class ScanDetector(Detector):
    name = "scan"
    version = "1"
    category = "scan"
    datasets = frozenset({schema.FLOW})
    Config = ScanConfig

    def __init__(self, config: ScanConfig | None = None):
        super().__init__(config)
        self._sources: dict[str, _SourceState] = {}

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        target = _failed_target(event)
        if target is None:
            return []
        src = event["source"]["ip"]
        state = self._sources.get(src)
        if state is None or event_time - state.window_start > self.config.window_seconds:
            state = self._sources[src] = _SourceState(event_time, event_time)
        state.last_seen = max(state.last_seen, event_time)
        state.attempts += 1
        if target not in state.targets and len(state.targets) < self.config.max_tracked_targets:
            state.targets[target] = event["event"]["id"]
        count = len(state.targets)
        if count >= self.config.min_targets and count >= 2 * state.reported_at:
            state.reported_at = count
            return [self._alert(src, state)]
        return []

    def _alert(self, src: str, state: _SourceState) -> AlertSpec:
        hosts = {t.split("|")[0] for t in state.targets}
        ports = {t.split("|")[1] for t in state.targets}
        shape = "vertical" if len(hosts) == 1 else "horizontal" if len(ports) == 1 else "mixed"
        count = len(state.targets)
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.scan", rule_name="Port scan", severity=3 if count >= 500 else 2,
            message=f"{src} probed {count} targets ({len(hosts)} hosts, {len(ports)} ports) "
                    f"without completing a session: {shape} scan",
            entity=src, first_seen=state.window_start, last_seen=state.last_seen,
            source_ip=src, destination_ip=next(iter(hosts)) if len(hosts) == 1 else None,
            related_ips=sorted(hosts)[:50], evidence=list(state.targets.values())[:100],
            subscores={"fanout": min(1.0, count / (5 * self.config.min_targets)),
                       "failure_ratio": min(1.0, count / max(1, state.attempts))},
            technique_id="T1046", technique_name="Network Service Discovery", count=count)

    def on_timer(self, now: float) -> list[AlertSpec]:
        horizon = now - self.config.window_seconds
        for src in [s for s, st in self._sources.items() if st.last_seen < horizon]:
            del self._sources[src]
        return []

    def snapshot(self) -> dict:
        return {src: asdict(st) for src, st in self._sources.items()}

    def restore(self, state: dict) -> None:
        self._sources = {src: _SourceState(**st) for src, st in state.items()}


def _failed_target(event: dict) -> str | None:
    """'ip|port' of a connection attempt that carried no session, else None."""
    flow = event.get("watchkeeper", {}).get("flow", {})
    network = event.get("network", {})
    if network.get("transport") == "tcp":
        failed = flow.get("conn_state") in FAILED_TCP and not flow.get("orig_bytes")
    elif network.get("transport") == "udp":
        failed = event.get("destination", {}).get("packets", 0) == 0
    else:
        failed = False
    if not failed or not event.get("source", {}).get("ip"):
        return None
    dst = event.get("destination", {})
    return f"{dst.get('ip')}|{dst.get('port')}"
