"""Probes with invalid TCP flags, and OS fingerprinting (the scan detector's
`wk.scan.os_fingerprint` rule).

No TCP stack opens a connection with a FIN, with SYN and FIN at once, with no flag at all, or
with a bare ACK: those packets are probes (`nmap -sF/-sX/-sN/-sA`), and the scan detector
counts each as a failed first contact (`stealth_probe`). One kind of them, to many ports, is a
stealth port scan, which TRW and the fan-out floor name. Several kinds to the same host within
seconds is OS fingerprinting: `nmap -O` sends its T2-T7 probes (no flags; SYN+FIN+URG+PSH;
bare ACKs to an open and a closed port; FIN+PSH+URG) to each target in a fraction of a second,
to read how the stack answers each oddity. Those are only a handful of packets per host, far
under any fan-out floor, so a single host fingerprinted went unnamed (the OS-fingerprinting
capture of tests/data). The rule: `fingerprint_min_kinds` (3) of the four kinds from one source
to one host within `fingerprint_window_seconds` (10 s) fingerprints that host; the hosts one
source fingerprinted within the scan window are counted as the sweeps are (sweep.py), so
fingerprinting a subnet is one alert whose count grows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from detectors.kit import KeyedState, number, part, text
from detectors.sweep import SweepRule, Sweeps, scan_severity, scan_technique
from watchkeeper.documents import AlertSpec

# Zeek history letters the originator of a FIN, Xmas or SYN+FIN probe sends: FIN first ("F"),
# SYN and FIN at once ("Q"), retransmitted ("T").
STEALTH_LETTERS = frozenset("FQT")


def probe_kind(flow: dict, orig_packets) -> str | None:
    """The kind of invalid-flag probe a TCP flow is ("null", "synfin", "fin", "ack"), or None:
    the originator opened nothing, sent no payload and its first packet was a FIN, SYN+FIN or
    bare ACK, or carried no flag at all; the responder at most refused (RST). A bare ACK
    counts only when refused: unanswered, it is the last ACK of a connection the sensor
    joined midstream."""
    history = text(flow.get("history"))
    # On every TCP flow: an ordinary one (history "S...", "D...", "^...") is out at once.
    if history is None or (history and history[0] not in "FQAr"):
        return None
    if "^" in history or number(flow.get("orig_bytes")) > 0:
        return None
    if any(c.islower() and c != "r" for c in history):
        return None                     # the responder answered as to a connection
    sent = [c for c in history if c.isupper()]
    if not sent:
        return "null" if number(orig_packets) > 0 else None    # flagless packets
    if sent[0] == "A":
        # Refused, and (the caller's rule) to a target this source has not contacted in the
        # window: a straggling ACK of a connection it just had is not a first contact.
        return "ack" if set(sent) == {"A"} and "r" in history else None
    if sent[0] in "FQ" and set(sent) <= STEALTH_LETTERS:
        return "synfin" if sent[0] == "Q" else "fin"
    return None


def stealth_probe(flow: dict, orig_packets) -> bool:
    """A FIN, Xmas, NULL, SYN+FIN or ACK probe (`nmap -sF/-sX/-sN/-sA/-sW`, OS fingerprinting).
    Counted as a failed first contact: no client opens a connection this way, and a closed
    port's RST (Zeek's RSTR) would otherwise count as an accepted one."""
    return probe_kind(flow, orig_packets) is not None


@dataclass
class _Pair:
    last_seen: float
    kinds: dict[str, list] = field(default_factory=dict)    # kind -> [time, event id]


class OsFingerprints:
    """Per (source, host), the kinds of probe seen in the last `window` seconds; a host that
    gets `min_kinds` of them is counted as fingerprinted by that source."""

    def __init__(self, detector, min_kinds: int, window: float):
        cfg = detector.config
        self.min_kinds, self.window = min_kinds, window
        self.pairs = KeyedState(_Pair, cfg.max_sources)
        self.hosts = Sweeps(detector, OS_FINGERPRINT, 1, cfg.window_seconds, [])

    def on_probe(self, event: dict, event_time: float, kind: str,
                 internal: bool) -> list[AlertSpec]:
        src, dst = part(event, "source").get("ip"), part(event, "destination").get("ip")
        pair = self.pairs.touch(f"{src} {dst}", lambda: _Pair(event_time))
        pair.last_seen = max(pair.last_seen, event_time)
        horizon = event_time - self.window
        pair.kinds = {k: v for k, v in pair.kinds.items() if v[0] >= horizon}
        pair.kinds[kind] = [event_time, event["event"]["id"]]
        if len(pair.kinds) < self.min_kinds:
            return []
        return self.hosts.on_request(event, event_time, internal=internal,
                                     evidence=[v[1] for v in pair.kinds.values()])

    def final_counts(self, now: float) -> list[AlertSpec]:
        return self.hosts.final_counts(now)

    def expire(self, now: float) -> None:
        self.pairs.expire_idle(now - self.window)
        self.hosts.expire(now)

    @property
    def evicted(self) -> int:
        return self.pairs.evicted + self.hosts.evicted

    def snapshot(self) -> dict:
        """Flat keys, merged into the scan detector's snapshot."""
        return {"fingerprint_pairs": self.pairs.snapshot(),
                "fingerprint_hosts": self.hosts.snapshot(),
                "fingerprint_unreported": self.hosts.unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self.pairs.restore(state.get("fingerprint_pairs", {}))
        self.hosts.restore(state.get("fingerprint_hosts", {}))
        self.hosts.unreported.restore(state.get("fingerprint_unreported"))


def _words(src: str, _mac: str, n: int, window: str, span: str, _answered) -> tuple[str, str]:
    hosts = f"host {span.split(' – ')[0]}" if n == 1 else f"{n} hosts ({span})"
    hosts_zh = f"主机 {span.split(' – ')[0]} " if n == 1 else f" {n} 台主机（{span}）"
    return (f"{src} probed {hosts} with several kinds of invalid TCP flags within seconds "
            f"(of: no flags, SYN+FIN, FIN first, bare ACK), in the last {window} s: OS "
            f"fingerprinting (nmap -O)",
            f"{src} 在最近 {window} 秒内对{hosts_zh}在数秒内发送了多种非法 TCP 标志组合的探测包"
            f"（无标志、SYN+FIN、FIN、单独 ACK 中的几种）：操作系统指纹探测（nmap -O）")


OS_FINGERPRINT = SweepRule("wk.scan.os_fingerprint", "OS fingerprinting", "操作系统指纹探测",
                           _words, scan_severity, scan_technique)
