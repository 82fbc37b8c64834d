"""Which addresses are ours: internal vs external, and the ECS network.direction that follows."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

DEFAULT_INTERNAL = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class InternalNetworks:
    def __init__(self, cidrs: tuple[str, ...] | list[str] = DEFAULT_INTERNAL):
        self.cidrs = tuple(cidrs)
        self._nets = tuple(ipaddress.ip_network(c, strict=False) for c in self.cidrs)
        self.is_internal = lru_cache(maxsize=65536)(self._is_internal)

    def _is_internal(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self._nets)

    def direction(self, source_ip: str, destination_ip: str) -> str:
        src, dst = self.is_internal(source_ip), self.is_internal(destination_ip)
        if src and dst:
            return "internal"
        if src:
            return "outbound"
        if dst:
            return "inbound"
        return "external"
