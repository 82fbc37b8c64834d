"""Hand-built NetFlow v5 / v9 / IPFIX datagrams (struct), offered to tests as the `pk` fixture."""
from __future__ import annotations

import socket
import struct
import sys

import pytest

from collectors.netflow import fields as ie

V4_FIELDS = [(ie.SOURCE_IPV4_ADDRESS, 4), (ie.DESTINATION_IPV4_ADDRESS, 4),
             (ie.SOURCE_TRANSPORT_PORT, 2), (ie.DESTINATION_TRANSPORT_PORT, 2),
             (ie.PROTOCOL_IDENTIFIER, 1), (ie.PACKET_DELTA_COUNT, 4), (ie.OCTET_DELTA_COUNT, 4),
             (ie.FLOW_START_SYS_UP_TIME, 4), (ie.FLOW_END_SYS_UP_TIME, 4)]
V6_FIELDS = [(ie.SOURCE_IPV6_ADDRESS, 16), (ie.DESTINATION_IPV6_ADDRESS, 16),
             (ie.SOURCE_TRANSPORT_PORT, 2), (ie.DESTINATION_TRANSPORT_PORT, 2),
             (ie.PROTOCOL_IDENTIFIER, 1), (ie.PACKET_DELTA_COUNT, 4), (ie.OCTET_DELTA_COUNT, 4),
             (ie.FLOW_START_SYS_UP_TIME, 4), (ie.FLOW_END_SYS_UP_TIME, 4)]
IPFIX_FIELDS = [(ie.SOURCE_IPV4_ADDRESS, 4), (ie.DESTINATION_IPV4_ADDRESS, 4),
                (ie.SOURCE_TRANSPORT_PORT, 2), (ie.DESTINATION_TRANSPORT_PORT, 2),
                (ie.PROTOCOL_IDENTIFIER, 1), (ie.PACKET_DELTA_COUNT, 8),
                (ie.OCTET_DELTA_COUNT, 8), (ie.FLOW_START_MILLISECONDS, 8),
                (ie.FLOW_END_MILLISECONDS, 8)]


def v5(records: list[dict], seq: int = 0, uptime: int = 100_000, secs: int = 1_700_000_000,
       nsecs: int = 0, sampling: int = 0, engine_id: int = 0) -> bytes:
    head = struct.pack("!HHIIIIBBH", 5, len(records), uptime, secs, nsecs, seq, 0, engine_id,
                       sampling)
    return head + b"".join(v5_record(**r) for r in records)


def v5_record(src="10.0.0.1", dst="192.0.2.9", sport=40000, dport=443, proto=6, packets=10,
              octets=1500, first=90_000, last=95_000) -> bytes:
    return struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", socket.inet_aton(src), socket.inet_aton(dst),
                       bytes(4), 1, 2, packets, octets, first, last, sport, dport, 0, 0x1B,
                       proto, 0, 0, 0, 24, 24, 0)


def template_record(tid: int, spec: list[tuple[int, int]]) -> bytes:
    return struct.pack("!HH", tid, len(spec)) + b"".join(struct.pack("!HH", *f) for f in spec)


def flowset(set_id: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    return struct.pack("!HH", set_id, 4 + len(body) + pad) + body + bytes(pad)


def v9(sets: list[bytes], seq: int = 0, domain: int = 0, uptime: int = 100_000,
       secs: int = 1_700_000_000) -> bytes:
    return struct.pack("!HHIIII", 9, len(sets), uptime, secs, seq, domain) + b"".join(sets)


def ipfix(sets: list[bytes], seq: int = 0, domain: int = 0, export: int = 1_700_000_000) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export, seq, domain) + body


def v4_data(src="10.0.0.1", dst="192.0.2.9", sport=40000, dport=443, proto=6, packets=10,
            octets=1500, first=90_000, last=95_000) -> bytes:
    return struct.pack("!4s4sHHBIIII", socket.inet_aton(src), socket.inet_aton(dst), sport, dport,
                       proto, packets, octets, first, last)


def v6_data(src="2001:db8::1", dst="fd00::2", sport=5353, dport=53, proto=17, packets=2,
            octets=200, first=90_000, last=91_000) -> bytes:
    return struct.pack("!16s16sHHBIIII", socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst), sport, dport, proto, packets,
                       octets, first, last)


def ipfix_data(src="10.0.0.1", dst="192.0.2.9", sport=40000, dport=443, proto=6, packets=10,
               octets=1500, start_ms=1_699_999_990_000, end_ms=1_699_999_995_000) -> bytes:
    return struct.pack("!4s4sHHBQQQQ", socket.inet_aton(src), socket.inet_aton(dst), sport,
                       dport, proto, packets, octets, start_ms, end_ms)


def v9_options_template(tid: int) -> bytes:
    """Scope: system (1), 4 bytes; options: sampling interval (34) 4, algorithm (35) 1."""
    scope, opts = struct.pack("!HH", 1, 4), struct.pack("!HHHH", ie.SAMPLING_INTERVAL, 4,
                                                        ie.SAMPLING_ALGORITHM, 1)
    return struct.pack("!HHH", tid, len(scope), len(opts)) + scope + opts


def v9_options_data(interval: int) -> bytes:
    return struct.pack("!IIB", 0, interval, 2)


def ipfix_options_template(tid: int) -> bytes:
    """Scope: observationDomainId (149); options: samplingPacketInterval/Space (305/306)."""
    return struct.pack("!HHH", tid, 3, 1) + struct.pack(
        "!HHHHHH", 149, 4, ie.SAMPLING_PACKET_INTERVAL, 4, ie.SAMPLING_PACKET_SPACE, 4)


def ipfix_options_data(interval: int, space: int) -> bytes:
    return struct.pack("!III", 0, interval, space)


def withdrawal(tid: int) -> bytes:
    return struct.pack("!HH", tid, 0)


@pytest.fixture
def pk():
    """This module: tests call pk.v5(...), pk.v9(...), pk.ipfix(...)."""
    return sys.modules[__name__]
