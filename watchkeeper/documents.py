"""Builders for the ECS documents Watchkeeper emits (DESIGN.md §3)."""
from __future__ import annotations

import base64
import hashlib
import logging
import socket
import struct
from dataclasses import dataclass, field
from functools import lru_cache

from communityid import CommunityID, FlowTuple

from watchkeeper import schema, timeutil
from watchkeeper.networks import InternalNetworks

_COMMUNITY = CommunityID(seed=0)
PORT_PROTOCOLS = frozenset({6, 17, 132})    # IP protocols whose flows have ports (TCP, UDP, SCTP)
_SEED = struct.pack("!H", 0)
_PROTO_PAD = struct.Struct("!BBHH")
# communityid logs every hash it computes at INFO: far too much for a sensor.
logging.getLogger("communityid").setLevel(logging.WARNING)
# IANA protocol number -> ECS network.transport: the one table (flows, NetFlow, app events,
# Suricata's names); other numbers are written as the number.
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}


def transport_name(proto: int) -> str:
    return PROTO_NAMES.get(proto, str(proto))


@dataclass
class FlowRecord:
    """One bidirectional connection with Zeek conn.log meanings (orig = the initiator)."""
    uid: str
    start: float                 # epoch seconds, packet time
    end: float
    proto: int                   # IP protocol number
    orig_ip: str
    orig_port: int               # ICMP: type
    resp_ip: str
    resp_port: int               # ICMP: code
    orig_pkts: int = 0
    resp_pkts: int = 0
    orig_bytes: int = 0          # payload bytes
    resp_bytes: int = 0
    orig_ip_bytes: int = 0       # IP-layer bytes
    resp_ip_bytes: int = 0
    conn_state: str = "OTH"
    history: str = ""
    service: str | None = None
    final: bool = True           # False for an interim update of a long-lived flow
    extra: dict = field(default_factory=dict)


def community_id(proto: int, src: str, dst: str, sport: int, dport: int) -> str:
    """Community ID v1 (seed 0). TCP/UDP/SCTP are hashed here directly: the `communityid`
    package validates and converts every address in Python and costs ~110 us per flow, the
    largest single cost of building a flow document; it stays the reference (ICMP's
    type/code pairing, other protocols) and the test oracle for this fast path."""
    if proto in PORT_PROTOCOLS:
        try:
            return _community_id_ports(proto, src, dst, sport, dport)
        except (OSError, ValueError, struct.error):
            pass                    # not an address or port: the library says why
    return _community_id_library(proto, src, dst, sport, dport)


@lru_cache(maxsize=1 << 14)
def _community_id_library(proto: int, src: str, dst: str, sport: int, dport: int) -> str:
    # ~135 us a call: cached, as pings and ICMP errors repeat the same tuples.
    if proto == 6:
        tpl = FlowTuple.make_tcp(src, dst, sport, dport)
    elif proto == 17:
        tpl = FlowTuple.make_udp(src, dst, sport, dport)
    elif proto == 132:
        tpl = FlowTuple.make_sctp(src, dst, sport, dport)
    elif proto == 1:
        tpl = FlowTuple.make_icmp(src, dst, sport, dport)
    elif proto == 58:
        tpl = FlowTuple.make_icmp6(src, dst, sport, dport)
    else:
        tpl = FlowTuple.make_ip(src, dst, proto)
    return _COMMUNITY.calc(tpl)


def _community_id_ports(proto: int, src: str, dst: str, sport: int, dport: int) -> str:
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    return community_id_packed(proto, socket.inet_pton(family, src),
                               socket.inet_pton(family, dst), sport, dport)


def community_id_packed(proto: int, a: bytes, b: bytes, sport: int, dport: int) -> str:
    """Community ID v1 of a TCP/UDP/SCTP flow from packed addresses (4 or 16 bytes)."""
    if (a, sport) > (b, dport):         # the spec's ordering: smaller endpoint first
        a, b, sport, dport = b, a, dport, sport
    digest = hashlib.sha1(_SEED + a + b + _PROTO_PAD.pack(proto, 0, sport, dport)).digest()
    return "1:" + base64.b64encode(digest).decode()


def flow_document(flow: FlowRecord, observer: str, networks: InternalNetworks,
                  site: str | None = None) -> dict:
    transport = transport_name(flow.proto)
    cid = community_id(flow.proto, flow.orig_ip, flow.resp_ip, flow.orig_port, flow.resp_port)
    doc = {
        "@timestamp": timeutil.format(flow.start),
        "event": {
            "id": schema.stable_id(observer, flow.uid),
            "kind": "event",
            "category": ["network"],
            "type": ["connection", "end" if flow.final else "info"],
            "dataset": schema.FLOW,
            "module": "watchkeeper",
            "start": timeutil.format(flow.start),
            "end": timeutil.format(flow.end),
            "duration": max(0, round((flow.end - flow.start) * 1e9)),
        },
        "observer": {"name": observer, "type": "sensor"},
        "source": {"ip": flow.orig_ip, "port": flow.orig_port,
                   "bytes": flow.orig_ip_bytes, "packets": flow.orig_pkts},
        "destination": {"ip": flow.resp_ip, "port": flow.resp_port,
                        "bytes": flow.resp_ip_bytes, "packets": flow.resp_pkts},
        "network": {
            "transport": transport,
            "community_id": cid,
            "bytes": flow.orig_ip_bytes + flow.resp_ip_bytes,
            "packets": flow.orig_pkts + flow.resp_pkts,
            "direction": networks.direction(flow.orig_ip, flow.resp_ip),
        },
        "related": {"ip": sorted({flow.orig_ip, flow.resp_ip})},
        "watchkeeper": {"flow": {
            "uid": flow.uid, "conn_state": flow.conn_state, "history": flow.history,
            "orig_bytes": flow.orig_bytes, "resp_bytes": flow.resp_bytes,
            "orig_ip_bytes": flow.orig_ip_bytes, "resp_ip_bytes": flow.resp_ip_bytes,
            "final": flow.final, **flow.extra,
        }},
    }
    if flow.service:
        doc["network"]["protocol"] = flow.service
    if site:
        doc["labels"] = {"site": site}
    return doc


@dataclass
class AlertSpec:
    """What a detector knows when it raises an alert; `alert_document` adds the bookkeeping."""
    detector: str
    detector_version: str
    category: str
    rule_id: str
    rule_name: str
    severity: int                     # 1..4
    message: str
    entity: str                       # what the alert is about (dedup key), usually source.ip
    first_seen: float                 # event time
    last_seen: float
    source_ip: str | None = None
    destination_ip: str | None = None
    related_ips: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    subscores: dict[str, float] = field(default_factory=dict)
    technique_id: str | None = None   # MITRE ATT&CK
    technique_name: str | None = None
    count: int = 1
    # The detector's own composite of its subscores in [0, 1] (e.g. beaconing's weighted
    # RITA-style sum); None: the plain mean of the subscores stands for it.
    score: float | None = None
    # What people read, in zh-CN (the default language): `message` and `rule_name` stay
    # English, the ECS fields other tools and the English console read (docs/decisions.md).
    message_zh: str | None = None
    rule_name_zh: str | None = None


def risk_score(severity: int, subscores: dict[str, float], score: float | None = None) -> float:
    """Severity sets the band; the detector's composite score (else the mean subscore)
    places the alert inside it."""
    if score is not None:
        confidence = min(1.0, max(0.0, score))
    else:
        confidence = sum(subscores.values()) / len(subscores) if subscores else 0.5
    return round(min(100.0, (severity - 1) * 25 + 25 * confidence), 1)


def alert_document(spec: AlertSpec, created: float, window_seconds: float = 3600) -> dict:
    # Same detector + entity + window -> same id: a replay or a repeat updates one alert.
    window = int(spec.first_seen // window_seconds)
    related = sorted({ip for ip in (spec.source_ip, spec.destination_ip, *spec.related_ips) if ip})
    doc = {
        "@timestamp": timeutil.format(spec.first_seen),
        "event": {
            "id": schema.stable_id("alert", spec.detector, spec.rule_id, spec.entity, window),
            "kind": "alert", "category": ["intrusion_detection"], "type": ["info"],
            "dataset": schema.ALERT, "module": "watchkeeper",
            "severity": spec.severity, "risk_score": risk_score(spec.severity, spec.subscores, spec.score),
            "start": timeutil.format(spec.first_seen), "end": timeutil.format(spec.last_seen),
            "created": timeutil.format(created),
        },
        "rule": {"id": spec.rule_id, "name": spec.rule_name, "version": spec.detector_version},
        "message": spec.message,
        "related": {"ip": related},
        "watchkeeper": {"alert": {
            "category": spec.category, "detector": spec.detector, "status": "new",
            "count": spec.count, "first_seen": timeutil.format(spec.first_seen),
            "last_seen": timeutil.format(spec.last_seen), "evidence": spec.evidence[:100],
            "subscores": {k: round(v, 4) for k, v in spec.subscores.items()},
            "entity": spec.entity,
        }},
    }
    info = doc["watchkeeper"]["alert"]
    if spec.message_zh:
        info["message_zh"] = spec.message_zh
    if spec.rule_name_zh:
        info["rule_name_zh"] = spec.rule_name_zh
    if spec.source_ip:
        doc["source"] = {"ip": spec.source_ip}
    if spec.destination_ip:
        doc["destination"] = {"ip": spec.destination_ip}
    if spec.technique_id:
        doc["threat"] = {"framework": "MITRE ATT&CK",
                         "technique": {"id": [spec.technique_id], "name": [spec.technique_name]}}
    return doc
