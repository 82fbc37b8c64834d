"""A DNS tunnel spread over many registered domains (dns_tunneling's cross-domain rule).

The per-(client, registered domain) rules of dns.py need one domain to carry the channel.
Some implants rotate it instead: DarkHydrus' RogueRobin asks each query under the next of a
list of look-alike domains (`onedrive.agency`, `0ffice365.life`, `skydrive.services`, ...),
so a busy upload leaves a dozen long encoded names under each of ten domains — under every
per-domain threshold. The client still asks the long, random-looking, never-repeated names a
tunnel needs; only their sum over the domains shows it.

`SpreadTracker` keeps, per client, the long high-entropy fresh names counted under each
registered domain (the per-domain rule's own count) in the window. A client is named when
domains holding at least `PER_DOMAIN` such names each sum to `min_names` over at least
`min_domains` of them. Browsing does not add up this way: the long hashed names of ad frames
or CDNs come a few at a time from a handful of providers, each of which the per-domain rule
already judges alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from detectors.kit import KeyedState, Unreported, due

PER_DOMAIN = 3          # long names under one domain before it counts as part of a spread


@dataclass
class Spread:
    domains: dict[str, list[float]] = field(default_factory=dict)   # domain -> [names, last]
    reported_at: int = 0
    raised_at: float = 0.0      # event time of the last verdict (refreshed while it goes on)
    first_seen: float = 0.0
    evidence: list[str] = field(default_factory=list)


@dataclass
class SpreadVerdict:
    names: int
    domains: list[str]
    state: Spread
    last: float = 0.0           # the newest name counted


class SpreadTracker:
    def __init__(self, min_names: int, min_domains: int, window_seconds: float,
                 max_clients: int, refresh_seconds: float):
        self.min_names, self.min_domains = min_names, min_domains
        self.window, self.refresh = window_seconds, refresh_seconds
        self.clients = KeyedState(Spread, max_clients)
        self.unreported = Unreported()      # clients raised whose spread grew since

    def add(self, client: str, domain: str, names: int, event_time: float,
            event_id: str) -> SpreadVerdict | None:
        """Record that `client` has `names` long names under `domain` now; a verdict when the
        spread makes a tunnel and has doubled since it was last reported, or goes on a
        refresh period after it (kit/reraise.py)."""
        spread = self.clients.touch(client, lambda: Spread(first_seen=event_time))
        spread.domains[domain] = [names, event_time]
        if len(spread.evidence) < 100:
            spread.evidence.append(event_id)
        counted = self._counted(spread, event_time)
        total = sum(counted.values())
        if len(counted) < self.min_domains or total < self.min_names \
                or not due(total, spread.reported_at, spread.raised_at, event_time,
                           self.refresh):
            if spread.reported_at and total > spread.reported_at:
                self.unreported.grew(client, event_time)    # its final count on the timer
            return None
        return self._verdict(client, spread, counted, event_time)

    def _counted(self, spread: Spread, now: float) -> dict[str, int]:
        horizon = now - self.window
        return {d: int(n) for d, (n, last) in spread.domains.items()
                if n >= PER_DOMAIN and last >= horizon}

    def _verdict(self, client: str, spread: Spread, counted: dict[str, int],
                 now: float) -> SpreadVerdict:
        total = sum(counted.values())
        spread.reported_at, spread.raised_at = total, now
        self.unreported.reported(client)
        last = max(v[1] for v in spread.domains.values())
        return SpreadVerdict(total, sorted(counted, key=counted.get, reverse=True), spread, last)

    def finals(self, now: float) -> list[tuple[str, SpreadVerdict]]:
        """Spreads that grew past their last verdict and stopped: their final counts, as of
        their newest name. Called before `expire`."""
        verdicts = []
        for client, spread in self.unreported.settled_in(self.clients, now, self.refresh):
            if not spread.domains:
                continue
            counted = self._counted(spread, max(v[1] for v in spread.domains.values()))
            if 0 < spread.reported_at < sum(counted.values()):
                verdicts.append((client, self._verdict(client, spread, counted, now)))
        return verdicts

    def expire(self, now: float) -> None:
        horizon = now - self.window
        for spread in self.clients.values():
            spread.domains = {d: v for d, v in spread.domains.items() if v[1] >= horizon}
        self.clients.expire(lambda s: not s.domains)

    def snapshot(self) -> dict:
        return self.clients.snapshot()

    def restore(self, raw: dict, evicted: int = 0) -> None:
        self.clients.restore(raw, evicted)
