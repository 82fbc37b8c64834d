"""Synthetic scenario traffic as a pcap: benign web and DNS plus one half-open port scan.

Used by the `make run` demo and the end-to-end tests, so the output is deterministic for a
given seed and start. The capture is seen from a sensor on the client LAN (10.10.1.0/24):
every frame has the client's MAC on one side and the LAN gateway's MAC on the other.
"""
from __future__ import annotations

import heapq
import ipaddress
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import formatdate
from functools import partial
from typing import Callable, Iterable, Iterator

from scapy.data import DLT_EN10MB
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

DEFAULT_START = datetime(2026, 11, 1, 8, 0, 0, tzinfo=timezone.utc).timestamp()
DURATION = 240.0  # seconds of benign background traffic
CLIENT_NET = ipaddress.ip_network("10.10.1.0/24")
CLIENTS = tuple(f"10.10.1.{n}" for n in range(20, 36))
GATEWAY_MAC = "02:00:0a:0a:01:01"
RESOLVER = "10.10.2.53"
SCAN_TARGET = "10.10.2.20"
OPEN_PORTS = (22, 80, 443)
MSS = 1460

# name -> (IPv4, IPv6 or None); also what the resolver answers.
NAMES: dict[str, tuple[str, str | None]] = {
    "portal.region.example": ("10.10.2.10", None),
    "docs.region.example": ("10.10.2.11", None),
    "www.example.org": ("203.0.113.80", "2001:db8::80"),
    "files.region.example": (SCAN_TARGET, None),
    "mail.region.example": ("10.10.2.25", None),
    "updates.example.com": ("198.51.100.17", "2001:db8:100::17"),
    "cdn.example.net": ("198.51.100.40", "2001:db8:100::40"),
    "time.example.net": ("203.0.113.123", None),
}
WEB_SITES = ("portal.region.example", "docs.region.example", "www.example.org")
PATHS = ("/", "/index.html", "/services/permits", "/news/2026/11", "/contact", "/forms/tax")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
WORDS = ("citizen", "permit", "office", "service", "request", "municipal", "record",
         "notice", "council", "registry", "form", "schedule", "tax", "district")


@dataclass
class ScenarioSummary:
    path: str
    packets: int
    start: float
    end: float
    scanner: str  # the scanning host's IP
    scan_target: str
    scanned_ports: int
    benign_hosts: list[str]  # IPs of hosts that only did benign things


@dataclass
class _Timed:
    at: float
    packet: Packet


@dataclass
class _Unit:
    """One self-contained exchange; build() yields frames at or after `at`, in time order."""
    at: float
    build: Callable[[], list[_Timed]]


@dataclass(order=True)
class _Queued:
    us: int
    seq: int
    packet: Packet = field(compare=False)


def _mac(ip: str) -> str:
    return "02:00:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def _frame(src: str, dst: str, l4: Packet, *, ttl: int, ip_id: int = 0, df: bool = True) -> Packet:
    # Lengths and checksums are left unset so scapy computes them when the frame is built.
    local_src = ipaddress.ip_address(src) in CLIENT_NET
    ether = Ether(src=_mac(src) if local_src else GATEWAY_MAC,
                  dst=GATEWAY_MAC if local_src else _mac(dst))
    return ether / IP(src=src, dst=dst, ttl=ttl, id=ip_id, flags="DF" if df else 0) / l4


def _rtt(rng: random.Random, ip: str) -> float:
    private = ipaddress.ip_address(ip).is_private
    return rng.uniform(0.0003, 0.0015) if private else rng.uniform(0.02, 0.04)


def _dns_lookup(rng: random.Random, at: float, client: str, name: str, qtype: str) -> list[_Timed]:
    qid, sport = rng.getrandbits(16), rng.randint(32768, 60999)
    # AAAA for an internal name (no IPv6 address) gets an empty answer section.
    address = NAMES[name][0 if qtype == "A" else 1]
    answers = [DNSRR(rrname=name, type=qtype, ttl=300, rdata=address)] if address else []
    query = DNS(id=qid, rd=1, qd=[DNSQR(qname=name, qtype=qtype)])
    reply = DNS(id=qid, qr=1, rd=1, ra=1, qd=[DNSQR(qname=name, qtype=qtype)], an=answers)
    reply_at = at + rng.uniform(0.0004, 0.02)  # cache hit or a short recursion
    return [
        _Timed(at, _frame(client, RESOLVER, UDP(sport=sport, dport=53) / query,
                          ttl=64, ip_id=rng.getrandbits(16), df=False)),
        _Timed(reply_at, _frame(RESOLVER, client, UDP(sport=53, dport=sport) / reply,
                                ttl=63, ip_id=rng.getrandbits(16), df=False)),
    ]


class _TcpSession:
    """Tracks both sides' sequence numbers so every segment's seq/ack is consistent."""

    def __init__(self, rng: random.Random, client: str, server: str, dport: int, at: float):
        self.client, self.server, self.dport = client, server, dport
        self.sport = rng.randint(32768, 60999)
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}  # keyed by from_client
        self.at, self.rtt = at, _rtt(rng, server)
        # One routed hop for our servers; the external one arrives from further away.
        self.server_ttl = 63 if ipaddress.ip_address(server).is_private else 52
        self.frames: list[_Timed] = []

    def send(self, from_client: bool, flags: str, payload: bytes = b"", delay: float = 0.0) -> None:
        self.at += delay
        seq = self.seq[from_client]
        ack = self.seq[not from_client] if "A" in flags else 0
        syn = "S" in flags
        window = (64240 if from_client else 65160) if syn else (502 if from_client else 509)
        options = [("MSS", MSS), ("SAckOK", b""), ("NOP", None), ("WScale", 7)] if syn else []
        ports = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        tcp = TCP(sport=ports[0], dport=ports[1], flags=flags, seq=seq, ack=ack,
                  window=window, options=options)
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        ttl = 64 if from_client else self.server_ttl
        segment = tcp / Raw(payload) if payload else tcp
        self.frames.append(_Timed(self.at, _frame(src, dst, segment, ttl=ttl)))
        # SYN and FIN each consume one sequence number.
        self.seq[from_client] = (seq + len(payload) + syn + ("F" in flags)) % 2**32


def _http_response(rng: random.Random, at: float) -> bytes:
    lines = ["<!DOCTYPE html>", "<html><head><title>Regional services</title></head><body>"]
    target = rng.randint(3000, 12000)
    while sum(len(line) + 1 for line in lines) < target:
        words = (rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        lines.append("<p>" + " ".join(words) + "</p>")
    body = ("\n".join(lines + ["</body></html>"]) + "\n").encode()
    head = (f"HTTP/1.1 200 OK\r\nDate: {formatdate(at, usegmt=True)}\r\nServer: nginx\r\n"
            f"Content-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def _web_session(seed: int, at: float, client: str, site: str) -> list[_Timed]:
    rng = random.Random(seed)
    frames = _dns_lookup(rng, at, client, site, "A")
    tcp = _TcpSession(rng, client, NAMES[site][0], 80, frames[-1].at + rng.uniform(0.0005, 0.005))
    tcp.send(True, "S")
    tcp.send(False, "SA", delay=tcp.rtt)
    tcp.send(True, "A", delay=0.0001)
    request = (f"GET {rng.choice(PATHS)} HTTP/1.1\r\nHost: {site}\r\n"
               f"User-Agent: {rng.choice(USER_AGENTS)}\r\nAccept: text/html,*/*;q=0.8\r\n"
               "Accept-Language: en-US,en;q=0.5\r\n\r\n").encode()
    tcp.send(True, "PA", request, delay=0.0002)
    tcp.send(False, "A", delay=tcp.rtt)
    response = _http_response(rng, tcp.at)
    chunks = [response[i:i + MSS] for i in range(0, len(response), MSS)]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        tcp.send(False, "PA" if last else "A", chunk,
                 delay=rng.uniform(0.002, 0.03) if index == 0 else 0.0001)
        if index % 2 == 1 or last:  # delayed ACK: every second segment
            tcp.send(True, "A", delay=0.00005)
    # Connection: close, so the server closes first and the client follows.
    tcp.send(False, "FA", delay=0.0001)
    tcp.send(True, "A", delay=0.00005)
    tcp.send(True, "FA", delay=rng.uniform(0.0005, 0.003))
    tcp.send(False, "A", delay=tcp.rtt)
    return frames + tcp.frames


def _dns_pair(seed: int, at: float, client: str, name: str) -> list[_Timed]:
    rng = random.Random(seed)
    first = _dns_lookup(rng, at, client, name, "A")
    return first + _dns_lookup(rng, at + rng.uniform(0.0001, 0.001), client, name, "AAAA")


def _scan_probe(seed: int, at: float, scanner: str, port: int) -> list[_Timed]:
    """An nmap-style SYN probe; open ports answer SYN/ACK and the scanner resets (half-open)."""
    rng = random.Random(seed)
    sport, seq = rng.randint(32768, 60999), rng.getrandbits(32)
    probe = TCP(sport=sport, dport=port, flags="S", seq=seq, window=1024, options=[("MSS", 1460)])
    # nmap's raw probes carry a random IP id and TTL and no DF bit.
    frames = [_Timed(at, _frame(scanner, SCAN_TARGET, probe, ttl=rng.randint(37, 59),
                                ip_id=rng.getrandbits(16), df=False))]
    answer_at = at + _rtt(rng, SCAN_TARGET)
    if port not in OPEN_PORTS:
        reset = TCP(sport=port, dport=sport, flags="RA", seq=0, ack=seq + 1, window=0)
        return frames + [_Timed(answer_at, _frame(SCAN_TARGET, scanner, reset, ttl=63))]
    syn_ack = TCP(sport=port, dport=sport, flags="SA", seq=rng.getrandbits(32), ack=seq + 1,
                  window=65160, options=[("MSS", MSS)])
    abort = TCP(sport=sport, dport=port, flags="R", seq=seq + 1, window=0)
    return frames + [
        _Timed(answer_at, _frame(SCAN_TARGET, scanner, syn_ack, ttl=63)),
        _Timed(answer_at + 0.00003, _frame(scanner, SCAN_TARGET, abort, ttl=64, df=False)),
    ]


def _scan_port_list(rng: random.Random, count: int) -> list[int]:
    """The open ports first, then well-known ports, then higher ones; probed in shuffled order."""
    well_known = [p for p in range(1, 1025) if p not in OPEN_PORTS]
    rng.shuffle(well_known)
    ports = (list(OPEN_PORTS) + well_known)[:count]
    if count > len(ports):
        ports += rng.sample(range(1025, 65536), count - len(ports))
    rng.shuffle(ports)
    return ports


def _scan_units(rng: random.Random, start: float, scanner: str, count: int) -> list[_Unit]:
    begin = start + rng.uniform(60.0, 90.0)
    span = rng.uniform(10.0, 18.0)
    ports = _scan_port_list(rng, count)
    times = sorted(begin + rng.uniform(0.0, span) for _ in ports)
    return [_Unit(at, partial(_scan_probe, rng.getrandbits(64), at, scanner, port))
            for at, port in zip(times, ports)]


@dataclass
class _BenignPlan:
    units: list[_Unit]
    hosts: set[str]  # every address that takes part in the benign traffic


def _benign_units(rng: random.Random, start: float, clients: list[str],
                  sessions: int) -> _BenignPlan:
    plan = _BenignPlan(units=[], hosts={RESOLVER})
    for index in range(sessions):
        # The first session starts exactly at `start`, so the capture begins there.
        at = start if index == 0 else start + rng.uniform(0.0, DURATION)
        client, site = rng.choice(clients), rng.choice(WEB_SITES)
        plan.units.append(_Unit(at, partial(_web_session, rng.getrandbits(64), at, client, site)))
        plan.hosts |= {client, NAMES[site][0]}
    for _ in range(3 * sessions):
        at = start + rng.uniform(0.0, DURATION)
        client, name = rng.choice(clients), rng.choice(sorted(NAMES))
        plan.units.append(_Unit(at, partial(_dns_pair, rng.getrandbits(64), at, client, name)))
        plan.hosts.add(client)
    return plan


def _in_time_order(units: Iterable[_Unit]) -> Iterator[_Queued]:
    """Merge the units' frames by time while building only the units that have started."""
    pending: list[_Queued] = []
    counter = 0
    for unit in sorted(units, key=lambda u: u.at):
        # No later unit can produce a frame earlier than its own start.
        while pending and pending[0].us <= round(unit.at * 1e6):
            yield heapq.heappop(pending)
        for timed in unit.build():
            heapq.heappush(pending, _Queued(round(timed.at * 1e6), counter, timed.packet))
            counter += 1
    while pending:
        yield heapq.heappop(pending)


@dataclass
class _Written:
    packets: int
    first_us: int
    last_us: int


def _write_pcap(path: str, frames: Iterator[_Queued]) -> _Written:
    written = _Written(packets=0, first_us=0, last_us=0)
    writer = PcapWriter(path, linktype=DLT_EN10MB, sync=False)  # streams; nothing is kept
    try:
        for queued in frames:
            # Exact decimal microseconds so the written timestamps keep the merge order.
            queued.packet.time = Decimal(queued.us) / 1_000_000
            writer.write(queued.packet)
            written.first_us = queued.us if written.packets == 0 else written.first_us
            written.last_us, written.packets = queued.us, written.packets + 1
    finally:
        writer.close()
    return written


def write_scenario(path: str, *, start: float | None = None, seed: int = 7,
                   scan_ports: int = 200, benign_sessions: int = 40) -> ScenarioSummary:
    """Write the scenario to `path` (pcap, Ethernet) and describe what is in it.

    `benign_hosts` lists every host in the capture other than the scanner and the scan target.
    """
    if not 1 <= scan_ports <= 65535:
        raise ValueError(f"scan_ports must be within 1..65535, not {scan_ports}")
    if benign_sessions < 1:
        raise ValueError(f"benign_sessions must be at least 1, not {benign_sessions}")
    rng = random.Random(seed)
    start = DEFAULT_START if start is None else start
    scanner = rng.choice(CLIENTS)
    benign = _benign_units(rng, start, [c for c in CLIENTS if c != scanner], benign_sessions)
    units = benign.units + _scan_units(rng, start, scanner, scan_ports)
    written = _write_pcap(path, _in_time_order(units))
    return ScenarioSummary(path=path, packets=written.packets, start=written.first_us / 1e6,
                           end=written.last_us / 1e6, scanner=scanner, scan_target=SCAN_TARGET,
                           scanned_ports=scan_ports,
                           benign_hosts=sorted(benign.hosts, key=ipaddress.ip_address))
