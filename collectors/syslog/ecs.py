"""What a program parser returns, and the small checks that keep its fields schema-valid."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass
class Extraction:
    """ECS fields a program parser found in one message, merged into the syslog document."""
    module: str                                   # event.module: sshd, sudo, pam, netfilter, cef
    fields: dict[str, Any] = field(default_factory=dict)   # nested ECS fragment
    ips: list[str] = field(default_factory=list)           # -> related.ip
    users: list[str] = field(default_factory=list)         # -> related.user

    def put(self, dotted: str, value: Any) -> None:
        """Set a dotted ECS path; None and "" are left out rather than stored empty."""
        if value is None or value == "":
            return
        node = self.fields
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def endpoint(self, side: str, ip: str | None, port: str | None = None) -> None:
        """source/destination ip+port, only when they are a real address and port."""
        address = valid_ip(ip)
        if address is None:
            return
        self.put(f"{side}.ip", address)
        self.put(f"{side}.port", valid_port(port))
        if address not in self.ips:
            self.ips.append(address)

    def user(self, dotted: str, name: str | None) -> None:
        if not name:
            return
        self.put(dotted, name)
        if name not in self.users:
            self.users.append(name)


@lru_cache(maxsize=65536)
def valid_ip(text: str | None) -> str | None:
    """The address in canonical form, or None; an IPv6 zone (`fe80::1%eth0`) is dropped.
    Cached: the same few addresses repeat across a burst (a brute force, a scan)."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def valid_port(text: str | int | None) -> int | None:
    try:
        port = int(text) if text is not None else None
    except ValueError:
        return None
    return port if port is not None and 0 <= port <= 65535 else None
