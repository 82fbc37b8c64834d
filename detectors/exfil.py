"""Exfiltration: an internal host sending far more out of the network than it usually does.

Counted: `source.bytes` of flows with `network.direction == "outbound"` (the internal host
is the originator and the peer is outside). A big download is inbound bytes of an outbound
flow (`destination.bytes`) and never counts; a backup to an internal server is direction
"internal" and never counts. Volume is kept per host and per external destination in hourly
event-time windows; the current hour plus the unexpired part of the previous one give a
sliding estimate, so an upload straddling the hour is not cut in half. It must pass an
absolute floor AND the host's own EWMA baseline of hourly outbound volume (once warm).
Long flows arrive as cumulative interim records: only the growth since the last record counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorConfig
from detectors.kit import (Ewma, InterimDelta, KeyedState, Unreported, drop_oldest, due, ended,
                           part, refresh_field)
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

WEB_PORTS = frozenset({80, 443, 8080, 8443})
MAX_GAP_STEPS = 1000
TOTAL = "*"                   # the per-host total, kept beside the per-destination volumes
EVIDENCE_PER_DEST = 20        # memory bound; an alert carries at most 100 anyway


class ExfilConfig(DetectorConfig):
    window_seconds: float = Field(3600.0, ge=60, le=86_400,
                                  description="event-time window of the volume and baseline")
    floor_bytes: int = Field(50_000_000, ge=1000, le=10**13,
                             description="absolute floor: bytes to one destination per window")
    total_floor_bytes: int = Field(200_000_000, ge=1000, le=10**13,
                                   description="absolute floor: bytes to all external "
                                               "destinations per window")
    deviations: float = Field(4.0, ge=1, le=100,
                              description="volume must exceed baseline mean + deviations * std")
    ewma_alpha: float = Field(0.1, gt=0, le=0.5,
                              description="weight of the newest window in the host baseline")
    warmup_windows: int = Field(24, ge=0, le=24 * 90,
                                description="windows of history before the baseline is trusted")
    warmup_floor_factor: float = Field(4.0, ge=1, le=1000,
                                       description="floors are multiplied by this during "
                                                   "warm-up (not for a destination the host "
                                                   "never sent to before)")
    idle_expiry_seconds: float = Field(7 * 86_400.0, ge=3600, le=90 * 86_400,
                                       description="host state (baseline too) dropped when idle")
    refresh_seconds: float = refresh_field()     # a steady upload's window volume levels off
    max_hosts: int = Field(100_000, ge=100, le=10_000_000,
                           description="hosts tracked; least recently seen evicted")
    max_destinations: int = Field(256, ge=8, le=100_000,
                                  description="destinations tracked per host per window")
    max_known: int = Field(1024, ge=8, le=1_000_000,
                           description="past destinations remembered per host (rarity)")
    max_open_flows: int = Field(200_000, ge=1000, le=10_000_000,
                                description="long flows whose interim counters are tracked")

    @model_validator(mode="after")
    def _total_not_below_floor(self) -> ExfilConfig:
        if self.total_floor_bytes < self.floor_bytes:
            raise ValueError("total_floor_bytes must be >= floor_bytes")
        return self


@dataclass
class _Dest:
    bytes: float = 0.0
    flows: int = 0
    port: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    evidence: list[str] = field(default_factory=list)


@dataclass
class _Host:
    first_seen: float
    last_seen: float
    window: int                                   # index of the current window
    windows_seen: int = 0                         # windows folded into the baseline
    dests: dict[str, _Dest] = field(default_factory=dict)      # TOTAL included
    previous: dict[str, float] = field(default_factory=dict)   # last window's bytes
    known: dict[str, int] = field(default_factory=dict)        # dest -> past windows used
    reported: dict[str, float] = field(default_factory=dict)   # dest -> bytes at last alert
    raised: dict[str, float] = field(default_factory=dict)     # dest -> time of last alert
    base: Ewma = field(default_factory=Ewma)    # hourly outbound volume


class ExfilDetector(Detector):
    name = "exfiltration"
    version = "3"
    category = "exfiltration"
    datasets = frozenset({schema.FLOW})
    Config = ExfilConfig

    def __init__(self, config: ExfilConfig | None = None):
        super().__init__(config)
        self._hosts = KeyedState(_Host, self.config.max_hosts)
        self._open = InterimDelta(self.config.max_open_flows)   # bytes already counted
        self._unreported = Unreported()   # "src key" raised this window and grown since

    @property
    def evicted(self) -> int:
        """Hosts and open flows dropped by the caps."""
        return self._hosts.evicted + self._open.evicted

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if part(event, "network").get("direction") != "outbound":
            return []
        source, destination = part(event, "source"), part(event, "destination")
        total = source.get("bytes", 0) or 0           # interim records are cumulative
        sent = total - (self._open.advance(event, total) or 0)
        src, dst = source.get("ip"), destination.get("ip")
        if sent <= 0 or not src or not dst:
            return []
        host = self._host(src, event_time)
        dests, port, event_id = host.dests, destination.get("port"), event["event"]["id"]
        end = ended(event, event_time)     # one long upload's interim records share its start
        keys = (TOTAL, dst) if dst in dests or len(dests) <= self.config.max_destinations else (
            TOTAL,)                                   # full: still counted in the total
        for key in keys:
            entry = dests.get(key)
            if entry is None:
                entry = dests[key] = _Dest(first_seen=event_time)
            entry.bytes += sent
            entry.flows += 1
            if end > entry.last_seen:
                entry.last_seen = end
            entry.port = port or entry.port
            if len(entry.evidence) < (100 if key == TOTAL else EVIDENCE_PER_DEST):
                entry.evidence.append(event_id)
        return [a for key in reversed(keys) if (a := self._judge(src, host, key, event_time, end))]

    def _host(self, src: str, event_time: float) -> _Host:
        index = int(event_time // self.config.window_seconds)
        host = self._hosts.touch(src, lambda: _Host(event_time, event_time, index))
        if index > host.window:                       # late records count in the open window
            self._roll(host, index)
        host.last_seen = max(host.last_seen, event_time)
        return host

    def _roll(self, host: _Host, index: int) -> None:
        """Close the window: baseline, destination history, then skip empty windows."""
        alpha, total = self.config.ewma_alpha, host.dests.get(TOTAL, _Dest()).bytes
        host.base.update(total, alpha)
        host.base.decay(index - host.window - 1, alpha, MAX_GAP_STEPS)
        host.windows_seen += index - host.window
        for dst in host.dests:
            if dst != TOTAL:
                host.known[dst] = host.known.pop(dst, 0) + 1
        drop_oldest(host.known, self.config.max_known)
        consecutive = index == host.window + 1
        host.previous = {k: d.bytes for k, d in host.dests.items()} if consecutive else {}
        host.reported = {k: v for k, v in host.reported.items() if k in host.previous}
        host.raised = {}
        host.dests, host.window = {}, index

    def _estimate(self, host: _Host, key: str, event_time: float) -> float:
        """Sliding-window volume: this window plus the unexpired share of the last one."""
        elapsed = event_time / self.config.window_seconds - host.window
        carried = host.previous.get(key, 0.0) * max(0.0, 1.0 - elapsed)
        return host.dests[key].bytes + carried if key in host.dests else carried

    def _expected(self, host: _Host) -> float | None:
        """Baseline volume that counts as normal for this host, None while warming up."""
        if host.windows_seen < self.config.warmup_windows:
            return None
        return host.base.threshold(self.config.deviations)

    def _judge(self, src: str, host: _Host, key: str, event_time: float,
               end: float) -> AlertSpec | None:
        volume = self._estimate(host, key, event_time)
        if volume < (self.config.total_floor_bytes if key == TOTAL else self.config.floor_bytes):
            return None                               # the floor only grows from here
        floor, expected = self._limits(host, key)
        if volume < floor or (expected is not None and volume < expected):
            return None
        # Refreshed inside the window of the last raise only (`raised` is emptied with each
        # window): the next window's alert is another alert, judged by the doubling rule.
        if not due(volume, host.reported.get(key, 0.0), host.raised.get(key), end,
                   self.config.refresh_seconds):
            if key in host.raised and volume > host.reported.get(key, 0.0):
                self._unreported.grew(f"{src} {key}", end)   # final volume on the timer
            return None                               # re-raised once doubled, or a minute on
        if key == TOTAL and self._dominant(host, volume):
            return None                               # one destination: its own alert tells it
        return self._raise(src, host, key, volume, end)

    def _limits(self, host: _Host, key: str) -> tuple[float, float | None]:
        """(floor, baseline) a volume must pass; the baseline is None while warming up."""
        floor = self.config.total_floor_bytes if key == TOTAL else self.config.floor_bytes
        expected = self._expected(host)
        if expected is None and (key == TOTAL or key in host.known):
            # No baseline yet: be stricter, except towards a destination this host never
            # sent to before (a first upload of 50 MB to a new peer needs no history).
            floor *= self.config.warmup_floor_factor
        return floor, expected

    def _raise(self, src: str, host: _Host, key: str, volume: float, now: float) -> AlertSpec:
        host.reported[key], host.raised[key] = volume, now
        self._unreported.reported(f"{src} {key}")
        floor, expected = self._limits(host, key)
        return self._alert(src, host, key, volume, floor, expected)

    def _final_volumes(self, now: float) -> list[AlertSpec]:
        """An upload that grew past its last raise (same window) and stopped: its volume as
        of its last bytes."""
        alerts = []
        for name in self._unreported.settled(now, self.config.refresh_seconds):
            src, key = name.split(" ", 1)
            host = self._hosts.get(src)
            entry = host.dests.get(key) if host is not None else None
            if entry is None or key not in host.raised:
                continue                              # its window has closed since
            volume = self._estimate(host, key, entry.last_seen)
            if volume > host.reported.get(key, 0.0) and not (
                    key == TOTAL and self._dominant(host, volume)):
                alerts.append(self._raise(src, host, key, volume, now))
        return alerts

    @staticmethod
    def _dominant(host: _Host, total: float) -> bool:
        top = max((d.bytes for k, d in host.dests.items() if k != TOTAL), default=0.0)
        return top >= 0.5 * total

    def _alert(self, src: str, host: _Host, key: str, volume: float, floor: float,
               expected: float | None) -> AlertSpec:
        entry = host.dests.get(key) or _Dest()
        dests = [d for d in host.dests if d != TOTAL]
        top = key if key != TOTAL else max(dests, key=lambda d: host.dests[d].bytes, default="")
        rarity = 1.0 / (1 + host.known.get(top, 0))
        port = host.dests[top].port if top in host.dests else 0
        web = port in WEB_PORTS
        what = f"to {key}:{port}" if key != TOTAL else f"to {len(dests)} external destinations"
        baseline = (f"baseline {_human(expected)}" if expected is not None
                    else "baseline still warming up")
        what_zh = f"向 {key}:{port} " if key != TOTAL else f"向 {len(dests)} 个外部目的地址"
        baseline_zh = (f"基线 {_human(expected)}" if expected is not None else "基线仍在学习")
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.exfil.volume" if key != TOTAL else "wk.exfil.total_volume",
            rule_name="Large outbound transfer", severity=3 if volume >= 10 * floor else 2,
            message=f"{src} sent {_human(volume)} {what} in the last "
                    f"{self.config.window_seconds / 3600:g} h ({baseline}; floor "
                    f"{_human(floor)})",
            rule_name_zh="大量数据外传",
            message_zh=f"{src} 在最近 {self.config.window_seconds / 3600:g} 小时内{what_zh}发送了 "
                       f"{_human(volume)}（{baseline_zh}；下限 {_human(floor)}）",
            entity=f"{src}|{key}", first_seen=entry.first_seen, last_seen=entry.last_seen,
            source_ip=src, destination_ip=key if key != TOTAL else None,
            related_ips=sorted(dests, key=lambda d: -host.dests[d].bytes)[:50],
            evidence=list(entry.evidence),
            subscores={"volume_vs_baseline": 0.5 if expected is None else
                       max(0.0, min(1.0, 1 - expected / volume)),
                       "volume_floor": min(1.0, volume / (4 * floor)),
                       "destination_rarity": rarity},
            technique_id="T1041" if web else "T1048",
            technique_name="Exfiltration Over C2 Channel" if web else
            "Exfiltration Over Alternative Protocol",
            count=entry.flows)

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = self._final_volumes(now)
        horizon = now - self.config.idle_expiry_seconds
        self._hosts.expire_idle(horizon)
        return alerts

    def snapshot(self) -> dict:
        return {"hosts": self._hosts.snapshot(), "open": self._open.snapshot(),
                "evicted": self.evicted, "unreported": self._unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self._hosts.restore(state.get("hosts", {}), state.get("evicted", 0))
        self._open.restore(state.get("open", {}))
        self._unreported.restore(state.get("unreported"))


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
