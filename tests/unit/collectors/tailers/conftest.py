"""Realistic Zeek and Suricata 7 samples with real timestamps (the vendored btest baselines mask ts)."""
from __future__ import annotations

import json
import sys

import pytest

from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher

from collectors.tailers.common import Context

TS = 1710152102.123456          # 2024-03-11T10:15:02.123456Z

CONN_HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2024-03-11-10-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tcommunity_id
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tstring
"""


def conn_row(i: int, ts: float = TS) -> str:
    """A TCP session from 10.1.20.<i> to a public web server, as Zeek 6 writes it."""
    return (f"{ts + i:.6f}\tC{i:05d}aBcDeFgHiJ\t10.1.20.{i % 250 + 1}\t{40000 + i}\t"
            f"93.184.216.34\t443\ttcp\tssl\t1.250000\t517\t4312\tSF\tT\tF\t0\tShADadFf\t"
            f"9\t997\t8\t4744\t-\t-")


def zeek_tsv(header: str, rows: list[str]) -> str:
    return header + "".join(r + "\n" for r in rows)


def eve(event_type: str, **extra) -> dict:
    base = {"timestamp": "2024-03-11T10:15:02.123456+0000", "flow_id": 1181423911262447,
            "in_iface": "eth1", "event_type": event_type, "src_ip": "10.1.20.7",
            "src_port": 51734, "dest_ip": "203.0.113.80", "dest_port": 80, "proto": "TCP",
            "pkt_src": "wire/pcap"}
    base.update(extra)
    return base


FLOW_PART = {"pkts_toserver": 6, "pkts_toclient": 5, "bytes_toserver": 622,
             "bytes_toclient": 1948, "start": "2024-03-11T10:15:01.987654+0000"}

EVE_ALERT = eve("alert", tx_id=0, app_proto="http", direction="to_server", alert={
    "action": "allowed", "gid": 1, "signature_id": 2024897, "rev": 4,
    "signature": "ET MALWARE Possible Agent Tesla HTTP exfiltration",
    "category": "A Network Trojan was detected", "severity": 1,
    "metadata": {"attack_target": ["Client_Endpoint"], "created_at": ["2019_07_24"],
                 "mitre_tactic_id": ["TA0010"], "mitre_tactic_name": ["Exfiltration"],
                 "mitre_technique_id": ["T1041"],
                 "mitre_technique_name": ["Exfiltration_Over_C2_Channel"]}},
    flow=FLOW_PART)

EVE_FLOW = eve("flow", app_proto="tls", src_ip="172.26.0.39", src_port=35958,
               dest_ip="172.217.14.206", dest_port=443, timestamp="2024-03-11T10:16:02.000000+0000",
               flow={**FLOW_PART, "end": "2024-03-11T10:15:04.500000+0000", "age": 3,
                     "state": "closed", "reason": "timeout", "alerted": False},
               tcp={"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "syn": True,
                    "fin": True, "psh": True, "ack": True, "state": "closed"})

EVE_DNS = eve("dns", src_port=53012, dest_ip="10.1.0.53", dest_port=53, proto="UDP",
              dns={"version": 2, "type": "answer", "id": 41883, "flags": "8180", "qr": True,
                   "rd": True, "ra": True, "opcode": 0, "rrname": "portal.gov.example",
                   "rrtype": "A", "rcode": "NOERROR",
                   "answers": [{"rrname": "portal.gov.example", "rrtype": "A", "ttl": 300,
                                "rdata": "198.51.100.20"}],
                   "grouped": {"A": ["198.51.100.20"]}})

EVE_HTTP = eve("http", tx_id=0, http={
    "hostname": "update.example.net", "url": "/dl/agent.bin?id=7", "http_user_agent": "curl/8.5.0",
    "http_content_type": "application/octet-stream", "http_method": "GET",
    "protocol": "HTTP/1.1", "status": 200, "length": 18342})

EVE_TLS = eve("tls", dest_port=443, tls={
    "subject": "CN=portal.gov.example", "issuerdn": "C=US, O=Let's Encrypt, CN=R3",
    "serial": "04:A1:7F", "fingerprint": "3b:52:a0:8e:14:55:e9:0b:a3:7d:01:ee:2f:c3:44:6a:9e:00:12:7c",
    "sni": "portal.gov.example", "version": "TLS 1.3",
    "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865", "string": "771,4865-4866,0-23,29,0"}})

EVE_STATS = {"timestamp": "2024-03-11T10:15:08.000000+0000", "event_type": "stats",
             "stats": {"uptime": 8}}


def line(obj: dict) -> str:
    return json.dumps(obj)


@pytest.fixture
def ctx() -> Context:
    return Context("sensor-1", InternalNetworks(), site="hq")


@pytest.fixture
def bus() -> EmbeddedBus:
    return EmbeddedBus(partitions=2)


@pytest.fixture
def publisher(bus) -> EventPublisher:
    return EventPublisher(bus.producer(), stage="tailers")


@pytest.fixture(scope="session")
def samples():
    """This module: tests run with --import-mode=importlib, so they cannot import conftest."""
    return sys.modules[__name__]
