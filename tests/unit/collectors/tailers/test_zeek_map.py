"""Zeek records -> ECS: each mapped log, TSV and JSON alike, and the real btest baselines."""
from __future__ import annotations

import json
import os

import pytest

from watchkeeper import schema
from watchkeeper.documents import community_id

from collectors.tailers.zeek import ZeekParser, log_type_from_name
from tests.datafiles import data_file, zeek_baselines

TS = 1710152102.123456          # the samples' time: 2024-03-11T10:15:02.123456Z


def parse_all(parser: ZeekParser, text: str):
    return [parser.parse(line) for line in text.splitlines()]


def header(path: str, fields: list[str], types: list[str]) -> list[str]:
    return ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)",
            "#unset_field\t-", f"#path\t{path}", "#fields\t" + "\t".join(fields),
            "#types\t" + "\t".join(types)]


def one(ctx, path: str, fields, types, row: str):
    parser = ZeekParser(f"/logs/{path}.log", ctx)
    results = [parser.parse(line) for line in header(path, fields, types) + [row]]
    assert [r.outcome for r in results[:-1]] == ["header"] * 7
    assert results[-1].outcome in ("event", "alert"), results[-1].reason
    return schema.validate(results[-1].doc)


def test_conn_maps_to_a_flow(ctx, samples):
    parser = ZeekParser("/logs/conn.log", ctx)
    results = parse_all(parser, samples.CONN_HEADER + samples.conn_row(7))
    doc = schema.validate(results[-1].doc)
    assert doc["event"]["dataset"] == schema.FLOW and doc["event"]["module"] == "zeek"
    assert doc["@timestamp"] == "2024-03-11T10:15:09.123456Z"
    assert doc["source"] == {"ip": "10.1.20.8", "port": 40007, "bytes": 997, "packets": 9}
    assert doc["destination"]["ip"] == "93.184.216.34" and doc["destination"]["port"] == 443
    assert doc["network"]["transport"] == "tcp" and doc["network"]["protocol"] == "ssl"
    assert doc["network"]["direction"] == "outbound"
    assert doc["network"]["community_id"] == community_id(6, "10.1.20.8", "93.184.216.34",
                                                          40007, 443)
    flow = doc["watchkeeper"]["flow"]
    assert flow["uid"] == "C00007aBcDeFgHiJ" and flow["conn_state"] == "SF"
    assert flow["history"] == "ShADadFf"
    assert (flow["orig_bytes"], flow["resp_bytes"]) == (517, 4312)
    assert (flow["orig_ip_bytes"], flow["resp_ip_bytes"]) == (997, 4744)
    assert doc["event"]["duration"] == 1_250_000_000
    assert doc["observer"]["name"] == "sensor-1" and doc["labels"] == {"site": "hq"}


def test_conn_keeps_zeeks_community_id(ctx, samples):
    row = samples.conn_row(1).rsplit("\t", 1)[0] + "\t1:AbCdEfGhIjKlMnOpQrStUvWxYz0="
    doc = parse_all(ZeekParser("conn.log", ctx), samples.CONN_HEADER + row)[-1].doc
    assert doc["network"]["community_id"] == "1:AbCdEfGhIjKlMnOpQrStUvWxYz0="


def test_json_and_tsv_records_get_the_same_id(ctx, samples):
    tsv = parse_all(ZeekParser("conn.log", ctx), samples.CONN_HEADER + samples.conn_row(3))[-1].doc
    record = {"ts": TS + 3, "uid": "C00003aBcDeFgHiJ", "id.orig_h": "10.1.20.4",
              "id.orig_p": 40003, "id.resp_h": "93.184.216.34", "id.resp_p": 443,
              "proto": "tcp", "service": "ssl", "duration": 1.25, "orig_bytes": 517,
              "resp_bytes": 4312, "conn_state": "SF", "local_orig": True, "local_resp": False,
              "missed_bytes": 0, "history": "ShADadFf", "orig_pkts": 9, "orig_ip_bytes": 997,
              "resp_pkts": 8, "resp_ip_bytes": 4744, "tunnel_parents": None,
              "community_id": None, "_path": "conn", "_write_ts": "2024-03-11T10:15:10Z"}
    record = {k: v for k, v in record.items() if v is not None}
    tsv_record = dict(record, tunnel_parents=None, community_id=None)
    js = ZeekParser("whatever.json", ctx).parse(json.dumps(record)).doc
    assert js["event"]["dataset"] == schema.FLOW
    assert js["watchkeeper"]["flow"] == tsv["watchkeeper"]["flow"]
    # ids hash the record's content: None-vs-absent differs, so compare like with like
    again = ZeekParser("conn.log", ctx).parse(json.dumps(tsv_record | {"_path": "conn"})).doc
    assert again["event"]["id"] == tsv["event"]["id"]


def test_json_log_type_from_file_name(ctx):
    line = json.dumps({"ts": TS, "uid": "Cx", "id.orig_h": "10.0.0.5", "id.orig_p": 5353,
                       "id.resp_h": "10.0.0.53", "id.resp_p": 53, "proto": "udp",
                       "query": "portal.gov.example", "qtype_name": "A", "rcode_name": "NOERROR",
                       "answers": ["198.51.100.20"], "TTLs": [300.0]})
    doc = schema.validate(ZeekParser("/opt/zeek/logs/dns.09:00:00-10:00:00.log", ctx)
                          .parse(line).doc)
    assert doc["dns"]["question"]["name"] == "portal.gov.example"
    assert doc["dns"]["answers"] == [{"data": "198.51.100.20", "ttl": 300}]


def test_dns(ctx):
    doc = one(ctx, "dns", ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                           "proto", "trans_id", "query", "qclass_name", "qtype_name",
                           "rcode_name", "AA", "RD", "RA", "answers", "TTLs"],
              ["time", "string", "addr", "port", "addr", "port", "enum", "count", "string",
               "string", "string", "string", "bool", "bool", "bool", "vector[string]",
               "vector[interval]"],
              f"{TS}\tCdns1\t10.1.20.7\t53012\t10.1.0.53\t53\tudp\t41883\twww.gov.example\t"
              "C_INTERNET\tA\tNOERROR\tF\tT\tT\tedge.cdn.example,198.51.100.20\t60.0,300.0")
    assert doc["event"]["dataset"] == schema.DNS
    assert doc["dns"]["question"] == {"name": "www.gov.example", "type": "A",
                                      "class": "C_INTERNET"}
    assert doc["dns"]["response_code"] == "NOERROR" and doc["dns"]["id"] == "41883"
    assert doc["dns"]["header_flags"] == ["RD", "RA"]
    assert doc["dns"]["answers"][1] == {"data": "198.51.100.20", "ttl": 300}
    assert doc["dns"]["resolved_ip"] == ["198.51.100.20"]
    assert doc["network"]["transport"] == "udp" and doc["network"]["protocol"] == "dns"


def test_http(ctx):
    doc = one(ctx, "http", ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                            "method", "host", "uri", "user_agent", "status_code",
                            "response_body_len"],
              ["time", "string", "addr", "port", "addr", "port", "string", "string", "string",
               "string", "count", "count"],
              f"{TS}\tChttp\t192.168.1.108\t62604\t45.9.74.78\t80\tPOST\t45.9.74.78\t"
              "/c2sock?x=1\tTeslaBrowser/5.5\t200\t5")
    assert doc["http"]["request"]["method"] == "POST"
    assert doc["http"]["response"]["status_code"] == 200
    assert doc["url"]["domain"] == "45.9.74.78" and doc["url"]["path"] == "/c2sock"
    assert doc["url"]["query"] == "x=1"
    assert doc["user_agent"]["original"] == "TeslaBrowser/5.5"


def test_ssl(ctx):
    doc = one(ctx, "ssl", ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                           "version", "cipher", "server_name", "established"],
              ["time", "string", "addr", "port", "addr", "port", "string", "string", "string",
               "bool"],
              f"{TS}\tCtls\t10.0.0.4\t53241\t24.199.110.233\t443\tTLSv13\t"
              "TLS_AES_128_GCM_SHA256\tportal.gov.example\tT")
    assert doc["event"]["dataset"] == schema.TLS
    assert doc["tls"]["version"] == "1.3" and doc["tls"]["version_protocol"] == "tls"
    assert doc["tls"]["client"]["server_name"] == "portal.gov.example"


def test_ssh_ftp_notice(ctx):
    ssh = one(ctx, "ssh", ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                           "auth_success", "auth_attempts", "client"],
              ["time", "string", "addr", "port", "addr", "port", "bool", "count", "string"],
              f"{TS}\tCssh\t192.168.56.1\t58234\t192.168.56.103\t22\tF\t6\tSSH-2.0-libssh")
    assert ssh["event"]["outcome"] == "failure" and "authentication" in ssh["event"]["category"]
    assert ssh["watchkeeper"]["zeek"]["ssh"]["auth_attempts"] == 6
    ftp = one(ctx, "ftp", ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                           "user", "password", "command", "reply_code", "reply_msg"],
              ["time", "string", "addr", "port", "addr", "port", "string", "string", "string",
               "count", "string"],
              f"{TS}\tCftp\t192.168.56.1\t54017\t192.168.56.101\t21\tadmin\tsecret\tPASS\t530\t"
              "Login incorrect.")
    assert ftp["user"] == {"name": "admin"} and ftp["event"]["outcome"] == "failure"
    assert ftp["event"]["action"] == "pass" and "secret" not in json.dumps(ftp)
    notice = one(ctx, "notice", ["ts", "note", "msg", "src", "dst", "p", "actions"],
                 ["time", "enum", "string", "addr", "addr", "port", "set[enum]"],
                 f"{TS}\tSSH::Password_Guessing\t192.168.56.1 appears to be guessing SSH "
                 "passwords (seen in 10 connections).\t192.168.56.1\t192.168.56.103\t22\t"
                 "Notice::ACTION_LOG")
    assert notice["event"]["kind"] == "signal"
    assert notice["rule"]["id"] == "SSH::Password_Guessing"
    assert notice["source"]["ip"] == "192.168.56.1"
    assert notice["destination"] == {"ip": "192.168.56.103", "port": 22}


def test_unmapped_logs_are_ignored_and_bad_records_malformed(ctx):
    parser = ZeekParser("/logs/weird.log", ctx)
    assert parser.parse(json.dumps({"ts": TS, "name": "bad_TCP_checksum"})).outcome == "ignored"
    conn = ZeekParser("/logs/conn.log", ctx)
    bad = conn.parse(json.dumps({"ts": TS, "id.orig_h": "not-an-ip"}))
    assert bad.outcome == "malformed" and "not-an-ip" in bad.reason
    assert conn.parse("[1, 2]").outcome == "malformed"
    assert conn.parse("{not json").outcome == "malformed"


def test_file_name_gives_the_log_type():
    assert log_type_from_name("/opt/zeek/logs/current/conn.log") == "conn"
    assert log_type_from_name("conn.2024-03-11-10-00-00.log") == "conn"


# -- the real baselines (btest masks ts; some are zeek-cut column subsets) ----------------------
BASELINES = [str(p) for p in zeek_baselines()]


def _results(ctx, path: str, ts: str | None = None):
    parser = ZeekParser(path, ctx)
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if ts:
        lines = [line.replace("XXXXXXXXXX.XXXXXX", ts) for line in lines]
    return [parser.parse(line) for line in lines]


@pytest.mark.parametrize("path", BASELINES, ids=os.path.basename)
def test_real_baselines(ctx, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    masked = [r for r in _results(ctx, path) if r.outcome != "header"]
    assert masked and all(r.outcome == "malformed" for r in masked)
    if "#fields" not in text:   # zeek-cut subsets: explicitly refused, with the reason
        assert all("no #fields header" in r.reason for r in masked)
        return
    assert all("field ts" in r.reason for r in masked)      # btest masks ts: XXXXXXXXXX.XXXXXX
    real = [r for r in _results(ctx, path, ts=str(TS)) if r.outcome != "header"]
    if all(r.outcome == "ignored" for r in real):
        return                  # dhcp, quic, rfb, tunnel: valid but not mapped
    assert all(r.outcome in ("event", "alert") for r in real), [r.reason for r in real]
    for r in real:
        schema.validate(r.doc)
    rows = {line for line in text.splitlines() if line and not line.startswith("#")}
    assert len({r.doc["event"]["id"] for r in real}) == len(rows)   # equal rows, equal ids


def test_real_conn_baseline_values(ctx):
    path = str(data_file("benign/zeek_ftp-bigtransfer.pcap.zeek-conn.log"))
    docs = [r.doc for r in _results(ctx, path, ts=str(TS)) if r.doc]
    big = next(d for d in docs if d["watchkeeper"]["flow"]["uid"] == "C4J4Th3PJpwUYZZ6gc")
    assert big["watchkeeper"]["flow"]["resp_bytes"] == 5416666670
    assert big["watchkeeper"]["flow"]["missed_bytes"] == 5416642848
    assert big["destination"]["packets"] == 12 and big["destination"]["bytes"] == 24454
