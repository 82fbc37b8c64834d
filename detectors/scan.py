"""Port and host scans: Threshold Random Walk (Jung, Paxson, Berger, Balakrishnan 2004) plus fan-out.

TRW runs a sequential hypothesis test per source on the outcomes of *first contacts*: connections
to a (host, port) the source has not contacted within the window. A benign host's first contacts
mostly succeed (P = theta0), a scanner's mostly fail (P = theta1). Each outcome multiplies the
likelihood ratio by theta1/theta0 (success) or (1-theta1)/(1-theta0) (failure); crossing
eta1 = beta/alpha declares a scanner, falling to eta0 = (1-beta)/(1-alpha) declares the source
benign and restarts the test. TRW alone is quick to fire (4 failures in a row), so an alert also
needs a fan-out of `min_targets` distinct failed targets in the window, and failures being at
least `min_failure_ratio` of the window's first contacts: a resolver with a few lame servers or a
poller with a few dead hosts stays quiet.
"""
from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorConfig
from detectors.kit import (KeyedState, Unreported, doubled, number, part, refresh_field,
                           refreshed, text)
from detectors.fingerprint import OsFingerprints, probe_kind
from detectors.sweep import ARP_SWEEP, PING_SWEEP, Sweeps, scan_severity, scan_technique
from detectors.trw import early_scan, early_sweep
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

# Zeek conn_state of a TCP attempt the responder never accepted (no SYN-ACK): no answer,
# refused, or given up. Midstream states (OTH, SHR, RSTRH) say nothing about the attempt.
FAILED_TCP = frozenset({"S0", "REJ", "RSTOS0", "SH"})
ACCEPTED_TCP = frozenset({"S1", "S2", "S3", "SF", "RSTO", "RSTR"})
ECHO_REQUEST = {"icmp": 8, "ipv6-icmp": 128}
INTERNAL_DIRECTIONS = frozenset({"internal", "outbound"})


class ScanConfig(DetectorConfig):
    window_seconds: float = Field(1800.0, ge=10, le=86_400, description=(
        "event-time window: first-contact memory and fan-out count; 30 min catches probes "
        "sent minutes apart"))
    min_targets: int = Field(15, ge=3, le=100_000, description=(
        "distinct failed (host, port) first contacts in the window that make a scan (Zeek's "
        "scan.zeek port_scan_threshold is 15)"))
    theta0: float = Field(0.8, gt=0, lt=1, description="P(first contact succeeds | benign)")
    theta1: float = Field(0.2, gt=0, lt=1, description="P(first contact succeeds | scanner)")
    alpha: float = Field(0.01, gt=0, lt=0.5, description="TRW target false-positive rate P_F")
    beta: float = Field(0.99, gt=0.5, lt=1, description="TRW target detection rate P_D")
    min_failure_ratio: float = Field(0.5, ge=0, le=1, description=(
        "share of the window's first contacts that failed; keeps busy clients with a few dead "
        "servers out"))
    early_min_targets: int = Field(6, ge=3, le=100_000, description=(
        "failed first contacts that name a scanner before the fan-out floor, once TRW has "
        "crossed eta1 over at least early_min_ports ports (detectors/trw.py)"))
    early_min_ports: int = Field(3, ge=2, le=65_535, description=(
        "distinct ports among those failures: clients retrying dead servers use one or two"))
    early_min_failure_ratio: float = Field(0.8, ge=0, le=1, description=(
        "share of the window's first contacts that failed, for the early rules"))
    early_min_hosts: int = Field(8, ge=3, le=100_000, description=(
        "failed hosts of one /24 that name an inward single-port sweep before the fan-out "
        "floor, once TRW has crossed eta1 (detectors/trw.py)"))
    refresh_seconds: float = refresh_field()     # on a failed probe, first contact or repeat
    arp_min_targets: int = Field(64, ge=8, le=1_000_000, description=(
        "distinct addresses one host asks for by broadcast ARP in arp_window_seconds that "
        "make a host-discovery sweep (64: a quarter of a /24; detectors/sweep.py)"))
    arp_window_seconds: float = Field(60.0, ge=5, le=3600, description=(
        "window of the ARP sweep rule: a sweep asks for a subnet in seconds"))
    arp_ignored_senders: list[str] = Field(default_factory=list, description=(
        "addresses or networks (CIDR) whose ARP requests are not counted: gateways, which "
        "resolve every address a routed sweep probes"))
    ping_min_hosts: int = Field(15, ge=3, le=1_000_000, description=(
        "distinct addresses one host sends ICMP echo requests to in ping_window_seconds that "
        "make a ping sweep (15: the fan-out floor, min_targets; detectors/sweep.py)"))
    ping_window_seconds: float = Field(60.0, ge=5, le=3600, description=(
        "window of the ping sweep rule"))
    ping_ignored_senders: list[str] = Field(default_factory=list, description=(
        "addresses or networks (CIDR) whose echo requests are not counted: monitoring "
        "systems and load balancers that ping their hosts every minute"))
    fingerprint_min_kinds: int = Field(3, ge=2, le=4, description=(
        "kinds of invalid-flag TCP probe (no flags, SYN+FIN, FIN, bare ACK) one source sends "
        "one host within fingerprint_window_seconds that make OS fingerprinting "
        "(detectors/fingerprint.py)"))
    fingerprint_window_seconds: float = Field(10.0, ge=1, le=600, description=(
        "window of the OS fingerprinting rule: nmap -O probes a host in under a second"))
    max_tracked_targets: int = Field(10_000, ge=100, le=1_000_000,
                                     description="per-source memory bound (oldest dropped)")
    max_sources: int = Field(100_000, ge=100, le=10_000_000,
                             description="sources tracked at once (least recently seen dropped)")

    @model_validator(mode="after")
    def _ordered(self) -> "ScanConfig":
        if self.theta1 >= self.theta0:
            raise ValueError("theta1 (scanner success rate) must be below theta0 (benign)")
        for key in ("arp_ignored_senders", "ping_ignored_senders"):
            for net in getattr(self, key):
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError:
                    raise ValueError(f"{key}: {net!r} is not an address or network") from None
        return self


@dataclass
class _Probe:
    target: str          # "ip|port" ("ip|icmp" for an echo request)
    succeeded: bool
    echo: bool = False   # an ICMP echo request: the ping sweep rule counts it too
    kind: str | None = None   # an invalid-flag TCP probe's kind (fingerprint.py)


@dataclass
class _Source:
    last_seen: float
    internal: bool = False
    log_ratio: float = 0.0                                      # log of the TRW likelihood ratio
    contacts: dict[str, float] = field(default_factory=dict)    # target -> first-contact time
    failed: dict[str, list] = field(default_factory=dict)       # target -> [time, event id]
    reported_at: int = 0          # fan-out at the last alert: re-raised when it doubles
    raised_at: float = 0.0        # event time of the last alert: re-raised when stale
    alert_first_seen: float | None = None
    last_failed: float = 0.0      # newest failed probe, a repeat too: the alert's last-seen time


class ScanDetector(Detector):
    name = "scan"
    version = "7"      # 7: ping sweeps and OS fingerprinting (sweep.py, fingerprint.py)
    category = "scan"
    datasets = frozenset({schema.FLOW, schema.ARP})
    Config = ScanConfig

    def __init__(self, config: ScanConfig | None = None):
        super().__init__(config)
        c = self.config
        self._step_ok = math.log(c.theta1 / c.theta0)
        self._step_fail = math.log((1 - c.theta1) / (1 - c.theta0))
        self._upper = math.log(c.beta / c.alpha)
        self._lower = math.log((1 - c.beta) / (1 - c.alpha))
        self._sources = KeyedState(_Source, c.max_sources)
        self._targets_dropped = 0                  # per-source targets dropped by their cap
        # host discovery (sweep.py): over ARP, and by ICMP echo requests
        self._arp = Sweeps(self, ARP_SWEEP, c.arp_min_targets, c.arp_window_seconds,
                           c.arp_ignored_senders)
        self._ping = Sweeps(self, PING_SWEEP, c.ping_min_hosts, c.ping_window_seconds,
                            c.ping_ignored_senders)
        self._fingerprints = OsFingerprints(self, c.fingerprint_min_kinds,
                                            c.fingerprint_window_seconds)
        self._unreported = Unreported()            # raised sources whose fan-out grew since

    @property
    def evicted(self) -> int:
        """Sources and targets dropped by the caps."""
        return (self._sources.evicted + self._targets_dropped + self._arp.evicted
                + self._ping.evicted + self._fingerprints.evicted)

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if event["event"]["dataset"] == schema.ARP:
            return self._arp.on_request(event, event_time)
        probe = _probe(event)
        if probe is None:
            return []
        direction = part(event, "network").get("direction")
        internal = direction in INTERNAL_DIRECTIONS
        alerts = self._trw(event, event_time, probe, direction)
        if probe.echo:
            alerts += self._ping.on_request(event, event_time, probe.succeeded, internal)
        elif probe.kind:
            alerts += self._fingerprints.on_probe(event, event_time, probe.kind, internal)
        return alerts

    def _trw(self, event: dict, event_time: float, probe: _Probe,
             direction: str | None) -> list[AlertSpec]:
        src = event["source"]["ip"]
        state = self._touch(src, event_time)
        state.internal = direction in INTERNAL_DIRECTIONS
        failed_again = not probe.succeeded and self._stale(state, event_time)
        if not probe.succeeded:
            state.last_failed = max(state.last_failed, event_time)
        if probe.target in state.contacts:
            # Not a first contact: TRW ignores it, but a scan raised and still going (the
            # same targets probed again) keeps its alert current.
            return [self._raise(src, state, event_time)] if failed_again else []
        self._remember(state, probe, event_time, event["event"]["id"])
        self._walk(state, probe.succeeded)
        if self._is_scan(state, direction) or failed_again:
            return [self._raise(src, state, event_time)]
        if state.reported_at and not probe.succeeded:
            self._unreported.grew(src, event_time)     # its final count comes on the timer
        return []

    def _stale(self, state: _Source, event_time: float) -> bool:
        """Raised in this episode, but not for `refresh_seconds`: a long scan whose fan-out
        grows slowly (or not at all) would otherwise show a last-seen time long past."""
        return refreshed(state.reported_at, state.raised_at, event_time,
                         self.config.refresh_seconds)

    def _raise(self, src: str, state: _Source, event_time: float) -> AlertSpec:
        state.reported_at, state.raised_at = len(state.failed), event_time
        self._unreported.reported(src)
        if state.alert_first_seen is None:
            state.alert_first_seen = next(iter(state.failed.values()))[0]
        return self._alert(src, state)

    def _touch(self, src: str, event_time: float) -> _Source:
        state = self._sources.touch(src, lambda: _Source(event_time))
        state.last_seen = max(state.last_seen, event_time)
        horizon = event_time - self.config.window_seconds
        if state.contacts and next(iter(state.contacts.values())) < horizon:
            _prune(state, horizon)      # here, not by a timer's pass over every source
        return state

    def _remember(self, state: _Source, probe: _Probe, event_time: float, event_id: str) -> None:
        if len(state.contacts) >= self.config.max_tracked_targets:
            oldest = next(iter(state.contacts))   # failed is a subset of contacts: both bounded
            del state.contacts[oldest]
            state.failed.pop(oldest, None)
            self._targets_dropped += 1
        state.contacts[probe.target] = event_time
        if not probe.succeeded:
            state.failed[probe.target] = [event_time, event_id]

    def _walk(self, state: _Source, succeeded: bool) -> None:
        state.log_ratio += self._step_ok if succeeded else self._step_fail
        if state.log_ratio <= self._lower:
            state.log_ratio = 0.0                  # declared benign: restart the sequential test
        # Bounded above so a source that stops scanning can walk back down in finite time.
        state.log_ratio = min(state.log_ratio, 2 * self._upper)

    def _is_scan(self, state: _Source, direction: str | None) -> bool:
        fanout, c = len(state.failed), self.config
        if not doubled(fanout, state.reported_at):
            return False
        return (state.log_ratio >= self._upper and fanout >= c.min_targets
                and fanout / len(state.contacts) >= c.min_failure_ratio) or early_scan(
            state.log_ratio, self._upper, state.failed, len(state.contacts),
            c.early_min_targets, c.early_min_ports, c.early_min_failure_ratio) or early_sweep(
            state.log_ratio, self._upper, state.failed, len(state.contacts), direction,
            c.early_min_hosts, c.early_min_failure_ratio)

    def _alert(self, src: str, state: _Source) -> AlertSpec:
        hosts = sorted({t.rsplit("|", 1)[0] for t in state.failed})
        ports = {t.rsplit("|", 1)[1] for t in state.failed}
        shape = _shape(len(hosts), len(state.failed))
        count = len(state.failed)
        ratio = math.exp(min(state.log_ratio, 700))
        where = "internal" if state.internal else "external"
        technique = scan_technique(state.internal)
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.scan", rule_name="Port scan", severity=scan_severity(count, state.internal),
            message=f"{shape} scan from {where} host {src}: {count} of {len(state.contacts)} "
                    f"first contacts failed ({len(hosts)} hosts, {len(ports)} ports); "
                    f"TRW likelihood ratio {ratio:.0f} >= {math.exp(self._upper):.0f}",
            rule_name_zh="端口扫描",
            message_zh=f"{ZH_WHERE[where]}主机 {src} {ZH_SHAPE[shape]}：{len(state.contacts)} 次"
                       f"首次连接中 {count} 次失败（{len(hosts)} 台主机，{len(ports)} 个端口）；"
                       f"TRW 似然比 {ratio:.0f} ≥ {math.exp(self._upper):.0f}",
            entity=src, first_seen=state.alert_first_seen,
            last_seen=state.last_failed,
            source_ip=src, destination_ip=hosts[0] if len(hosts) == 1 else None,
            related_ips=hosts[:50], evidence=[v[1] for v in state.failed.values()][:100],
            subscores={"trw": 1 / (1 + math.exp(-max(-700.0, state.log_ratio))),
                       "fanout": min(1.0, count / (5 * self.config.min_targets))},
            technique_id=technique[0], technique_name=technique[1], count=count)

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = (self._final_counts(now) + self._arp.final_counts(now)
                  + self._ping.final_counts(now) + self._fingerprints.final_counts(now))
        horizon = now - self.config.window_seconds
        # Contacts are pruned when their source is touched (`_touch`), so a live source keeps
        # at most a window of stale ones; a quiet one goes whole once idle past the window.
        self._sources.expire_idle(horizon)
        self._arp.expire(now)
        self._ping.expire(now)
        self._fingerprints.expire(now)
        return alerts

    def _final_counts(self, now: float) -> list[AlertSpec]:
        """A scan that grew past its last raise and then went quiet: its final fan-out."""
        settled = self._unreported.settled_in(self._sources, now, self.config.refresh_seconds)
        return [self._raise(src, state, now) for src, state in settled
                if 0 < state.reported_at < len(state.failed)]

    def snapshot(self) -> dict:
        return {"sources": self._sources.snapshot(), "evicted": self.evicted,
                "arp": self._arp.snapshot(), "unreported": self._unreported.snapshot(),
                "arp_unreported": self._arp.unreported.snapshot(),
                "ping": self._ping.snapshot(), "ping_unreported": self._ping.unreported.snapshot(),
                **self._fingerprints.snapshot()}

    def restore(self, state: dict) -> None:
        self._sources.restore(state.get("sources", {}), state.get("evicted", 0))
        self._arp.restore(state.get("arp", {}))
        self._unreported.restore(state.get("unreported"))
        self._arp.unreported.restore(state.get("arp_unreported"))
        self._ping.restore(state.get("ping", {}))
        self._ping.unreported.restore(state.get("ping_unreported"))
        self._fingerprints.restore(state)
        self._targets_dropped = 0


def _prune(state: _Source, horizon: float) -> None:
    """Forget first contacts and failures older than the window (dicts are in time order)."""
    while state.contacts and next(iter(state.contacts.values())) < horizon:
        del state.contacts[next(iter(state.contacts))]
    while state.failed and next(iter(state.failed.values()))[0] < horizon:
        del state.failed[next(iter(state.failed))]
    if not state.failed:
        state.reported_at, state.alert_first_seen = 0, None   # the next scan is a new episode


ZH_SHAPE = {"vertical": "纵向扫描", "horizontal": "横向扫描", "mixed": "混合扫描"}
ZH_WHERE = {"internal": "内网", "external": "外部"}


def _shape(hosts: int, targets: int) -> str:
    """Vertical: few hosts, many ports each; horizontal: many hosts, one or two ports each."""
    per_host = targets / hosts
    if hosts == 1 or (per_host >= 5 and hosts <= per_host):
        return "vertical"
    if per_host <= 2:
        return "horizontal"
    return "mixed"


def _probe(event: dict) -> _Probe | None:
    """The first-contact outcome a flow tells, or None when it tells nothing about a probe."""
    src = part(event, "source").get("ip")
    dst = part(event, "destination")
    if not src or not dst.get("ip") or _unprobeable(dst["ip"]):
        return None
    transport = part(event, "network").get("transport")
    if transport == "tcp":
        flow = part(event, "watchkeeper", "flow")
        kind = probe_kind(flow, part(event, "source").get("packets"))
        if kind:
            return _Probe(f"{dst['ip']}|{dst.get('port')}", False, kind=kind)
        state = text(flow.get("conn_state"))
        if state not in FAILED_TCP and state not in ACCEPTED_TCP:
            return None
        return _Probe(f"{dst['ip']}|{dst.get('port')}", state in ACCEPTED_TCP)
    answered = number(dst.get("packets")) > 0
    if transport == "udp":
        return _Probe(f"{dst['ip']}|{dst.get('port')}", answered)
    if transport in ECHO_REQUEST and part(event, "source").get("port") == ECHO_REQUEST[transport]:
        return _Probe(f"{dst['ip']}|icmp", answered, echo=True)
    return None


@lru_cache(maxsize=65_536)
def _unprobeable(ip: str) -> bool:
    """Multicast, broadcast and unspecified destinations never answer: not probes."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    # x.x.x.255 is taken as a subnet broadcast (true for the /24s that dominate LANs).
    return (addr.is_multicast or addr.is_unspecified
            or (addr.version == 4 and (ip == "255.255.255.255" or ip.endswith(".255"))))
