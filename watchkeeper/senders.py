"""Which hosts a collector accepts input from (setting `collector_allowed_senders`).

Collectors listen on UDP and TCP ports anyone on the path can reach. With a list of
networks, a datagram or connection from elsewhere is counted
(`watchkeeper_collector_refused_total{collector, transport}`) and never parsed; a TCP
connection is closed at once. With no list every sender is accepted, and the collector
says so with a WARNING at start.
"""
from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from watchkeeper import metrics

log = logging.getLogger(__name__)


class SenderPolicy:
    def __init__(self, networks: list[str] | None = None):
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks or ()]
        # Decisions cached per address: bounded, since source addresses are forgeable.
        self._allows = lru_cache(maxsize=4096)(self._check)

    @property
    def accept_all(self) -> bool:
        return not self.networks

    def allows(self, ip: str) -> bool:
        return True if not self.networks else self._allows(ip)

    def admit(self, ip: str, collector: str, transport: str) -> bool:
        """True to parse input from `ip`; False counts a refusal (labels are from code)."""
        if self.allows(ip):
            return True
        metrics.REFUSED.labels(collector=collector, transport=transport).inc()
        return False

    def announce(self, collector: str, where: str) -> None:
        if self.accept_all:
            log.warning("%s on %s accepts input from any sender: set collector_allowed_senders "
                        "to the exporters' networks", collector, where)
        else:
            log.info("%s on %s accepts input only from %s", collector, where,
                     ", ".join(map(str, self.networks)))

    def _check(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(addr, "ipv4_mapped", None)
        addr = mapped or addr
        return any(addr.version == net.version and addr in net for net in self.networks)


ACCEPT_ALL = SenderPolicy()
