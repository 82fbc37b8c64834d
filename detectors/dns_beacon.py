"""Beacons over DNS: a client polling fresh names under one registered domain on a clock.

A DNS tunnel's idle polling is a beacon whose "connections" are queries: to get past the
resolver's cache each poll asks a name not asked before, and the name carries an encoded nonce
or session id. So the beaconing detector also reads DNS events, keyed (client, registered
domain, "dns"), and counts only queries whose name is new among the pair's last `MAX_NAMES`
names and looks encoded (dns_features.looks_encoded); the size of a poll is the length of its
name. A host re-resolving the same names on a timer (update checks, monitoring) repeats names,
and one resolving an inventory in turn (`ws00123.corp.lan`) asks host names, not nonces: neither
is counted. A resolver's own queries are its clients' and are never judged (as in dns.py).
"""
from __future__ import annotations

from detectors.dns import FORWARDED, _hash, _ignored, split_name
from detectors.dns_features import Resolvers, looks_encoded
from detectors.kit import part, text
from watchkeeper import schema

MAX_NAMES = 64                      # recent names remembered per pair
PORT = "dns"                        # the pair key's third part
IGNORED = frozenset({"in-addr.arpa", "ip6.arpa", "local"})


class DnsPolls:
    """Which DNS events are fresh polls, and the beacon pair key they belong to."""

    def __init__(self, max_pairs: int):
        # pair key -> [last poll time, recent name hashes], least recently seen first
        self._names: dict[str, list] = {}
        self._max = max_pairs
        self.resolvers = Resolvers()

    def key(self, event: dict, event_time: float) -> str | None:
        """'client|registered domain|dns' for a fresh poll, else None."""
        if schema.get(event, FORWARDED):
            return None
        self.resolvers.observe(event, event_time)
        src = text(part(event, "source").get("ip"))
        name = text(part(event, "dns", "question").get("name"))
        parts = split_name(name, ())
        if not src or src in self.resolvers or parts is None or not parts.subdomain \
                or _ignored(parts.registered, IGNORED) or not looks_encoded(parts.subdomain):
            return None
        key = f"{src}|{parts.registered}|{PORT}"
        entry = self._names.pop(key, None) or [event_time, []]
        entry[0] = max(entry[0], event_time)
        self._names[key] = entry
        recent, digest = entry[1], _hash(name.strip(".").lower())
        if digest in recent:
            return None
        recent.append(digest)
        del recent[:-MAX_NAMES]
        if len(self._names) > self._max:
            del self._names[next(iter(self._names))]
        return key

    def expire(self, horizon: float) -> None:
        """Forget pairs not polled since `horizon`, and resolvers after a day."""
        for key in [k for k, (last, _) in self._names.items() if last < horizon]:
            del self._names[key]
        self.resolvers.expire(horizon)

    def snapshot(self) -> dict:
        return {"dns_poll_names": self._names, "dns_resolvers": self.resolvers.snapshot()}

    def restore(self, state: dict) -> None:
        self._names = {k: [v[0], list(v[1])] for k, v in state.get("dns_poll_names", {}).items()}
        self.resolvers.restore(state.get("dns_resolvers", {}))


def poll_size(event: dict) -> int:
    """A poll's size: the length of the name it asked."""
    return len(text(part(event, "dns", "question").get("name")) or "")
