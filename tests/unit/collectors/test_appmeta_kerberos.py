"""Kerberos logins from captures: AS-REQ paired with its KRB-ERROR or AS-REP, over UDP and TCP.

Messages are DER-encoded here from RFC 4120's ASN.1 (section 5.4.1 KDC-REQ, 5.4.2 KDC-REP,
5.9.1 KRB-ERROR) by a few lines of encoder that share nothing with the parser."""
from __future__ import annotations

import struct

import pytest
from scapy.all import IP, TCP, UDP, Raw

from collectors.capture import Capture
from collectors.capture.appmeta import kerberos
from collectors.capture.appmeta.tracker import AppRecord
from collectors.capture.documents.app import app_document
from collectors.capture.flows.flow import FlowConfig
from collectors.capture.sources.pcap import open_records
from watchkeeper import schema
from watchkeeper.networks import InternalNetworks

from .packets import write_pcap

C, KDC = "10.0.0.5", "10.0.0.2"
REALM = "GOV.EXAMPLE"
NETS = InternalNetworks(["10.0.0.0/8"])


def der(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + \
        n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + value


def ctx(n: int, value: bytes) -> bytes:
    return der(0xA0 | n, value)


def integer(v: int) -> bytes:
    return der(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def gstring(text: str) -> bytes:
    return der(0x1B, text.encode())


def principal(*names: str, name_type: int = 1) -> bytes:
    return der(0x30, ctx(0, integer(name_type)) + ctx(1, der(0x30, b"".join(map(gstring,
                                                                                 names)))))


def as_req(user: str, preauth: bool = True) -> bytes:
    body = der(0x30, ctx(0, der(0x03, b"\x00\x40\x81\x00\x10")) + ctx(1, principal(user))
               + ctx(2, gstring(REALM)) + ctx(3, principal("krbtgt", REALM, name_type=2))
               + ctx(5, der(0x18, b"20370913024805Z")) + ctx(7, integer(12345))
               + ctx(8, der(0x30, integer(18) + integer(23))))
    padata = ctx(3, der(0x30, der(0x30, ctx(1, integer(2)) + ctx(2, der(0x04, b"\x00" * 60)))))
    return der(0x6A, der(0x30, ctx(1, integer(5)) + ctx(2, integer(10))
                          + (padata if preauth else b"") + ctx(4, body)))


def krb_error(code: int, user: str | None = None) -> bytes:
    fields = (ctx(0, integer(5)) + ctx(1, integer(30)) + ctx(4, der(0x18, b"20261204101500Z"))
              + ctx(5, integer(1)) + ctx(6, integer(code))
              + (ctx(8, principal(user)) if user else b"") + ctx(9, gstring(REALM))
              + ctx(10, principal("krbtgt", REALM, name_type=2)))
    return der(0x7E, der(0x30, fields))


def as_rep(user: str) -> bytes:
    return der(0x6B, der(0x30, ctx(0, integer(5)) + ctx(1, integer(11)) + ctx(3, gstring(REALM))
                          + ctx(4, principal(user)) + ctx(5, der(0x61, b"\x00" * 40))))


def udp(t, sport, payload, reply=False):
    src, dst, sp, dp = (KDC, C, 88, sport) if reply else (C, KDC, sport, 88)
    return t, IP(src=src, dst=dst) / UDP(sport=sp, dport=dp) / Raw(payload)


def logins(tmp_path, packets):
    capture = Capture(iter(list(open_records(str(write_pcap(tmp_path, packets))))),
                      FlowConfig(), app=True)
    records = [r for r in capture if isinstance(r, AppRecord)]
    return [app_document(r, "sensor", NETS) for r in records], capture


def test_parser_reads_the_fields_a_login_needs():
    req = kerberos.parse_kerberos(as_req("Alice"), tcp=False)
    assert (req.msg_type, req.client, req.realm, req.service) == (10, "Alice", REALM,
                                                                  f"krbtgt/{REALM}")
    err = kerberos.parse_kerberos(struct.pack(">I", 99) + krb_error(24, "alice"), tcp=True)
    assert (err.msg_type, err.error_code, err.client) == (30, 24, "alice")
    assert kerberos.parse_kerberos(b"\x16\x03\x01", tcp=False) is None     # not Kerberos
    cut = kerberos.parse_kerberos(as_req("bob")[:40], tcp=False)          # cut in the padata
    assert cut.msg_type == 10 and cut.client is None


def test_wrong_password_unknown_account_and_success(tmp_path):
    docs, capture = logins(tmp_path, [
        udp(1.0, 5001, as_req("alice", preauth=False)), udp(1.01, 5001, krb_error(25), True),
        udp(1.1, 5002, as_req("alice")), udp(1.11, 5002, krb_error(24), True),
        udp(1.2, 5003, as_req("ghost")), udp(1.21, 5003, krb_error(6), True),
        udp(1.3, 5004, as_req("Bob")), udp(1.31, 5004, as_rep("Bob"), True)])
    got = [(d["user"]["name"], d["event"]["outcome"],
            d["watchkeeper"]["kerberos"].get("error_msg")) for d in docs]
    assert got == [("alice", "unknown", "KDC_ERR_PREAUTH_REQUIRED"),
                   ("alice", "failure", "KDC_ERR_PREAUTH_FAILED"),
                   ("ghost", "failure", "KDC_ERR_C_PRINCIPAL_UNKNOWN"),
                   ("bob", "success", None)]
    d = docs[1]
    assert d["event"]["dataset"] == schema.KERBEROS and schema.validate(d)
    assert d["event"]["category"] == ["authentication"] and d["source"]["ip"] == C
    assert d["network"]["protocol"] == "krb" and d["destination"]["port"] == 88
    assert d["watchkeeper"]["kerberos"]["client"] == f"alice/{REALM}"
    assert capture.app.stats.kerberos == 4 and capture.app.stats.malformed == 0


def test_tcp_login_and_ticket_requests_are_not_logins(tmp_path):
    tgs = bytearray(as_req("alice"))
    tgs[0] = 0x6C                                              # TGS-REQ
    packets = [
        (2.0, IP(src=C, dst=KDC) / TCP(sport=6000, dport=88, flags="PA", seq=1, ack=1)
         / Raw(struct.pack(">I", len(as_req("carol"))) + as_req("carol"))),
        (2.01, IP(src=KDC, dst=C) / TCP(sport=88, dport=6000, flags="PA", seq=1, ack=100)
         / Raw(struct.pack(">I", len(as_rep("carol"))) + as_rep("carol"))),
        udp(3.0, 5010, bytes(tgs)), udp(3.01, 5010, krb_error(7), True)]
    docs, _ = logins(tmp_path, packets)
    assert [(d["user"]["name"], d["event"]["outcome"], d["network"]["transport"])
            for d in docs] == [("carol", "success", "tcp")]


def test_unanswered_login_is_reported_unknown(tmp_path):
    docs, _ = logins(tmp_path, [udp(1.0, 5001, as_req("dave"))])
    assert [(d["user"]["name"], d["event"]["outcome"]) for d in docs] == [("dave", "unknown")]


@pytest.mark.parametrize("payload", [
    b"\x7e\x84\xff\xff\xff\xff\x30",                      # length beyond the datagram
    der(0x7E, der(0x30, ctx(0, integer(5)))),             # KRB-ERROR without its code
    der(0x6A, der(0x02, b"\x05")),                        # not a SEQUENCE
])
def test_malformed_kerberos_is_counted(tmp_path, payload):
    docs, capture = logins(tmp_path, [udp(1.0, 5001, payload, reply=True)])
    assert docs == [] and capture.app.stats.malformed == 1
