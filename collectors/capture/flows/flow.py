"""One connection in the flow table: counters, history, timers, and its FlowRecord.

Split from flows/reference.py to keep modules small; the table decides *when* packets reach a
Flow, this module decides *what* they do to it (Zeek conn.log semantics).
"""
from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass, field

from watchkeeper.documents import FlowRecord

from collectors.capture.flows import tcpstate as T

# Service guess by responder port (Zeek sets `service` from protocol detection; a port
# guess is what a flow meter can offer). Also Zeek's likely_server_ports for the flip.
SERVICES = {
    (6, 21): "ftp", (6, 22): "ssh", (6, 23): "telnet", (6, 25): "smtp", (6, 53): "dns",
    (6, 80): "http", (6, 110): "pop3", (6, 143): "imap", (6, 443): "ssl", (6, 445): "smb",
    (6, 139): "smb", (6, 502): "modbus", (6, 587): "smtp", (6, 993): "ssl", (6, 995): "ssl",
    (6, 1080): "socks", (6, 1883): "mqtt", (6, 3128): "http", (6, 3306): "mysql",
    (6, 3389): "rdp", (6, 5432): "postgresql", (6, 5900): "rfb", (6, 6379): "redis",
    (6, 6667): "irc", (6, 8080): "http", (6, 8443): "ssl", (6, 88): "krb", (6, 389): "ldap",
    (17, 53): "dns", (17, 67): "dhcp", (17, 68): "dhcp", (17, 88): "krb", (17, 123): "ntp",
    (17, 137): "dns", (17, 161): "snmp", (17, 162): "snmp", (17, 443): "quic",
    (17, 500): "ike", (17, 514): "syslog", (17, 1812): "radius", (17, 3544): "teredo",
    (17, 5060): "sip", (17, 5353): "dns", (17, 5355): "dns", (17, 4789): "vxlan",
    (17, 6081): "geneve", (17, 2152): "gtpv1",
}
# Zeek registers most analyzer ports as likely server ports, but not DHCP's client port.
LIKELY_SERVER_PORTS = frozenset(SERVICES) - {(17, 68)}
DNS_PORTS = frozenset({53, 137, 5353, 5355})
DNS_EXPIRE = 100        # timer kind (TCP kinds live in tcpstate)


@dataclass
class FlowConfig:
    """Flow-table parameters. Timeouts follow Zeek's defaults (init-bare.zeek)."""
    tcp_inactivity_timeout: float = 300.0   # Zeek tcp_inactivity_timeout (5 min)
    udp_inactivity_timeout: float = 60.0    # Zeek udp_inactivity_timeout
    icmp_inactivity_timeout: float = 60.0   # Zeek icmp_inactivity_timeout
    other_inactivity_timeout: float = 60.0  # Zeek unknown_ip_inactivity_timeout
    tcp_attempt_delay: float = 5.0          # unanswered SYN: connection attempt ends (S0)
    tcp_close_delay: float = 5.0            # linger after a complete FIN/RST close
    tcp_reset_delay: float = 5.0
    tcp_partial_close_delay: float = 3.0
    tcp_session_timer: float = 6.0          # period of the "is it over?" check
    tcp_syn_timeout: float = 5.0            # first such check after the first packet
    tcp_connection_linger: float = 5.0
    dns_session_timeout: float = 10.0       # Zeek's DNS analyzer ends idle UDP DNS sessions
    early_report: float = 5.0               # a flow still open this long is reported once
                                            # (final=False), so floods of one-packet UDP,
                                            # slow attacks and long uploads are seen while
                                            # they run (a reset reports at once); 0 disables
    active_timeout: float = 60.0            # then an interim record this often (NetFlow's
                                            # usual active timeout)
    max_flows: int = 500_000                # table bound; the oldest flows are evicted
    verify_checksums: bool = False          # Zeek verifies unless run with -C; offload
                                            # makes bad checksums common on live sensors
    likely_server_ports: frozenset = field(default=LIKELY_SERVER_PORTS)
    engine: str = "compiled"                # "compiled" (flows/compiled, numba) or
                                            # "reference" (flows/reference.py: the test oracle)

    def inactivity(self, proto: int) -> float:
        if proto == 6:
            return self.tcp_inactivity_timeout
        if proto == 17:
            return self.udp_inactivity_timeout
        if proto in (1, 58):
            return self.icmp_inactivity_timeout
        return self.other_inactivity_timeout


def merged_hints(old: dict | None, new: dict) -> dict:
    """A flow's payload hints (appmeta: SSH banners, a service) with a newer hint merged in."""
    merged = dict(old or {})
    merged["banners"] = {**merged.get("banners", {}), **new.get("banners", {})}
    if new.get("service"):
        merged["service"] = new["service"]
    return merged


class Flow:
    __slots__ = ("key", "proto", "v6", "ips", "ports", "start", "last", "uid", "pkts",
                 "ipb", "payload", "history", "hist_seen", "tcp", "timers", "inactivity_on",
                 "config", "interim_at", "tunnel", "heap_at", "alive", "app")

    def __init__(self, key: bytes, proto: int, v6: bool, ips: list, ports: list, t: float,
                 config: FlowConfig, tunnel: bool):
        self.key, self.proto, self.v6, self.config = key, proto, v6, config
        self.ips, self.ports = ips, ports              # [orig, resp]
        self.start = self.last = t
        self.uid = None                 # computed when the first record is built
        self.pkts, self.ipb, self.payload = [0, 0], [0, 0], [0, 0]
        self.history: list[str] = []
        self.hist_seen: set = set()
        self.timers: list[list] = []
        self.inactivity_on = True
        self.tcp = T.TcpState() if proto == 6 else None
        self.interim_at = t + (config.early_report or config.active_timeout)
        self.tunnel = tunnel
        self.heap_at = float("inf")
        self.alive = True
        self.app: dict | None = None    # what payloads told (appmeta hints: service, banners)
        if self.tcp is not None:
            self.add_timer(t + config.tcp_syn_timeout, T.EXPIRE)

    # --- history and timers (called by tcpstate) ----------------------------------------------
    def add_history(self, code: str, is_orig: bool) -> None:
        self.history.append(code if is_orig else code.lower())

    def check_history(self, code: str, is_orig: bool, mask: str | None = None) -> bool:
        """Zeek's CheckHistory: record a letter the first time only; True if seen before."""
        key = (mask or code, is_orig)
        if key in self.hist_seen:
            return True
        self.hist_seen.add(key)
        self.add_history(code, is_orig)
        return False

    def add_timer(self, when: float, kind: int) -> None:
        self.timers.append([when, kind])

    def flip(self) -> None:
        self.ips.reverse()
        self.ports.reverse()
        self.pkts.reverse()
        self.ipb.reverse()
        self.payload.reverse()
        if self.tcp is not None:
            self.tcp.flip()
        self.history.append("^")

    # --- expiry -------------------------------------------------------------------------------
    def expired_by(self, t: float) -> bool:
        """Fire every timer due at or before `t` (in order); True if the flow ends by then."""
        while self.timers:
            timers = self.timers
            i, when = 0, timers[0][0]        # first timer with the earliest time
            for k in range(1, len(timers)):
                if timers[k][0] < when:
                    i, when = k, timers[k][0]
            kind = timers[i][1]
            if when > t:
                break
            if self.inactivity_on and self.last + self.config.inactivity(self.proto) <= when:
                return True
            self.timers.pop(i)
            if kind == T.EXPIRE and not T.expire_may_remove(self):
                # While nothing changes it only re-arms every tcp_session_timer: jump
                # straight past `t` instead of replaying every period of a long idle gap.
                period = self.config.tcp_session_timer
                self.add_timer(when + ((t - when) // period + 1) * period, T.EXPIRE)
            elif kind == DNS_EXPIRE:
                if self._dns_timer(when):
                    return True
            elif T.timer_removes(self, kind, when):
                return True
        return self.inactivity_on and self.last + self.config.inactivity(self.proto) <= t

    def arm_dns_timer(self) -> None:
        if self.proto == 17 and self.ports[1] in DNS_PORTS:
            self.add_timer(self.start + self.config.dns_session_timeout, DNS_EXPIRE)

    def _dns_timer(self, when: float) -> bool:
        # Zeek DNS_Analyzer::ExpireTimer: one second of slack for a request/reply pair.
        timeout = self.config.dns_session_timeout
        if when - self.last >= timeout - 1.0:
            return True
        self.add_timer(when + timeout, DNS_EXPIRE)
        return False

    def next_deadline(self) -> float:
        """Earliest packet time at which the flow may end (for the expiry heap)."""
        due = self.last + self.config.inactivity(self.proto) if self.inactivity_on else 1e300
        for when, kind in self.timers:
            if kind == DNS_EXPIRE:
                due = min(due, max(when, self.last + self.config.dns_session_timeout - 1.0))
            elif kind != T.EXPIRE or T.expire_may_remove(self):
                due = min(due, max(when, self.last + self.config.tcp_connection_linger)
                          if kind == T.EXPIRE else when)
        return min(due, self.interim_at)

    # --- output -------------------------------------------------------------------------------
    def record(self, final: bool = True) -> FlowRecord:
        history = "".join(self.history)
        if self.tcp is not None:
            state = T.conn_state(self.tcp, history)
            obytes, rbytes = self.tcp.orig.size(), self.tcp.resp.size()
        elif self.proto == 17:
            active = (self.pkts[0] > 0, self.pkts[1] > 0)
            state = {(True, True): "SF", (True, False): "S0",
                     (False, True): "SHR"}.get(active, "OTH")
            obytes, rbytes = self.payload
        else:
            state, (obytes, rbytes) = "OTH", self.payload
        if self.uid is None:
            self.uid = flow_uid(self.key.hex(), self.start)
        rec = FlowRecord(
            uid=self.uid, start=self.start, end=self.last, proto=self.proto,
            orig_ip=ip_text(self.ips[0], self.v6), orig_port=self.ports[0],
            resp_ip=ip_text(self.ips[1], self.v6), resp_port=self.ports[1],
            orig_pkts=self.pkts[0], resp_pkts=self.pkts[1], orig_bytes=obytes,
            resp_bytes=rbytes, orig_ip_bytes=self.ipb[0], resp_ip_bytes=self.ipb[1],
            conn_state=state, history=history, service=self._service(obytes + rbytes),
            final=final)
        if self.tunnel:
            rec.extra["tunnelled"] = True
        if self.app:
            for (ip, port), banner in self.app.get("banners", {}).items():
                side = "client" if (ip, port) == (self.ips[0], self.ports[0]) else "server"
                rec.extra[f"ssh_{side}"] = banner
        return rec

    def _service(self, payload: int) -> str | None:
        if payload <= 0 or self.proto not in (6, 17):
            return None
        if self.app and self.app.get("service"):     # seen in the payload: beats the port
            return self.app["service"]
        return SERVICES.get((self.proto, self.ports[1]))


def flow_uid(key_hex: str, start: float) -> str:
    """Zeek-style uid, deterministic: "C" + watchkeeper.schema.stable_id("flow", key hex,
    repr(start))[:20], inlined (it is computed once per flow, ~1 M times on a flood)."""
    text = f"flow\x1f{key_hex}\x1f{start!r}"
    return "C" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:20]


_IP_CACHE: dict[bytes, str] = {}


def ip_text(raw: bytes, v6: bool) -> str:
    """Text form of a 16-byte address, as `ipaddress` writes it (cached: floods repeat
    addresses). inet_ntop differs from ipaddress only for IPv4-embedded IPv6 forms."""
    key = raw if v6 else raw[12:]
    text = _IP_CACHE.get(key)
    if text is None:
        if not v6:
            text = socket.inet_ntoa(key)
        else:
            text = socket.inet_ntop(socket.AF_INET6, key)
            if "." in text:
                text = str(ipaddress.IPv6Address(key))
        if len(_IP_CACHE) > 1 << 18:
            _IP_CACHE.clear()
        _IP_CACHE[key] = text
    return text
