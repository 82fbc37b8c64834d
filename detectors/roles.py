"""Host roles for lateral movement from day one: does admin-protocol use fit the host?

Novelty learning (detectors/lateral.py) needs days to know what is normal; a monitor started
minutes ago knows nothing yet. The asset role closes that gap: a *workstation* that opens admin
sessions (RDP, WinRM, SSH, WMI/DCOM over RPC, SMB, telnet, VNC) to several other hosts does what
an operator or an intruder does, not what its user does, whether or not we have learned it yet.

A host's role comes from the inventory given in the configuration (`workstation_networks`,
`server_networks`, CIDRs; servers win on overlap) or, for hosts in neither, is learned: a host
seen answering an established session on a service port (below 10000) is a server, any other
host is taken as a workstation. The learning is per detector instance, so it sees the flows of
the sources in its partition; a workstation that answers a session (an administrator's RDP into
it) becomes a "server" — a miss, never a false alarm.

Misfit rule, over the source's admin sessions to hosts it had not reached before: at least
`min_hosts` distinct hosts, and either two distinct admin services or one remote-execution
service (anything but SMB file sharing: a workstation mapping two file shares is normal).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from detectors.kit import part, text

FILE_SHARING = frozenset({445, 139})
SERVICE_PORT_LIMIT = 10_000
ESTABLISHED = frozenset({"S1", "S2", "S3", "SF", "RSTO", "RSTR"})


class RoleBook:
    """Workstation or server, per address: configured networks first, then what was seen."""

    def __init__(self, workstations: Iterable[str], servers: Iterable[str], max_hosts: int):
        self._workstations = [ipaddress.ip_network(c, strict=False) for c in workstations]
        self._servers = [ipaddress.ip_network(c, strict=False) for c in servers]
        self._serving: dict[str, float] = {}     # learned server -> last answered (LRU)
        self._max = max_hosts

    def observe(self, event: dict, event_time: float) -> None:
        """Learn servers from established sessions they answered on a service port."""
        dst = part(event, "destination")
        ip, port = text(dst.get("ip")), dst.get("port")
        if not ip or not isinstance(port, int) or port >= SERVICE_PORT_LIMIT:
            return
        if part(event, "network").get("transport") != "tcp" or not dst.get("packets"):
            return
        if part(event, "watchkeeper", "flow").get("conn_state") not in ESTABLISHED:
            return
        self._serving.pop(ip, None)
        self._serving[ip] = event_time
        if len(self._serving) > self._max:
            del self._serving[next(iter(self._serving))]

    def forget(self, horizon: float) -> None:
        """Hosts that have not answered since `horizon` are no longer known servers."""
        while self._serving and next(iter(self._serving.values())) < horizon:
            del self._serving[next(iter(self._serving))]

    def role(self, ip: str) -> str:
        configured = self._configured(ip)
        if configured:
            return configured
        return "server" if ip in self._serving else "workstation"

    def configured(self, ip: str) -> str | None:
        """The role the inventory gives `ip`, or None when it is not in the inventory."""
        return self._configured(ip)

    def _configured(self, ip: str) -> str | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if any(addr in net for net in self._servers):
            return "server"
        if any(addr in net for net in self._workstations):
            return "workstation"
        return None

    def snapshot(self) -> dict[str, float]:
        return dict(self._serving)

    def restore(self, serving: dict[str, float]) -> None:
        self._serving = dict(serving) if isinstance(serving, dict) else {}


def misfit(targets: Iterable[str], min_hosts: int) -> bool:
    """True when a workstation's new admin targets ("ip|port") are an operator's, not a user's."""
    hosts, ports = set(), set()
    for target in targets:
        host, _, port = target.rpartition("|")
        hosts.add(host)
        ports.add(int(port))
    if len(hosts) < min_hosts:
        return False
    return len(ports) >= 2 or bool(ports - FILE_SHARING)
