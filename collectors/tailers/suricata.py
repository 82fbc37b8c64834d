"""Suricata EVE JSON (one object per line, Suricata 7 format) -> ECS documents.

alert -> one of our alerts (documents.alert_document: category "ids", detector "suricata",
rule id "suricata:<sid>") for wk.alerts.raw; flow/dns/http/tls -> the matching datasets on
wk.events; every other event_type (stats, fileinfo, anomaly, drop...) is ignored but counted.
"""
from __future__ import annotations

import json
import time

from watchkeeper import schema, timeutil
from watchkeeper.documents import AlertSpec, FlowRecord, alert_document, community_id, flow_document

from collectors.tailers import suricata_map as M
from collectors.tailers.common import (ALERT, EVENT, IGNORED, MALFORMED, Context, MappingError,
                                       Parsed, address, compact, endpoints, epoch, record_id,
                                       stamp)

# Suricata priority 1 (high) .. 3 (low), 4 sometimes used for "info"; 4 = critical is ours to
# raise after correlation, so Suricata's top priority maps to high.
SEVERITY = {1: 3, 2: 2, 3: 1, 4: 1}


class SuricataParser:
    """Stateless per line; the context methods exist so the runner treats all parsers alike."""

    context: dict = {}

    def __init__(self, path: str, ctx: Context):
        self.ctx = ctx

    def restore(self, context: dict) -> None:
        pass

    def reset(self) -> None:
        pass

    def parse(self, line: str) -> Parsed:
        line = line.strip()
        if not line:
            return Parsed(IGNORED, reason="blank line")
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError) as exc:   # RecursionError: absurdly nested JSON
            return Parsed(MALFORMED, reason=f"suricata: invalid JSON: {exc}"[:500])
        if not isinstance(rec, dict):
            return Parsed(MALFORMED, reason="suricata: EVE line is not a JSON object")
        kind = rec.get("event_type")
        mapper = MAPPERS.get(kind) if isinstance(kind, str) else None
        if mapper is None:
            return Parsed(IGNORED, reason=f"suricata event_type {kind!r} is not mapped")
        try:
            doc = mapper(rec, self.ctx)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            return Parsed(MALFORMED, reason=f"suricata {kind}: {type(exc).__name__}: {exc}"[:500])
        return Parsed(ALERT if kind == "alert" else EVENT, doc)


def _base(rec: dict, ctx: Context, dataset: str, category: list[str], type_: list[str]) -> dict:
    ts = epoch(rec.get("timestamp"), "timestamp")
    doc = {
        "@timestamp": timeutil.format(ts),
        "event": {"id": record_id("suricata", rec.get("event_type"), rec), "kind": "event",
                  "category": category, "type": type_, "dataset": dataset,
                  "module": "suricata"},
        "watchkeeper": {"suricata": M.extras(rec)},
    }
    _network(doc, rec, ctx)
    return stamp(doc, ctx)


def _network(doc: dict, rec: dict, ctx: Context) -> None:
    sport = rec.get("src_port", rec.get("icmp_type"))       # ICMP: type and code, as Zeek
    dport = rec.get("dest_port", rec.get("icmp_code"))
    endpoints(doc, ctx, rec.get("src_ip"), sport, rec.get("dest_ip"), dport)
    network = doc.setdefault("network", {})
    if isinstance(rec.get("proto"), str):
        network["transport"] = rec["proto"].lower()
    cid = rec.get("community_id") or _community_id(rec)
    if cid:
        network["community_id"] = str(cid)
    if isinstance(rec.get("app_proto"), str) and rec["app_proto"] != "failed":
        network["protocol"] = rec["app_proto"]


def _community_id(rec: dict) -> str | None:
    """Suricata writes community_id only when enabled in suricata.yaml; compute it otherwise."""
    src, dst = rec.get("src_ip"), rec.get("dest_ip")
    if not (src and dst):
        return None
    proto = M.proto_number(rec.get("proto"), address(src))
    sport = rec.get("src_port", rec.get("icmp_type", 0))
    dport = rec.get("dest_port", rec.get("icmp_code", 0))
    return community_id(proto, address(src), address(dst), int(sport or 0), int(dport or 0))


def alert_doc(rec: dict, ctx: Context) -> dict:
    alert = rec["alert"]
    sid = alert["signature_id"]
    if isinstance(sid, bool) or not isinstance(sid, int):
        raise MappingError(f"alert.signature_id {sid!r} is not a number")
    ts = epoch(rec.get("timestamp"), "timestamp")
    src, dst = address(rec.get("src_ip")), address(rec.get("dest_ip"))
    technique_id, technique_name = M.technique(alert.get("metadata"))
    spec = AlertSpec(
        detector="suricata", detector_version=str(alert.get("rev", 0)), category="ids",
        rule_id=f"suricata:{sid}", rule_name=str(alert.get("signature") or f"sid {sid}"),
        severity=SEVERITY.get(alert.get("severity"), 2),
        message=str(alert.get("signature") or f"Suricata signature {sid}"),
        entity=M.actor(rec, src), first_seen=ts, last_seen=ts, source_ip=src, destination_ip=dst,
        evidence=[M.flow_event_id(rec)] if M.flow_event_id(rec) else [],
        technique_id=technique_id, technique_name=technique_name)
    doc = alert_document(spec, created=time.time())
    doc["event"]["module"] = "suricata"
    _network(doc, rec, ctx)
    doc["rule"].update(compact({"category": alert.get("category"), "ruleset": "suricata"}))
    doc["watchkeeper"]["suricata"] = M.extras(rec) | compact(
        {"gid": alert.get("gid"), "action": alert.get("action"), "signature_id": sid})
    return stamp(doc, ctx)


def flow_doc(rec: dict, ctx: Context) -> dict:
    flow = rec["flow"]
    start = epoch(flow.get("start") or rec.get("timestamp"), "flow.start")
    end = epoch(flow.get("end") or flow.get("start") or rec.get("timestamp"), "flow.end")
    src, dst = address(rec.get("src_ip")), address(rec.get("dest_ip"))
    app = rec.get("app_proto") if rec.get("app_proto") not in (None, "failed") else None
    record = FlowRecord(
        uid=str(rec.get("flow_id", "")), start=start, end=max(start, end),
        proto=M.proto_number(rec.get("proto"), src), orig_ip=src, resp_ip=dst,
        orig_port=M.port(rec.get("src_port", rec.get("icmp_type", 0))),
        resp_port=M.port(rec.get("dest_port", rec.get("icmp_code", 0))),
        orig_pkts=M.count(flow, "pkts_toserver"), resp_pkts=M.count(flow, "pkts_toclient"),
        # Suricata counts whole packets (link layer included): the closest to Zeek's ip_bytes.
        orig_ip_bytes=M.count(flow, "bytes_toserver"),
        resp_ip_bytes=M.count(flow, "bytes_toclient"),
        conn_state=M.conn_state(rec), service=str(app) if app else None,
        extra=compact({k: flow.get(k) for k in ("state", "reason", "alerted", "action", "age")}))
    doc = flow_document(record, ctx.observer, ctx.networks, ctx.site)
    doc["event"].update(id=M.flow_event_id(rec) or record_id("suricata", "flow", rec),
                        module="suricata")
    for unknown in ("orig_bytes", "resp_bytes", "history"):   # EVE has no payload byte counts
        doc["watchkeeper"]["flow"].pop(unknown, None)
    if rec.get("community_id"):
        doc["network"]["community_id"] = str(rec["community_id"])
    doc["watchkeeper"]["suricata"] = M.extras(rec)
    return doc


def dns_doc(rec: dict, ctx: Context) -> dict:
    doc = _base(rec, ctx, schema.DNS, ["network"], ["protocol", "info"])
    doc["dns"] = M.dns_fields(rec["dns"])
    return doc


def http_doc(rec: dict, ctx: Context) -> dict:
    doc = _base(rec, ctx, schema.HTTP, ["network", "web"], ["protocol", "access"])
    doc.update(M.http_fields(rec["http"]))
    return doc


def tls_doc(rec: dict, ctx: Context) -> dict:
    doc = _base(rec, ctx, schema.TLS, ["network"], ["protocol"])
    doc["tls"] = M.tls_fields(rec["tls"])
    return doc


MAPPERS = {"alert": alert_doc, "flow": flow_doc, "dns": dns_doc, "http": http_doc,
           "tls": tls_doc}
