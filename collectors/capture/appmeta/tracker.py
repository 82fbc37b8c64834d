"""Application metadata from packet payloads: DNS, HTTP, TLS hellos, SSH banners, DCE/RPC
calls and Kerberos logins.

Candidates are picked per batch with numpy (port and first payload bytes), so only the few
packets that can carry metadata reach Python. Each is parsed on its own (first TCP segment
or one UDP datagram; no stream reassembly, like a flow meter rather than Zeek), and a
request is paired with its answer inside the same flow: a DNS query with the response of the
same id and name, an HTTP request with the next response, a ClientHello with the
ServerHello. An answerless request is reported alone when its timeout passes (packet time,
or the live clock), so nothing is held forever. What the payload proves about the service
(an SSH banner on port 902, HTTP on 8081) is handed to the flow table as a hint.
"""
from __future__ import annotations

import ipaddress
from collections import deque
from functools import lru_cache
from dataclasses import dataclass, field

import numpy as np

from watchkeeper import schema

from collectors.capture.appmeta import dcerpc, dnswire, httphead, kerberos, sshbanner, tlshello
from collectors.capture.appmeta.errors import AppParseError
from collectors.capture.decoding import packets as D
from collectors.capture.flows.flow import ip_text
from collectors.capture.flows.reference import canonical_keys

DNS_UDP_PORTS = (53, 137, 5353, 5355)     # DNS, NetBIOS-NS, mDNS, LLMNR (Zeek's set)
_METHODS = [b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC",
            b"PROP"]
_HEAD = 6                             # payload bytes looked at by the vectorised classifier
DNS, HTTP_REQ, HTTP_RESP, TLS_HELLO, SSH, DCERPC, KERBEROS = 1, 2, 3, 4, 5, 6, 7


def _word(text: bytes) -> int:
    return int.from_bytes(text[:4], "big")


_METHOD_WORDS = np.array([_word(m) for m in _METHODS], np.int64)
_HTTP_WORD, _SSH_WORD = _word(b"HTTP"), _word(b"SSH-")


@dataclass
class AppConfig:
    dns_timeout: float = 10.0       # an unanswered query is reported alone after this
    http_timeout: float = 30.0      # a request without a response line
    tls_timeout: float = 10.0       # a ClientHello without a ServerHello
    kerberos_timeout: float = 10.0  # an AS-REQ without its AS-REP or KRB-ERROR
    max_pending: int = 100_000      # requests waiting for their answer; oldest reported first
    forward_window: float = 5.0     # a resolver's query for a name a client asked it this
                                    # recently is marked as forwarded for that client
    max_asked: int = 50_000         # (resolver, name) -> client pairs remembered for that


@dataclass
class AppStats:
    dns: int = 0
    http: int = 0
    tls: int = 0
    ssh: int = 0                    # banners seen (they become flow hints, not events)
    dce_rpc: int = 0                # calls on a named interface (svcctl, atsvc, ...)
    kerberos: int = 0               # AS exchanges (logins)
    malformed: int = 0              # looked like the protocol, did not parse
    unanswered: int = 0             # reported without their answer (timeout, eviction)


@dataclass(slots=True)
class AppRecord:
    """One application transaction; `orig` is the client (query/request/hello sender)."""
    kind: str                       # "dns" | "http" | "tls" | "dce_rpc" | "kerberos" | "arp"
    ts: float                       # the request's time (the answer's if it came alone)
    proto: int
    orig_ip: str
    orig_port: int
    resp_ip: str
    resp_port: int
    flow_key: str                   # canonical flow key (hex): ties the record to its flow
    request: object | None = None   # parsed request (DnsMessage, HttpRequest, ClientHello,
                                    # DceRpcCall, KrbMessage)
    answer: object | None = None    # parsed answer
    answered_at: float | None = None
    forwarded_for: str | None = None    # DNS: a resolver asking on behalf of this client


@dataclass
class _Packet:
    ts: float
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    key: bytes
    sender: tuple[bytes, int]       # (16-byte address, port): which side of the flow spoke


@dataclass
class _Waiting:
    deadline: float
    record: AppRecord


@dataclass
class AppTracker:
    config: AppConfig = field(default_factory=AppConfig)
    stats: AppStats = field(default_factory=AppStats)

    def __post_init__(self) -> None:
        self._dns: dict[tuple, _Waiting] = {}
        self._tls: dict[bytes, _Waiting] = {}
        self._krb: dict[bytes, _Waiting] = {}
        self._tgs: dict[bytes, None] = {}      # flows with a TGS-REQ out: its answer is not a login
        self._http: dict[bytes, deque[_Waiting]] = {}
        self._http_waiting = 0
        self._http_scan_at = float("-inf")
        self._asked: dict[tuple[str, str], tuple[str, float]] = {}   # insertion = time order
        self._out: list[AppRecord] = []
        self.hints: dict[bytes, dict] = {}     # flow key -> {"service", "extra"}
        self._dcerpc = dcerpc.DceRpcTracker()

    # --- batches ----------------------------------------------------------------------------
    def process(self, data: np.ndarray, packets: D.Packets) -> None:
        """Parse the candidate packets of a decoded batch (`data`: the batch's bytes)."""
        kinds = classify(data, packets)
        rows = np.flatnonzero(kinds)
        if not rows.size:
            return
        p, kinds = D.take(packets, rows), kinds[rows]
        keys, _ = canonical_keys(p)
        for i in range(len(rows)):
            start = int(p.payoff[i])
            payload = data[start:start + int(p.paycap[i])].tobytes()
            v6 = bool(p.v6[i])
            pkt = _Packet(float(p.ts[i]), int(p.proto[i]), ip_text(p.src[i].tobytes(), v6),
                          int(p.sport[i]), ip_text(p.dst[i].tobytes(), v6), int(p.dport[i]),
                          keys[i].tobytes(), (p.src[i].tobytes(), int(p.sport[i])))
            try:
                self._parse(int(kinds[i]), payload, pkt)
            except AppParseError:
                self.stats.malformed += 1

    def expire(self, now: float) -> None:
        """Report requests whose answer is overdue at `now`."""
        for table in (self._dns, self._tls, self._krb):
            # Insertion order is time order and each table has one timeout: stop at the
            # first request not yet due.
            while table:
                key = next(iter(table))
                if table[key].deadline > now:
                    break
                self._emit(table.pop(key).record, unanswered=True)
        if now < self._http_scan_at:        # HTTP queues are per flow: scan once a second
            return
        self._http_scan_at = now + 1.0
        for key in list(self._http):
            queue = self._http[key]
            while queue and queue[0].deadline <= now:
                self._http_waiting -= 1
                self._emit(queue.popleft().record, unanswered=True)
            if not queue:
                del self._http[key]

    def drain(self) -> list[AppRecord]:
        out, self._out = self._out, []
        return out

    def flush(self) -> list[AppRecord]:
        """End of input: every waiting request is reported."""
        self.expire(float("inf"))
        return self.drain()

    def take_hints(self) -> dict[bytes, dict]:
        hints, self.hints = self.hints, {}
        return hints

    # --- one payload ------------------------------------------------------------------------
    def _parse(self, kind: int, payload: bytes, pkt: _Packet) -> None:
        if kind == DNS:
            message = dnswire.parse_dns(payload, tcp=pkt.proto == 6)
            self._dns_message(message, pkt)
            if pkt.proto == 6:
                self._hint(pkt.key, "dns")
        elif kind == HTTP_REQ:
            request = httphead.parse_request(payload)
            if request is not None:
                self._wait_http(_record("http", pkt, request), pkt)
                self._hint(pkt.key, "http")
        elif kind == HTTP_RESP:
            response = httphead.parse_response(payload)
            if response is not None:
                self._answer_http(response, pkt)
        elif kind == TLS_HELLO:
            self._tls_hello(payload, pkt)
        elif kind == SSH:
            banner = sshbanner.parse_banner(payload)
            if banner is not None:
                self.stats.ssh += 1
                self._hint(pkt.key, "ssh", banners={pkt.sender: banner})
        elif kind == DCERPC:
            smb = pkt.sport in dcerpc.SMB_PORTS or pkt.dport in dcerpc.SMB_PORTS
            call = self._dcerpc.payload(pkt.key, payload, smb)
            if call is not None:        # a request: its sender is the client
                self._emit(_record("dce_rpc", pkt, call))
        elif kind == KERBEROS:
            self._kerberos(kerberos.parse_kerberos(payload, tcp=pkt.proto == 6), pkt)

    def _dns_message(self, message, pkt: _Packet) -> None:
        name = message.questions[0][0] if message.questions else ""
        if not message.response:
            key = (pkt.key, message.id, name.lower())
            if key not in self._dns:          # a retransmission keeps the first query
                record = _record("dns", pkt, message)
                record.forwarded_for = self._forwarded_for(pkt, name.lower())
                self._wait(self._dns, key, record, pkt.ts + self.config.dns_timeout)
            return
        waiting = self._dns.pop((pkt.key, message.id, name.lower()), None)
        record = waiting.record if waiting else _record("dns", pkt, None, reverse=True)
        record.answer, record.answered_at = message, pkt.ts
        self._emit(record)

    def _forwarded_for(self, pkt: _Packet, name: str) -> str | None:
        """The client a resolver is asking for, when the sensor saw that client ask it the
        same name just before. Detectors then blame the client, not the resolver; with no
        client leg in sight (a sensor at the Internet edge) the resolver stays the actor."""
        asked = self._asked.get((pkt.src, name))
        if pkt.dport == 53:
            if len(self._asked) >= self.config.max_asked:
                del self._asked[next(iter(self._asked))]
            self._asked.pop((pkt.dst, name), None)
            self._asked[(pkt.dst, name)] = (pkt.src, pkt.ts)
        if asked is not None and 0 <= pkt.ts - asked[1] <= self.config.forward_window \
                and asked[0] != pkt.src:
            return asked[0]
        return None

    def _tls_hello(self, payload: bytes, pkt: _Packet) -> None:
        hello = tlshello.parse_client_hello(payload)
        if hello is not None:
            self._wait(self._tls, pkt.key, _record("tls", pkt, hello),
                       pkt.ts + self.config.tls_timeout)
            self._hint(pkt.key, "ssl")
            return
        server = tlshello.parse_server_hello(payload)
        if server is not None:
            waiting = self._tls.pop(pkt.key, None)
            record = waiting.record if waiting else _record("tls", pkt, None, reverse=True)
            record.answer, record.answered_at = server, pkt.ts
            self._emit(record)
            self._hint(pkt.key, "ssl")

    def _kerberos(self, message, pkt: _Packet) -> None:
        """AS exchanges only (logins); TGS traffic is a DC's busiest and says nothing of
        password guessing."""
        if message is None:
            return
        if message.msg_type == kerberos.AS_REQ:
            self._wait(self._krb, pkt.key, _record("kerberos", pkt, message),
                       pkt.ts + self.config.kerberos_timeout)
            return
        if message.msg_type == kerberos.TGS_REQ:
            self._tgs[pkt.key] = None
            if len(self._tgs) > self.config.max_pending:
                del self._tgs[next(iter(self._tgs))]
            return
        if self._tgs.pop(pkt.key, 0) is None:
            return                          # the answer to a ticket request
        waiting = self._krb.pop(pkt.key, None)
        record = waiting.record if waiting else _record("kerberos", pkt, None, reverse=True)
        if kerberos.is_login(record.request, message):
            record.answer, record.answered_at = message, pkt.ts
            self._emit(record)

    def _wait_http(self, record: AppRecord, pkt: _Packet) -> None:
        if self._pending() >= self.config.max_pending:
            self._evict_oldest()
        self._http.setdefault(pkt.key, deque()).append(
            _Waiting(pkt.ts + self.config.http_timeout, record))
        self._http_waiting += 1

    def _answer_http(self, response, pkt: _Packet) -> None:
        queue = self._http.get(pkt.key)
        if queue:
            record = queue.popleft().record
            self._http_waiting -= 1
            if not queue:
                del self._http[pkt.key]
        else:
            record = _record("http", pkt, None, reverse=True)
        record.answer, record.answered_at = response, pkt.ts
        self._emit(record)

    def _wait(self, table: dict, key, record: AppRecord, deadline: float) -> None:
        if self._pending() >= self.config.max_pending:
            self._evict_oldest()
        table[key] = _Waiting(deadline, record)

    def _pending(self) -> int:
        return len(self._dns) + len(self._tls) + len(self._krb) + self._http_waiting

    def _evict_oldest(self) -> None:
        # Dicts keep insertion (= time) order; report the oldest waiting request unanswered.
        heads = [(next(iter(t.values())).record.ts, t) for t in (self._dns, self._tls, self._krb)
                 if t]
        if heads:
            _, table = min(heads, key=lambda h: h[0])
            self._emit(table.pop(next(iter(table))).record, unanswered=True)
        elif self._http:
            key = next(iter(self._http))
            queue = self._http[key]
            self._http_waiting -= 1
            self._emit(queue.popleft().record, unanswered=True)
            if not queue:
                del self._http[key]

    def _emit(self, record: AppRecord, unanswered: bool = False) -> None:
        self.stats.unanswered += unanswered
        setattr(self.stats, record.kind, getattr(self.stats, record.kind) + 1)
        self._out.append(record)

    def _hint(self, key: bytes, service: str, banners: dict | None = None) -> None:
        # The flow table knows which side is the originator; banners stay keyed by sender.
        hint = self.hints.setdefault(key, {"service": service, "banners": {}})
        hint["service"] = service
        hint["banners"].update(banners or {})


def _record(kind: str, pkt: _Packet, request, reverse: bool = False) -> AppRecord:
    """A record for a request sent by `pkt` (or, `reverse`, for an answer sent to its client;
    an answer sent to a group address, like mDNS, keeps its sender first, as Zeek does)."""
    if reverse and not _group(pkt.dst):
        orig, resp = (pkt.dst, pkt.dport), (pkt.src, pkt.sport)
    else:
        orig, resp = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
    return AppRecord(kind, pkt.ts, pkt.proto, orig[0], orig[1], resp[0], resp[1],
                     pkt.key.hex(), request)


@lru_cache(maxsize=4096)
def _group(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.is_multicast or ip == "255.255.255.255"


def classify(data: np.ndarray, p: D.Packets) -> np.ndarray:
    """Per row: DNS, HTTP_REQ, HTTP_RESP, TLS_HELLO, SSH, or 0 (nothing to parse)."""
    kinds = np.zeros(len(p), np.int8)
    idx = np.flatnonzero((p.status == D.OK) & (p.payoff >= 0) & (p.paycap > 0))
    if not idx.size or not len(data):
        return kinds
    pos = np.minimum(p.payoff[idx][:, None] + np.arange(_HEAD), len(data) - 1)
    head = data[pos].astype(np.int64)
    head[np.arange(_HEAD) >= p.paycap[idx][:, None]] = -1        # beyond the payload
    word = (head[:, 0] << 24) | (head[:, 1] << 16) | (head[:, 2] << 8) | head[:, 3]
    tcp, udp = p.proto[idx] == 6, p.proto[idx] == 17
    sport, dport = p.sport[idx], p.dport[idx]
    out = np.zeros(idx.size, np.int8)
    out[udp & (np.isin(sport, DNS_UDP_PORTS) | np.isin(dport, DNS_UDP_PORTS))] = DNS
    out[tcp & ((sport == 53) | (dport == 53))] = DNS
    out[tcp & np.isin(word, _METHOD_WORDS)] = HTTP_REQ
    out[tcp & (word == _HTTP_WORD)] = HTTP_RESP
    out[tcp & (head[:, 0] == 0x16) & (head[:, 1] == 3) & np.isin(head[:, 5], (1, 2))] = TLS_HELLO
    out[tcp & (word == _SSH_WORD)] = SSH
    # Kerberos on port 88: an application tag first (TCP: after the 4-byte record length).
    krb_port = (sport == kerberos.PORT) | (dport == kerberos.PORT)
    tags = list(kerberos.APPLICATION_TAGS)
    out[udp & krb_port & np.isin(head[:, 0], tags)] = KERBEROS
    out[tcp & krb_port & (head[:, 0] == 0) & np.isin(head[:, 4], tags)] = KERBEROS
    # SMB (NetBIOS header, then \xfeSMB or \xffSMB) on its ports; a bare DCE/RPC v5.0 PDU
    # (request, bind, alter context; little-endian data) on any TCP port.
    smb_port = np.isin(sport, dcerpc.SMB_PORTS) | np.isin(dport, dcerpc.SMB_PORTS)
    out[tcp & smb_port & (head[:, 0] == 0) & np.isin(head[:, 4], (0xFE, 0xFF))
        & (head[:, 5] == ord("S"))] = DCERPC
    out[tcp & (head[:, 0] == 5) & (head[:, 1] == 0) & np.isin(head[:, 2], (0, 11, 14))
        & ((head[:, 4] & 0xF0) == 0x10)] = DCERPC
    kinds[idx] = out
    return kinds


DATASETS = {"dns": schema.DNS, "http": schema.HTTP, "tls": schema.TLS,
            "dce_rpc": schema.DCE_RPC, "kerberos": schema.KERBEROS, "arp": schema.ARP}
