"""One function per Zeek log: a typed record (TSV row or JSON object) -> an ECS document.

Field meanings follow Zeek's log reference; where ECS has no field (conn_state, ssh
algorithms, ftp replies) the value goes under `watchkeeper.*` (DESIGN.md §3).
"""
from __future__ import annotations

import ipaddress
import math

from watchkeeper import schema, timeutil
from watchkeeper.documents import FlowRecord, flow_document

from collectors.tailers.common import (Context, MappingError, address, compact, endpoints, epoch,
                                       pick, record_id, stamp)

_PROTOS = {"tcp": 6, "udp": 17}
_TLS_VERSIONS = {"SSLv2": ("ssl", "2.0"), "SSLv3": ("ssl", "3.0"), "TLSv10": ("tls", "1.0"),
                 "TLSv11": ("tls", "1.1"), "TLSv12": ("tls", "1.2"), "TLSv13": ("tls", "1.3"),
                 "DTLSv10": ("dtls", "1.0"), "DTLSv12": ("dtls", "1.2"),
                 "DTLSv13": ("dtls", "1.3")}


# Zeek's error_msg names of a wrong password, an unknown account and a revoked one.
_KRB_FAILED_LOGIN = frozenset({"KDC_ERR_PREAUTH_FAILED", "KDC_ERR_C_PRINCIPAL_UNKNOWN",
                               "KDC_ERR_CLIENT_REVOKED"})


def _base(rec: dict, log: str, dataset: str, ctx: Context, category: list[str],
          type_: list[str], kind: str = "event") -> dict:
    ts = epoch(rec.get("ts"))
    doc = {
        "@timestamp": timeutil.format(ts),
        "event": {"id": record_id("zeek", log, rec), "kind": kind, "category": category,
                  "type": type_, "dataset": dataset, "module": "zeek"},
        "watchkeeper": {"zeek": compact({"log": log, "uid": rec.get("uid")})},
    }
    endpoints(doc, ctx, rec.get("id.orig_h"), rec.get("id.orig_p"),
              rec.get("id.resp_h"), rec.get("id.resp_p"))
    if isinstance(rec.get("proto"), str):
        doc.setdefault("network", {})["transport"] = rec["proto"]
    if rec.get("community_id"):
        doc.setdefault("network", {})["community_id"] = str(rec["community_id"])
    return stamp(doc, ctx)


def _count(rec: dict, name: str) -> int:
    value = rec.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(f"{name} {value!r} is not a count")
    return value


def _port(rec: dict, name: str) -> int:
    value = rec.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise MappingError(f"{name} {value!r} is not a port")
    return value


def _proto_number(rec: dict, orig: str) -> int:
    if isinstance(rec.get("ip_proto"), int) and 0 <= rec["ip_proto"] <= 255:
        return rec["ip_proto"]      # Zeek >= 6.1 logs the IP protocol itself
    proto = rec.get("proto")
    if proto == "icmp":
        return 58 if ipaddress.ip_address(orig).version == 6 else 1
    return _PROTOS.get(proto, 255)  # unknown_transport from an older Zeek: "reserved"


def conn_doc(rec: dict, log: str, ctx: Context) -> dict:
    start = epoch(rec.get("ts"))
    orig, resp = address(rec.get("id.orig_h")), address(rec.get("id.resp_h"))
    duration = rec.get("duration") or 0.0
    if not isinstance(duration, (int, float)) or duration < 0:
        raise MappingError(f"duration {duration!r} is not an interval")
    service = rec.get("service")
    flow = FlowRecord(
        uid=str(rec.get("uid") or ""), start=start, end=start + float(duration),
        proto=_proto_number(rec, orig), orig_ip=orig, orig_port=_port(rec, "id.orig_p"),
        resp_ip=resp, resp_port=_port(rec, "id.resp_p"),
        orig_pkts=_count(rec, "orig_pkts"), resp_pkts=_count(rec, "resp_pkts"),
        orig_bytes=_count(rec, "orig_bytes"), resp_bytes=_count(rec, "resp_bytes"),
        orig_ip_bytes=_count(rec, "orig_ip_bytes"), resp_ip_bytes=_count(rec, "resp_ip_bytes"),
        conn_state=str(rec.get("conn_state") or "OTH"), history=str(rec.get("history") or ""),
        service=str(service).split(",")[0] if service else None,
        extra=pick(rec, "service", "missed_bytes", "local_orig", "local_resp",
                   "tunnel_parents", "vlan", "inner_vlan"))
    doc = flow_document(flow, ctx.observer, ctx.networks, ctx.site)
    doc["event"].update(id=record_id("zeek", log, rec), module="zeek")
    if rec.get("community_id"):     # Zeek's own hash wins over ours (same spec, same seed)
        doc["network"]["community_id"] = str(rec["community_id"])
    return doc


def dns_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.DNS, ctx, ["network"], ["protocol", "info"])
    doc.setdefault("network", {})["protocol"] = "dns"
    answers = [str(a) for a in rec.get("answers") or []]
    ttls = list(rec.get("TTLs") or [])
    dns = {
        "id": str(rec["trans_id"]) if rec.get("trans_id") is not None else None,
        "type": "answer" if rec.get("rcode_name") or answers else "query",
        "op_code": rec.get("opcode_name"),
        "question": {"name": rec.get("query"), "type": rec.get("qtype_name"),
                     "class": rec.get("qclass_name")},
        "response_code": rec.get("rcode_name"),
        "header_flags": [f for f in ("AA", "TC", "RD", "RA") if rec.get(f) is True],
        "answers": [compact({"data": a, "ttl": _ttl(ttls, i)}) for i, a in enumerate(answers)],
        "resolved_ip": [a for a in answers if schema.is_ip(a)],
    }
    doc["dns"] = compact(dns)
    return doc


def _ttl(ttls: list, index: int) -> int | None:
    value = ttls[index] if index < len(ttls) else None
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    return round(value) if finite else None


def http_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.HTTP, ctx, ["network", "web"], ["protocol", "access"])
    doc.setdefault("network", {})["protocol"] = "http"
    uri, host = rec.get("uri"), rec.get("host")
    path, _, query = str(uri).partition("?") if uri else ("", "", "")
    doc.update(compact({
        "http": {"version": rec.get("version"),
                 "request": {"method": rec.get("method"), "referrer": rec.get("referrer"),
                             "body": {"bytes": rec.get("request_body_len")}},
                 "response": {"status_code": rec.get("status_code"),
                              "body": {"bytes": rec.get("response_body_len")}}},
        "url": {"original": uri, "domain": host, "path": path, "query": query,
                "full": f"http://{host}{uri}" if host and path.startswith("/") else None},
        "user_agent": {"original": rec.get("user_agent")},
        "user": {"name": rec.get("username")},
    }))
    return doc


def tls_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.TLS, ctx, ["network"], ["protocol"])
    doc.setdefault("network", {})["protocol"] = "tls"
    protocol, version = _TLS_VERSIONS.get(rec.get("version") or "", (None, rec.get("version")))
    doc["tls"] = compact({
        "version": version, "version_protocol": protocol, "cipher": rec.get("cipher"),
        "curve": rec.get("curve"), "resumed": rec.get("resumed"),
        "established": rec.get("established"), "next_protocol": rec.get("next_protocol"),
        "client": {"server_name": rec.get("server_name")},
    })
    return doc


def dce_rpc_doc(rec: dict, log: str, ctx: Context) -> dict:
    """dce_rpc.log: one call (interface `endpoint`, `operation`), as the capture path writes it
    (collectors/capture/documents/app.py), so remote execution is detected from either."""
    doc = _base(rec, log, schema.DCE_RPC, ctx, ["network"], ["protocol", "info"])
    endpoint, operation = rec.get("endpoint"), rec.get("operation")
    if not isinstance(endpoint, str) or not isinstance(operation, str):
        raise MappingError("dce_rpc record without endpoint and operation")
    network = doc.setdefault("network", {})
    network.update({"transport": "tcp", "protocol": "dce_rpc"})
    pipe = rec.get("named_pipe")
    doc["dce_rpc"] = compact({"endpoint": endpoint, "operation": operation,
                              "named_pipe": pipe if isinstance(pipe, str) else None})
    doc["event"]["action"] = f"{endpoint}.{operation}"
    if isinstance(rec.get("rtt"), (int, float)) and rec["rtt"] >= 0:
        doc["event"]["duration"] = round(rec["rtt"] * 1e9)
    return doc


def kerberos_doc(rec: dict, log: str, ctx: Context) -> dict:
    """kerberos.log: an AS exchange is a login try (ECS authentication, as the capture path
    writes it), a TGS exchange a network event; the detail under watchkeeper.kerberos."""
    request_type = rec.get("request_type")
    login = request_type == "AS"
    doc = _base(rec, log, schema.KERBEROS, ctx, ["authentication"] if login else ["network"],
                ["info"])
    doc.setdefault("network", {})["protocol"] = "krb"
    client = rec.get("client") if isinstance(rec.get("client"), str) else None
    error = rec.get("error_msg") if isinstance(rec.get("error_msg"), str) else None
    success = rec.get("success")
    if login:
        doc["event"]["action"] = "kerberos_as"
        doc["event"]["outcome"] = "success" if success is True else "failure" \
            if error in _KRB_FAILED_LOGIN else "unknown"
        if client:
            user = client.split("/")[0].lower()
            doc["user"] = {"name": user}
            doc.setdefault("related", {})["user"] = [user]
    doc["watchkeeper"]["kerberos"] = compact({
        "request_type": request_type, "client": client, "service": rec.get("service"),
        "success": success if isinstance(success, bool) else None, "error_msg": error})
    return doc


def ssh_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.LOG, ctx, ["network", "authentication"], ["info"])
    doc.setdefault("network", {})["protocol"] = "ssh"
    success = rec.get("auth_success")
    doc["event"]["outcome"] = {True: "success", False: "failure"}.get(success, "unknown")
    doc["watchkeeper"]["zeek"]["ssh"] = pick(
        rec, "version", "auth_attempts", "direction", "client", "server", "cipher_alg",
        "mac_alg", "compression_alg", "kex_alg", "host_key_alg", "host_key")
    return doc


def ftp_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.LOG, ctx, ["network"], ["protocol"])
    doc.setdefault("network", {})["protocol"] = "ftp"
    code = rec.get("reply_code")
    if isinstance(code, int) and not isinstance(code, bool):
        doc["event"]["outcome"] = "success" if code < 400 else "failure"
    if rec.get("command"):
        doc["event"]["action"] = str(rec["command"]).lower()
    if rec.get("user"):
        doc["user"] = {"name": str(rec["user"])}
    # Zeek already hides passwords; we never copy the field at all.
    doc["watchkeeper"]["zeek"]["ftp"] = pick(rec, "command", "arg", "mime_type", "file_size",
                                             "reply_code", "reply_msg", "fuid")
    return doc


def notice_doc(rec: dict, log: str, ctx: Context) -> dict:
    doc = _base(rec, log, schema.LOG, ctx, ["intrusion_detection"], ["info"], kind="signal")
    note = rec.get("note")
    if not note:
        raise MappingError("notice without a note")
    src, dst = rec.get("src") or rec.get("id.orig_h"), rec.get("dst") or rec.get("id.resp_h")
    port = rec.get("p") if rec.get("p") is not None else rec.get("id.resp_p")
    doc.pop("related", None)
    endpoints(doc, ctx, src, rec.get("id.orig_p") if not rec.get("src") else None, dst, port)
    doc["rule"] = {"id": str(note), "name": str(note)}
    doc["message"] = str(rec.get("msg") or note)
    doc["watchkeeper"]["zeek"]["notice"] = pick(rec, "note", "sub", "n", "actions",
                                                "suppress_for", "fuid", "peer_descr")
    return doc
