"""Host discovery over ARP: one host asking its segment for many addresses (the scan detector's
`wk.scan.arp_sweep` rule, fed by `watchkeeper.arp` events, collectors/capture/arp.py).

`nmap -sn`, arp-scan and netdiscover find the live hosts of a local subnet by broadcasting
"who has 192.168.1.x?" for every address, a /24 in a couple of seconds. No IP packet goes to a
host that does not answer, so the flow rules (TRW, fan-out) see nothing. A host that resolves
addresses for its own traffic asks for a few at a time: the ones it is about to talk to, once
each until its neighbour cache expires, and it re-checks known neighbours with unicast
requests, which the capture does not report. So the rule counts the distinct addresses one
sender asked for by broadcast in a short window (`arp_window_seconds`, 60 s) and names a sweep
at `arp_min_targets` (64: a quarter of a /24).

The one benign look-alike is a gateway: when a sweep is routed through it (an outside scanner
probing a local subnet), it asks for each probed address in turn. Its alert names it as the
asker, and the flow rules name the outside scanner beside it; `arp_ignored_senders` lists
gateways whose requests should not count.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from detectors.kit import KeyedState, Unreported, due, part
from watchkeeper.documents import AlertSpec


@dataclass
class _Asker:
    last_seen: float
    mac: str = ""
    asked: dict[str, list] = field(default_factory=dict)    # address -> [time, event id]
    reported_at: int = 0
    raised_at: float = 0.0
    first_seen: float | None = None     # the episode's first address: the alert id's hour


class ArpSweeps:
    """Per sender, the addresses asked for in the window; a verdict when they make a sweep
    that is new, has doubled, or goes on a refresh period after its last raise."""

    def __init__(self, detector, config):
        self.detector, self.config = detector, config
        self.ignored = [ipaddress.ip_network(n, strict=False)
                        for n in config.arp_ignored_senders]
        self.askers = KeyedState(_Asker, config.max_sources)
        self.dropped = 0                 # addresses dropped by the per-sender cap
        self.unreported = Unreported()   # raised senders that asked for more since

    def on_request(self, event: dict, event_time: float) -> list[AlertSpec]:
        src, target = part(event, "source").get("ip"), part(event, "destination").get("ip")
        if not src or not target or self._ignored(src):
            return []
        cfg = self.config
        asker = self.askers.touch(src, lambda: _Asker(event_time))
        asker.last_seen = max(asker.last_seen, event_time)
        asker.mac = part(event, "source").get("mac") or asker.mac
        asker.asked.pop(target, None)   # kept in the order last asked
        asker.asked[target] = [event_time, event["event"]["id"]]
        self._prune(asker, event_time - cfg.arp_window_seconds)
        while len(asker.asked) > cfg.max_tracked_targets:
            del asker.asked[next(iter(asker.asked))]
            self.dropped += 1
        count = len(asker.asked)
        if count < cfg.arp_min_targets or not due(count, asker.reported_at, asker.raised_at,
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
        det, cfg = self.detector, self.config
        addresses = list(asker.asked)
        n, window = len(addresses), f"{cfg.arp_window_seconds:g}"
        mac = f" ({asker.mac})" if asker.mac else ""
        mac_zh = f"（{asker.mac}）" if asker.mac else " "     # a space only beside Latin text
        return AlertSpec(
            detector=det.name, detector_version=det.version, category=det.category,
            rule_id="wk.scan.arp_sweep", rule_name="Host discovery over ARP",
            severity=2 if n < 100 else 3 if n < 1000 else 4,
            message=f"{src}{mac} asked its segment over ARP for {n} addresses within "
                    f"{window} s ({_span(addresses)}): host discovery, or a gateway resolving "
                    f"a sweep routed through it",
            rule_name_zh="ARP 主机发现扫描",
            message_zh=f"{src}{mac_zh}在 {window} 秒内通过 ARP 广播查询了本网段 {n} 个地址"
                       f"（{_span(addresses)}）：主机发现扫描，或网关在转发外部扫描时解析地址",
            entity=src, first_seen=asker.first_seen,
            last_seen=max(v[0] for v in asker.asked.values()), source_ip=src,
            related_ips=sorted(addresses, key=_sort_key)[:50],
            evidence=[v[1] for v in asker.asked.values()][:100],
            subscores={"fanout": min(1.0, n / (4 * cfg.arp_min_targets))},
            technique_id="T1018", technique_name="Remote System Discovery", count=n)

    def expire(self, now: float) -> None:
        horizon = now - self.config.arp_window_seconds
        self.askers.expire_idle(horizon)

    def snapshot(self) -> dict:
        return self.askers.snapshot()

    def restore(self, state: dict) -> None:
        self.askers.restore(state)


def _sort_key(ip: str) -> tuple:
    try:
        return (0, int(ipaddress.ip_address(ip)))
    except ValueError:
        return (1, ip)


def _span(addresses: list[str]) -> str:
    ordered = sorted(addresses, key=_sort_key)
    return f"{ordered[0]} – {ordered[-1]}"
