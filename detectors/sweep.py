"""Host discovery: one host asking for many addresses in a short window. Two rules of the scan
detector count it the same way, each over the requests it can see:

- `wk.scan.arp_sweep`, broadcast ARP requests (`watchkeeper.arp` events, collectors/capture/
  arp.py). `nmap -sn`, arp-scan and netdiscover find the live hosts of a local subnet by
  broadcasting "who has 192.168.1.x?" for every address, a /24 in a couple of seconds. No IP
  packet goes to a host that does not answer, so the flow rules (TRW, fan-out) see nothing. A
  host that resolves addresses for its own traffic asks for a few at a time, once each until
  its neighbour cache expires, and re-checks known neighbours with unicast requests, which the
  capture does not report. A sweep is `arp_min_targets` (64: a quarter of a /24) distinct
  addresses within `arp_window_seconds` (60 s). The benign look-alike is a gateway resolving
  each address a routed sweep probes: `arp_ignored_senders` lists gateways.
- `wk.scan.ping_sweep`, ICMP echo requests (flows of ICMP type 8, ICMPv6 128). A sweep across
  a router (`nmap -sn`, fping -g, Angry IP Scanner) pings every address of a range. When most
  of them answer, TRW sees successful first contacts and stays quiet, so the sweep went
  unnamed. A client pings one or two hosts; `ping_min_hosts` (15, the fan-out floor of the
  flow rules, Zeek's port-scan threshold) distinct addresses within `ping_window_seconds`
  (60 s) make a sweep. The benign look-alike is a monitoring system (Zabbix, Nagios, a load
  balancer's health checks) pinging its hosts every minute: `ping_ignored_senders` lists them.

Multicast, broadcast and unspecified targets are never counted (a sweep names hosts).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.kit import KeyedState, Unreported, due, part
from watchkeeper.documents import AlertSpec


@dataclass(frozen=True)
class SweepRule:
    """What one rule says; `describe(src, mac, n, window, span, answered)` gives the
    (English, zh-CN) message, `answered` None when the requests carry no answer."""
    rule_id: str
    rule_name: str
    rule_name_zh: str
    describe: Callable[[str, str, int, str, str, int | None], tuple[str, str]]
    severity: Callable[[int, bool], int]
    technique: Callable[[bool], tuple[str, str]]


@dataclass
class _Asker:
    last_seen: float
    mac: str = ""
    asked: dict[str, list] = field(default_factory=dict)  # address -> [time, id(s)(, answered)]
    reported_at: int = 0
    raised_at: float = 0.0
    first_seen: float | None = None     # the episode's first address: the alert id's hour
    internal: bool = True


class Sweeps:
    """Per sender, the addresses asked for in the window; a verdict when they make a sweep
    that is new, has doubled, or goes on a refresh period after its last raise."""

    def __init__(self, detector, rule: SweepRule, min_targets: int, window: float,
                 ignored: list[str]):
        self.detector, self.rule, self.config = detector, rule, detector.config
        self.min_targets, self.window = min_targets, window
        self.ignored = [ipaddress.ip_network(n, strict=False) for n in ignored]
        self.askers = KeyedState(_Asker, self.config.max_sources)
        self.dropped = 0                 # addresses dropped by the per-sender cap
        self.unreported = Unreported()   # raised senders that asked for more since

    @property
    def evicted(self) -> int:
        """Senders and addresses dropped by the caps."""
        return self.askers.evicted + self.dropped

    def on_request(self, event: dict, event_time: float, answered: bool | None = None,
                   internal: bool = True, evidence: list[str] | None = None) -> list[AlertSpec]:
        """One request of `event`'s source for its destination address; `evidence`: the
        event ids that make it one (else the event's own)."""
        src, target = part(event, "source").get("ip"), part(event, "destination").get("ip")
        if not src or not target or self._ignored(src):
            return []
        cfg = self.config
        asker = self.askers.touch(src, lambda: _Asker(event_time))
        asker.last_seen = max(asker.last_seen, event_time)
        asker.mac = part(event, "source").get("mac") or asker.mac
        asker.internal = internal
        asker.asked.pop(target, None)   # kept in the order last asked
        entry = [event_time, evidence or event["event"]["id"]]
        asker.asked[target] = entry if answered is None else [*entry, answered]
        self._prune(asker, event_time - self.window)
        while len(asker.asked) > cfg.max_tracked_targets:
            del asker.asked[next(iter(asker.asked))]
            self.dropped += 1
        count = len(asker.asked)
        if count < self.min_targets or not due(count, asker.reported_at, asker.raised_at,
                                               event_time, cfg.refresh_seconds):
            if asker.reported_at and count > asker.reported_at:
                self.unreported.grew(src, event_time)   # its final count comes on the timer
            return []
        return [self._raise(src, asker, event_time)]

    def _raise(self, src: str, asker: _Asker, now: float) -> AlertSpec:
        asker.reported_at, asker.raised_at = len(asker.asked), now
        self.unreported.reported(src)
        if asker.first_seen is None:
            asker.first_seen = next(iter(asker.asked.values()))[0]
        return self._alert(src, asker)

    def final_counts(self, now: float) -> list[AlertSpec]:
        """A sweep that grew past its last raise and then went quiet: its final count. Runs
        before `expire`: a settled sender is still within the window (refresh <= window)."""
        settled = self.unreported.settled_in(self.askers, now, self.config.refresh_seconds)
        return [self._raise(src, asker, now) for src, asker in settled
                if 0 < asker.reported_at < len(asker.asked)]

    def _ignored(self, src: str) -> bool:
        if not self.ignored:
            return False
        try:
            addr = ipaddress.ip_address(src)
        except ValueError:
            return True
        return any(addr in net for net in self.ignored)

    @staticmethod
    def _prune(asker: _Asker, horizon: float) -> None:
        while asker.asked and next(iter(asker.asked.values()))[0] < horizon:
            del asker.asked[next(iter(asker.asked))]
        if not asker.asked:
            asker.reported_at, asker.first_seen = 0, None      # the next sweep is new

    def _alert(self, src: str, asker: _Asker) -> AlertSpec:
        det, rule = self.detector, self.rule
        addresses = list(asker.asked)
        n, window = len(addresses), f"{self.window:g}"
        answers = [v[2] for v in asker.asked.values() if len(v) > 2]
        message, message_zh = rule.describe(src, asker.mac, n, window, _span(addresses),
                                            sum(answers) if answers else None)
        technique = rule.technique(asker.internal)
        return AlertSpec(
            detector=det.name, detector_version=det.version, category=det.category,
            rule_id=rule.rule_id, rule_name=rule.rule_name,
            severity=rule.severity(n, asker.internal), message=message,
            rule_name_zh=rule.rule_name_zh, message_zh=message_zh,
            entity=src, first_seen=asker.first_seen,
            last_seen=max(v[0] for v in asker.asked.values()), source_ip=src,
            destination_ip=addresses[0] if n == 1 else None,
            related_ips=sorted(addresses, key=_sort_key)[:50],
            evidence=_evidence(asker.asked.values())[:100],
            subscores={"fanout": min(1.0, n / (4 * self.min_targets))},
            technique_id=technique[0], technique_name=technique[1], count=n)

    def expire(self, now: float) -> None:
        self.askers.expire_idle(now - self.window)

    def snapshot(self) -> dict:
        return self.askers.snapshot()

    def restore(self, state: dict) -> None:
        self.askers.restore(state)


def _arp_words(src: str, mac: str, n: int, window: str, span: str,
               _answered) -> tuple[str, str]:
    mac_en = f" ({mac})" if mac else ""
    mac_zh = f"（{mac}）" if mac else " "     # a space only beside Latin text
    return (f"{src}{mac_en} asked its segment over ARP for {n} addresses within {window} s "
            f"({span}): host discovery, or a gateway resolving a sweep routed through it",
            f"{src}{mac_zh}在 {window} 秒内通过 ARP 广播查询了本网段 {n} 个地址（{span}）："
            f"主机发现扫描，或网关在转发外部扫描时解析地址")


def _ping_words(src: str, _mac: str, n: int, window: str, span: str,
                answered: int | None) -> tuple[str, str]:
    answers = "" if answered is None else f", {answered} answered"
    answers_zh = "" if answered is None else f"，其中 {answered} 个应答"
    return (f"{src} sent ICMP echo requests to {n} addresses within {window} s ({span}"
            f"{answers}): host discovery (a ping sweep), or a monitoring system polling its "
            f"hosts",
            f"{src} 在 {window} 秒内向 {n} 个地址发送 ICMP 回显请求（{span}{answers_zh}）："
            f"主机发现扫描（Ping 扫描），或监控系统在轮询其主机")


def scan_severity(count: int, internal: bool) -> int:
    """How every rule of the scan detector weighs what it found (ports, hosts, addresses): an
    internal host scanning is likely compromised; the Internet's background scans are not."""
    breadth = 0 if count < 100 else 1 if count < 1000 else 2
    return min(4, 2 + breadth) if internal else 1 + min(1, breadth)


def scan_technique(internal: bool) -> tuple[str, str]:
    return ("T1046", "Network Service Discovery") if internal else ("T1595", "Active Scanning")


def _discovery_technique(internal: bool) -> tuple[str, str]:
    return ("T1018", "Remote System Discovery") if internal else ("T1595", "Active Scanning")


# an ARP request comes from the segment itself: always weighed as an insider's
ARP_SWEEP = SweepRule("wk.scan.arp_sweep", "Host discovery over ARP", "ARP 主机发现扫描",
                      _arp_words, lambda n, _internal: scan_severity(n, True),
                      lambda _internal: _discovery_technique(True))
PING_SWEEP = SweepRule("wk.scan.ping_sweep", "Ping sweep", "Ping 主机发现扫描",
                       _ping_words, scan_severity, _discovery_technique)


def _evidence(entries) -> list[str]:
    ids: list[str] = []
    for entry in entries:
        ids += entry[1] if isinstance(entry[1], list) else [entry[1]]
    return ids


def _sort_key(ip: str) -> tuple:
    try:
        return (0, int(ipaddress.ip_address(ip)))
    except ValueError:
        return (1, ip)


def _span(addresses: list[str]) -> str:
    ordered = sorted(addresses, key=_sort_key)
    return f"{ordered[0]} – {ordered[-1]}"
