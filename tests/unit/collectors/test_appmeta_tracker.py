"""Application records from captures: pairing, timeouts, service hints, bad payloads."""
from __future__ import annotations

import ssl

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Raw

from collectors.capture import Capture, iter_flow_documents
from collectors.capture.appmeta.tracker import AppRecord
from collectors.capture.documents.app import app_document
from collectors.capture.flows.flow import FlowConfig
from collectors.capture.sources.pcap import open_records
from watchkeeper import schema
from watchkeeper.documents import FlowRecord
from watchkeeper.networks import InternalNetworks

from .packets import quiet
from .packets import write_pcap as pcap

C, S = "10.0.0.5", "198.51.100.7"


def records(tmp_path, packets, extra_batches=()):
    source = list(open_records(str(pcap(tmp_path, packets)))) + list(extra_batches)
    capture = Capture(iter(source), FlowConfig(), app=True)
    out = list(capture)
    apps = [r for r in out if isinstance(r, AppRecord)]
    flows = [r for r in out if isinstance(r, FlowRecord)]
    return apps, flows, capture


def query(t, sport, name, qid, qtype="A"):
    return t, IP(src=C, dst=S) / UDP(sport=sport, dport=53) / DNS(id=qid, rd=1,
                                                                    qd=DNSQR(qname=name, qtype=qtype))


def answer(t, sport, name, qid, rcode=0, an=None):
    return t, IP(src=S, dst=C) / UDP(sport=53, dport=sport) / DNS(
        id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=an or [])


def doc(rec):
    return app_document(rec, "sensor", InternalNetworks(["10.0.0.0/8"]))


def test_query_and_response_become_one_dns_event(tmp_path):
    apps, _, _ = records(tmp_path, [
        query(1.0, 4000, "www.Example.org", 7),
        answer(1.02, 4000, "www.Example.org", 7,
               an=DNSRR(rrname="www.Example.org", type="A", rdata="192.0.2.1", ttl=60))])
    (rec,) = apps
    d = doc(rec)
    assert d["event"]["dataset"] == schema.DNS and d["@timestamp"].startswith("1970-01-01T00:00:01")
    assert d["source"] == {"ip": C, "port": 4000} and d["destination"]["port"] == 53
    assert d["dns"]["question"] == {"name": "www.example.org", "type": "A", "class": "C_INTERNET"}
    assert d["dns"]["response_code"] == "NOERROR" and d["dns"]["resolved_ip"] == ["192.0.2.1"]
    assert d["network"]["direction"] == "outbound" and d["event"]["duration"] == 20_000_000
    assert schema.validate(d)


def test_nxdomain_and_unanswered_queries(tmp_path):
    apps, _, capture = records(tmp_path, [
        query(1.0, 4001, "kq3v9zq1x.com", 1), answer(1.1, 4001, "kq3v9zq1x.com", 1, rcode=3),
        query(2.0, 4002, "lost.example", 2), query(3.0, 4002, "lost.example", 2)])  # resent
    by_name = {doc(r)["dns"]["question"]["name"]: doc(r)["dns"] for r in apps}
    assert by_name["kq3v9zq1x.com"]["response_code"] == "NXDOMAIN"
    assert by_name["lost.example"]["type"] == "query" and "response_code" not in by_name["lost.example"]
    assert len(apps) == 2 and capture.app.stats.unanswered == 1


def test_unanswered_query_is_reported_on_the_live_clock(tmp_path):
    source = list(open_records(str(pcap(tmp_path, [query(1.0, 4003, "a.example", 3)]))))

    def batches():
        yield from source
        yield quiet(20.0)
        raise AssertionError("read past the quiet batch")
    capture = Capture(batches(), FlowConfig(), app=True)
    seen = []
    for rec in capture:
        seen.append(rec)
        if isinstance(rec, AppRecord):
            break
    assert seen[-1].kind == "dns" and seen[-1].answer is None


def test_http_request_pairs_with_response_and_marks_the_service_on_any_port(tmp_path):
    req = (b"GET /a/b?x=1 HTTP/1.1\r\nHost: intranet.example:8081\r\n"
           b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")
    apps, flows, _ = records(tmp_path, [
        (1.0, IP(src=C, dst=S) / TCP(sport=5000, dport=8081, flags="S", seq=1)),
        (1.1, IP(src=S, dst=C) / TCP(sport=8081, dport=5000, flags="SA", seq=9, ack=2)),
        (1.2, IP(src=C, dst=S) / TCP(sport=5000, dport=8081, flags="PA", seq=2, ack=10) / req),
        (1.3, IP(src=S, dst=C) / TCP(sport=8081, dport=5000, flags="PA", seq=10, ack=2 + len(req))
         / b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")])
    (d,) = [doc(r) for r in apps]
    assert d["http"]["request"]["method"] == "GET" and d["http"]["response"]["status_code"] == 404
    assert d["url"]["domain"] == "intranet.example" and d["url"]["path"] == "/a/b"
    assert d["url"]["query"] == "x=1" and d["user_agent"]["original"] == "curl/8.5.0"
    assert d["event"]["outcome"] == "failure"
    assert [f.service for f in flows if f.final] == ["http"]      # port 8081: no port guess


def test_ssh_banner_on_a_non_standard_port_sets_service_and_banners(tmp_path):
    _, flows, capture = records(tmp_path, [
        (1.0, IP(src=C, dst=S) / TCP(sport=50000, dport=902, flags="S", seq=1)),
        (1.1, IP(src=S, dst=C) / TCP(sport=902, dport=50000, flags="SA", seq=9, ack=2)),
        (1.2, IP(src=S, dst=C) / TCP(sport=902, dport=50000, flags="PA", seq=10, ack=2)
         / b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
        (1.3, IP(src=C, dst=S) / TCP(sport=50000, dport=902, flags="PA", seq=2, ack=42)
         / b"SSH-2.0-libssh_0.10.6\r\n")])
    (flow,) = [f for f in flows if f.final]
    assert flow.service == "ssh"
    assert flow.extra == {"ssh_server": "SSH-2.0-OpenSSH_9.2p1 Debian-2",
                          "ssh_client": "SSH-2.0-libssh_0.10.6"}
    assert capture.app.stats.ssh == 2


def test_tls_client_hello_gives_sni_and_offered_versions(tmp_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="portal.gov.example")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    apps, flows, _ = records(tmp_path, [
        (1.0, IP(src=C, dst=S) / TCP(sport=5001, dport=443, flags="PA", seq=1, ack=1) / Raw(hello))])
    (d,) = [doc(r) for r in apps]
    assert d["event"]["dataset"] == schema.TLS and d["network"]["protocol"] == "ssl"
    assert d["tls"]["client"]["server_name"] == "portal.gov.example"
    assert "1.3" in d["tls"]["client"]["supported_versions"]
    assert d["tls"]["client"]["alpn"] == ["h2", "http/1.1"]


def test_malformed_payloads_are_counted_not_raised(tmp_path):
    broken = [(1.0 + i / 10, IP(src=C, dst=S) / UDP(sport=6000 + i, dport=53) / Raw(b"\x00" * i))
              for i in range(1, 12)]                       # shorter than a DNS header
    broken.append((3.0, IP(src=C, dst=S) / TCP(sport=7000, dport=80, flags="PA") /
                   b"GET\x00\x01 nonsense\r\n"))
    apps, flows, capture = records(tmp_path, broken)
    assert apps == [] and capture.app.stats.malformed == 11
    assert len([f for f in flows if f.final]) == 12          # the flows themselves are kept


def test_capture_documents_include_app_events(tmp_path):
    path = pcap(tmp_path, [query(1.0, 4000, "a.example", 9),
                           answer(1.01, 4000, "a.example", 9)])
    docs = list(iter_flow_documents([str(path)], "s", InternalNetworks(), app=True))
    assert sorted(d["event"]["dataset"] for d in docs) == [schema.DNS, schema.FLOW]
    again = list(iter_flow_documents([str(path)], "s", InternalNetworks(), app=True))
    assert [d["event"]["id"] for d in docs] == [d["event"]["id"] for d in again]


def test_resolver_queries_are_marked_as_forwarded_for_the_client(tmp_path):
    resolver, upstream = "10.0.0.53", "198.51.100.53"
    name = "qx7z0k2vd9.example.net"
    client_q = (1.0, IP(src=C, dst=resolver) / UDP(sport=4100, dport=53)
                / DNS(id=1, rd=1, qd=DNSQR(qname=name)))
    forwarded = (1.01, IP(src=resolver, dst=upstream) / UDP(sport=33000, dport=53)
                 / DNS(id=2, qd=DNSQR(qname=name)))
    own = (9.0, IP(src=resolver, dst=upstream) / UDP(sport=33001, dport=53)      # too late
           / DNS(id=3, qd=DNSQR(qname=name)))
    apps, _, _ = records(tmp_path, [client_q, forwarded, own])
    docs = {doc(r)["dns"]["id"]: doc(r) for r in apps}
    assert "watchkeeper" not in docs["1"]
    assert docs["2"]["watchkeeper"]["dns"]["forwarded_for"] == C
    assert C in docs["2"]["related"]["ip"]
    assert "watchkeeper" not in docs["3"]
