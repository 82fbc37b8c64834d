"""An idle DNS tunnel rotated over many domains: failing polls on a clock (dns_tunneling).

An idle tunnel carries no data, so nothing in its names needs to look encoded: a short poll
(`bllcbwdcu`, `111-21818-617`) asks whether the operator has a command. When the implant also
rotates its domain (DarkHydrus' RogueRobin asks each poll under the next of 8-13 look-alike
domains, in a new record type each time), every domain sees one poll a minute and every
per-(client, domain) rule stays below its floor. What remains is the client's own rhythm: one
look-up every few seconds or minutes, each under a different registered domain, none of them
answered (SERVFAIL, REFUSED, NXDOMAIN, or no answer at all: the operator's server is silent
while there is nothing to say).

`RotationTracker` keeps, per client, the last `POLLS` failing look-ups (a name asked again
within `RETRY_S` is a retry of the same poll). It names the client when they tick like a clock
(detectors/clock.py: 11 of 12 intervals within +-40 % of the median, median >= `MIN_INTERVAL_S`),
go to at least `min_domains` registered domains, nearly every poll changes domain, and the list
comes round again (a domain of the last 13 polls was polled before within the last 26: a DGA's
sweep of never-repeated domains is the dga detector's, not a tunnel). What does not add up
this way: a resolver outage (each application retries its own domain on its own timer, so
their union has no single period), a monitor checking dead names in one burst per round, a
mail server's DNSBL look-ups (bursts per message, at the mail's pace), a browser's random
intranet probes (three at once). A scheduler that spreads checks of many dead domains evenly
over its period would match: declare those domains in `ignored_domains`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from detectors.clock import ticks
from detectors.kit import KeyedState
from watchkeeper.documents import AlertSpec

POLLS = 13                 # a dozen intervals, as the beacon rules
MIN_INTERVAL_S = 1.0       # faster is a burst (a sweep, a resolver's retries), not a poll
MIN_CHANGES = 11           # of the 12 steps between polls, those that change domain
HISTORY = 2 * POLLS        # polls in which a rotated list must come round again
RETRY_S = 10.0             # a name asked again within this is a retry (the client's or resolver's)
FAILING = frozenset({"SERVFAIL", "REFUSED", "NXDOMAIN"})


@dataclass
class Polls:
    times: list[float] = field(default_factory=list)       # the last POLLS polls
    domains: list[str] = field(default_factory=list)       # the last HISTORY polls' domains
    recent: list[list] = field(default_factory=list)       # [name, time] asked within RETRY_S
    evidence: list[str] = field(default_factory=list)
    reported: bool = False


@dataclass
class RotationVerdict:
    polls: int
    period: float
    domains: list[str]
    first_seen: float
    evidence: list[str]


def failed(dns: dict) -> bool:
    """A look-up that got no usable answer: an error code, or no response at all."""
    code = dns.get("response_code")
    return code is None or str(code).upper() in FAILING


def _comes_round(domains: list[str]) -> bool:
    """The last POLLS polls ask a domain asked before within HISTORY: a list cycled through.
    A DGA's sweep never comes back to a name (the dga detector judges it)."""
    window, before = domains[-POLLS:], domains[:-POLLS]
    return len(set(window)) < len(window) or bool(set(window) & set(before))


class RotationTracker:
    def __init__(self, min_domains: int, window_seconds: float, max_clients: int):
        self.min_domains = min_domains
        self.window = window_seconds
        self.clients = KeyedState(Polls, max_clients)

    def add(self, client: str, domain: str, name: str, event_time: float,
            event_id: str) -> RotationVerdict | None:
        """Record a failing look-up of `name` (under `domain`) by `client`; a verdict the first
        time the client's last polls rotate over domains on a clock."""
        polls = self.clients.touch(client, Polls)
        polls.recent = [r for r in polls.recent if event_time - r[1] <= RETRY_S]
        if any(r[0] == name for r in polls.recent):
            return None             # a retry of a poll, not a new one
        polls.recent.append([name, event_time])
        if polls.times and event_time - polls.times[-1] > self.window:
            polls.times, polls.domains = [], []     # a new rhythm after a long silence
            polls.reported = False
        polls.times.append(event_time)
        polls.domains.append(domain)
        polls.evidence = (polls.evidence + [event_id])[-POLLS:]
        del polls.times[:-POLLS], polls.domains[:-HISTORY]
        if polls.reported or len(polls.times) < POLLS:
            return None
        window = polls.domains[-POLLS:]
        changes = sum(a != b for a, b in zip(window, window[1:]))
        distinct = set(window)
        if changes < MIN_CHANGES or len(distinct) < self.min_domains \
                or not _comes_round(polls.domains) or not ticks(polls.times, MIN_INTERVAL_S):
            return None
        polls.reported = True       # one alert per rhythm; the incident gathers the rest
        period = statistics.median(b - a for a, b in zip(polls.times, polls.times[1:]))
        ranked = sorted(distinct, key=window.count, reverse=True)
        return RotationVerdict(len(polls.times), period, ranked, polls.times[0],
                               list(polls.evidence))

    def withdraw(self, client: str, name: str) -> None:
        """`name` was answered after all (a log that writes the query and its answer apart)."""
        polls = self.clients.get(client)
        if polls is not None and polls.recent and polls.recent[-1][0] == name \
                and polls.times and polls.times[-1] == polls.recent[-1][1]:
            polls.times.pop()
            polls.domains.pop()
            polls.evidence = polls.evidence[:-1]
            polls.recent.pop()

    def expire(self, now: float) -> None:
        horizon = now - self.window
        self.clients.expire(lambda p: not p.times or p.times[-1] < horizon)

    def snapshot(self) -> dict:
        return self.clients.snapshot()

    def restore(self, raw: dict, evicted: int = 0) -> None:
        self.clients.restore(raw, evicted)


def rotation_alert(det, src: str, verdict: RotationVerdict, now: float) -> AlertSpec:
    """The rotation rule's alert (`wk.dns_tunneling.rotation`), raised by the dns detector."""
    domains = verdict.domains
    shown = ", ".join(domains[:5]) + (f" and {len(domains) - 5} more" if len(domains) > 5
                                      else "")
    zh = shown_zh(domains)
    return AlertSpec(
        detector=det.name, detector_version=det.version, category=det.category,
        rule_id="wk.dns_tunneling.rotation", rule_name="Idle DNS tunnel over many domains",
        severity=2,
        message=f"{src} polled {verdict.polls} unanswered names every "
                f"{verdict.period:.0f} s, each under another of {len(domains)} registered "
                f"domains ({shown}; signals: failing_polls, clock, rotation)",
        rule_name_zh="多域名轮换的空闲 DNS 隧道",
        message_zh=f"{src} 每 {verdict.period:.0f} 秒查询一次无应答域名，共 {verdict.polls} "
                   f"次，每次换用 {len(domains)} 个注册域名中的另一个（{zh}；"
                   f"信号：failing_polls、clock、rotation）",
        entity=f"{src}->*", first_seen=verdict.first_seen, last_seen=now,
        source_ip=src, related_ips=[src], evidence=verdict.evidence,
        subscores={"domains": min(1.0, len(domains) / (2 * det.config.min_rotation_domains)),
                   "clock": 1.0},
        technique_id="T1071.004", technique_name="Application Layer Protocol: DNS",
        count=verdict.polls)


def shown_zh(domains: list[str]) -> str:
    """The first five domains, and how many more, for a zh-CN message."""
    more = f" 等 {len(domains)} 个" if len(domains) > 5 else ""
    return "、".join(domains[:5]) + more
