"""Field-level helpers for the EVE mapping: protocol sections and the odd value formats."""
from __future__ import annotations

import ipaddress

from watchkeeper import schema
from watchkeeper.documents import PROTO_NAMES

from collectors.tailers.common import MappingError, compact

_PROTOS = {name: number for number, name in PROTO_NAMES.items()} | {"gre": 47, "esp": 50,
                                                                  "ah": 51}
_FIN, _SYN, _RST = 0x01, 0x02, 0x04
_TLS_VERSIONS = {"SSLv2": ("ssl", "2.0"), "SSLv3": ("ssl", "3.0"), "TLS 1.0": ("tls", "1.0"),
                 "TLS 1.1": ("tls", "1.1"), "TLS 1.2": ("tls", "1.2"),
                 "TLS 1.3": ("tls", "1.3")}


def extras(rec: dict) -> dict:
    """EVE fields with no ECS home; flow_id as a string (it is a 64-bit hash)."""
    return compact({"flow_id": str(rec["flow_id"]) if rec.get("flow_id") is not None else None,
                    "in_iface": rec.get("in_iface"), "tx_id": rec.get("tx_id"),
                    "direction": rec.get("direction"), "pkt_src": rec.get("pkt_src")})


def flow_event_id(rec: dict) -> str | None:
    """A flow's id from what every EVE record of that flow carries (flow_id + flow.start), so an
    alert can name its flow event as evidence before the flow record is even written."""
    flow = rec.get("flow") if isinstance(rec.get("flow"), dict) else {}
    if rec.get("flow_id") is None or not flow.get("start"):
        return None
    return schema.stable_id("suricata", "flow", rec["flow_id"], flow["start"])


def proto_number(proto: object, src: str) -> int:
    if isinstance(proto, int) and not isinstance(proto, bool) and 0 <= proto <= 255:
        return proto
    name = str(proto).lower()
    if name.isdigit() and int(name) <= 255:
        return int(name)            # Suricata prints unnamed protocols as numbers
    if name == "icmp" and ipaddress.ip_address(src).version == 6:
        return 58
    if name not in _PROTOS:
        raise MappingError(f"unknown proto {proto!r}")
    return _PROTOS[name]


def port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise MappingError(f"port {value!r} out of range")
    return value


def count(section: dict, name: str) -> int:
    value = section.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(f"flow.{name} {value!r} is not a count")
    return value


def conn_state(rec: dict) -> str:
    """An approximate Zeek conn_state from EVE's TCP flags, so the scan detector can tell failed
    attempts (S0, REJ) from sessions (S1, SF). Without flags: OTH, as Zeek says."""
    tcp = rec.get("tcp")
    if str(rec.get("proto")).upper() != "TCP" or not isinstance(tcp, dict):
        return "OTH"
    to_server, to_client = _flags(tcp.get("tcp_flags_ts")), _flags(tcp.get("tcp_flags_tc"))
    answered = (rec.get("flow") or {}).get("pkts_toclient", 0)
    if not to_server & _SYN:
        return "OTH"                # picked up mid-stream
    if not answered:
        return "S0"
    if to_client & _RST and not to_client & _SYN:
        return "REJ"
    if to_client & _SYN and to_server & _FIN and to_client & _FIN:
        return "SF"
    return "S1" if to_client & _SYN else "OTH"


def _flags(value: object) -> int:
    try:
        return int(str(value), 16) if value is not None else 0
    except ValueError:
        return 0


def technique(metadata: object) -> tuple[str | None, str | None]:
    """ET-style rule metadata: mitre_technique_id / mitre_technique_name lists."""
    if not isinstance(metadata, dict):
        return None, None
    ids = metadata.get("mitre_technique_id") or []
    names = metadata.get("mitre_technique_name") or []
    tid = str(ids[0]) if isinstance(ids, list) and ids else None
    name = str(names[0]).replace("_", " ") if isinstance(names, list) and names else None
    return tid, (name or tid) if tid else None


def actor(rec: dict, default: str) -> str:
    """Rules with a `target` keyword make EVE say which side is the source of the attack."""
    source = (rec.get("alert") or {}).get("source")
    if isinstance(source, dict) and isinstance(source.get("ip"), str):
        return source["ip"]
    return default


def dns_fields(dns: dict) -> dict:
    # Suricata 7 writes rrname/rrtype at the top (v2) ; Suricata 8 (v3) a "queries" list.
    queries = dns.get("queries")
    question = queries[0] if isinstance(queries, list) and queries else dns
    answers = [a for a in dns.get("answers") or [] if isinstance(a, dict)]
    if not answers and isinstance(dns.get("grouped"), dict):
        answers = [{"rrtype": t, "rdata": d} for t, ds in dns["grouped"].items()
                   for d in (ds if isinstance(ds, list) else [])]
    flags = [f.upper() for f in ("aa", "tc", "rd", "ra") if dns.get(f) is True]
    return compact({
        "id": str(dns["id"]) if dns.get("id") is not None else None,
        "type": dns.get("type"), "op_code": dns.get("opcode"),
        "question": {"name": question.get("rrname"), "type": question.get("rrtype")},
        "response_code": dns.get("rcode"), "header_flags": flags,
        "answers": [compact({"name": a.get("rrname"), "type": a.get("rrtype"),
                             "ttl": a.get("ttl"), "data": _text(a.get("rdata"))})
                    for a in answers],
        "resolved_ip": [a["rdata"] for a in answers
                        if a.get("rrtype") in ("A", "AAAA") and isinstance(a.get("rdata"), str)],
    })


def _text(value: object) -> str | None:
    return value if isinstance(value, str) or value is None else str(value)


def http_fields(http: dict) -> dict:
    url = http.get("url")
    path, _, query = str(url).partition("?") if url else ("", "", "")
    host, proto = http.get("hostname"), http.get("protocol")
    return compact({
        "http": {"version": str(proto).removeprefix("HTTP/") if proto else None,
                 "request": {"method": http.get("http_method"),
                             "referrer": http.get("http_refer")},
                 "response": {"status_code": _status(http.get("status")),
                              "mime_type": http.get("http_content_type"),
                              "body": {"bytes": http.get("length")}}},
        "url": {"original": url, "domain": host, "path": path, "query": query,
                "full": f"http://{host}{url}" if host and path.startswith("/") else None},
        "user_agent": {"original": http.get("http_user_agent")},
    })


def _status(value: object) -> int | None:
    """EVE writes the status as a number (7) or a string (older releases)."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def tls_fields(tls: dict) -> dict:
    protocol, version = _TLS_VERSIONS.get(tls.get("version") or "", (None, tls.get("version")))
    ja3, ja3s = tls.get("ja3") or {}, tls.get("ja3s") or {}
    return compact({
        "version": version, "version_protocol": protocol,
        "client": {"server_name": tls.get("sni"),
                   "ja3": ja3.get("hash") if isinstance(ja3, dict) else None},
        "server": {"subject": tls.get("subject"), "issuer": tls.get("issuerdn"),
                   "hash": {"sha1": _sha1(tls.get("fingerprint"))},
                   "ja3s": ja3s.get("hash") if isinstance(ja3s, dict) else None},
    })


def _sha1(fingerprint: object) -> str | None:
    """EVE: 'aa:bb:…'; ECS wants uppercase hex without separators."""
    return fingerprint.replace(":", "").upper() if isinstance(fingerprint, str) else None
