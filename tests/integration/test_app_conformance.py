"""Application metadata from packets vs what Zeek logged for the same captures.

Zeek's dns.log, http.log and ssh.log in tests/data (btest baselines, timestamps masked)
are matched to our DNS/HTTP events and flow SSH banners by connection and transaction; the
test prints the agreement per file and field.
"""
from __future__ import annotations

from pathlib import Path

from collectors.capture import iter_flow_documents
from collectors.tailers.zeek_tsv import ZeekHeader, apply_header, parse_row
from watchkeeper import schema
from watchkeeper.networks import InternalNetworks
from tests.datafiles import data_file


def capture(relative: str) -> Path:
    return data_file(relative)


def zeek_rows(path: Path) -> list[dict]:
    """Rows of a btest baseline (its `##` banner skipped, masked times set to 0)."""
    header, rows = ZeekHeader(), []
    for line in path.read_text().splitlines():
        if line.startswith("##"):
            continue
        if line.startswith("#"):
            header = apply_header(header, line)
        elif line:
            rows.append(parse_row(header, line.replace("XXXXXXXXXX.XXXXXX", "0.0")))
    return rows


def events(pcap: Path) -> list[dict]:
    return list(iter_flow_documents([str(pcap)], "t", InternalNetworks(), app=True))


def endpoints(row: dict) -> tuple:
    return (row["id.orig_h"], row["id.orig_p"], row["id.resp_h"], row["id.resp_p"])


def doc_endpoints(doc: dict) -> tuple:
    return (doc["source"]["ip"], doc["source"]["port"], doc["destination"]["ip"],
            doc["destination"]["port"])


def report(name: str, total: int, agree: dict[str, int]) -> None:
    print(f"\n{name}: {total} Zeek rows")
    for field, n in agree.items():
        print(f"  {field:<12} {n:>4}/{total}  {100 * n / max(total, 1):5.1f} %")


def test_dns_agrees_with_zeek_dns_log():
    pcap = capture("benign/zeek_wikipedia.pcap")
    zeek = zeek_rows(pcap.with_name(pcap.name + ".zeek-dns.log"))
    ours = {}
    for doc in events(pcap):
        if doc["event"]["dataset"] == schema.DNS:
            dns = doc["dns"]
            key = (*doc_endpoints(doc), dns["id"], dns.get("question", {}).get("name"))
            ours.setdefault(key, dns)
    agree = dict.fromkeys(("found", "qtype", "rcode", "answers"), 0)
    for row in zeek:
        dns = ours.get((*endpoints(row), str(row["trans_id"]), row.get("query")))
        if dns is None:
            continue
        agree["found"] += 1
        agree["qtype"] += dns.get("question", {}).get("type") == row.get("qtype_name") \
            or row.get("qtype_name") is None
        agree["rcode"] += dns.get("response_code") == row.get("rcode_name")
        agree["answers"] += [a["data"] for a in dns.get("answers", [])] \
            == list(row.get("answers") or [])
    report(pcap.name + " dns", len(zeek), agree)
    logged = {(*endpoints(r), str(r["trans_id"]), r.get("query")) for r in zeek}
    print(f"  ours only    {len(set(ours) - logged):>4} transactions Zeek did not log")
    assert min(agree.values()) >= 0.99 * len(zeek)


def test_http_agrees_with_zeek_http_log():
    pcap = capture("benign/zeek_wikipedia.pcap")
    zeek = zeek_rows(pcap.with_name(pcap.name + ".zeek-http.log"))
    ours: dict[tuple, list] = {}
    for doc in events(pcap):
        if doc["event"]["dataset"] == schema.HTTP:
            ours.setdefault(doc_endpoints(doc), []).append(doc)
    agree = dict.fromkeys(("found", "method", "host", "uri", "user_agent", "status"), 0)
    for row in zeek:
        docs = ours.get(endpoints(row), [])
        depth = row["trans_depth"] - 1          # n-th request on its connection
        if depth >= len(docs):
            continue
        doc = docs[depth]
        agree["found"] += 1
        agree["method"] += doc["http"].get("request", {}).get("method") == row.get("method")
        agree["host"] += doc.get("url", {}).get("domain") == row.get("host")
        agree["uri"] += doc.get("url", {}).get("original") == row.get("uri")
        agree["user_agent"] += doc.get("user_agent", {}).get("original") == row.get("user_agent")
        agree["status"] += doc["http"].get("response", {}).get("status_code") \
            == row.get("status_code")
    report(pcap.name + " http", len(zeek), agree)
    assert min(agree.values()) >= 0.99 * len(zeek)


def test_ssh_banners_and_service_agree_with_zeek_ssh_log():
    pcap = capture("benign/zeek_ssh.pcap")
    zeek = zeek_rows(pcap.with_name(pcap.name + ".zeek-ssh.log"))
    flows = {doc_endpoints(d): d for d in events(pcap)
             if d["event"]["dataset"] == schema.FLOW and d["watchkeeper"]["flow"]["final"]}
    agree = dict.fromkeys(("found", "service", "client", "server"), 0)
    for row in zeek:
        doc = flows.get(endpoints(row))
        if doc is None:
            continue
        flow = doc["watchkeeper"]["flow"]
        agree["found"] += 1
        agree["service"] += doc["network"].get("protocol") == "ssh"
        agree["client"] += flow.get("ssh_client") == row.get("client")
        agree["server"] += flow.get("ssh_server") == row.get("server")
    report(pcap.name + " ssh", len(zeek), agree)
    assert min(agree.values()) == len(zeek)     # including SSH on ports 41644 and 2200


# Zeek's error_msg names (base/protocols/krb/consts.zeek) of a wrong password, an unknown
# account and a locked one: the login failures brute-force detection counts.
ZEEK_FAILED_LOGIN = {"PREAUTH_FAILED", "CLIENT_NOT_FOUND", "LOCKED_OUT"}


def test_kerberos_logins_agree_with_zeeks_kerberos_log():
    """Every AS exchange Zeek logged (kinit against MIT Kerberos: successes, wrong passwords,
    unknown, locked, expired accounts, PKINIT) is one of our events on the same connection,
    with the same client, service and outcome class. Ours also reports the PREAUTH_REQUIRED
    step Zeek leaves out (KRB::ignored_errors), as outcome unknown."""
    pcap = capture("conformance/zeek_krb-kinit.pcap")
    rows = [r for r in zeek_rows(Path(f"{pcap}.zeek-kerberos.log")) if r["request_type"] == "AS"]
    ours = {}
    for doc in events(pcap):
        if doc["event"]["dataset"] == schema.KERBEROS:
            ours.setdefault((doc["source"]["ip"], doc["source"]["port"]), []).append(doc)
    matched = clients = 0
    for row in rows:
        docs = ours.pop((row["id.orig_h"], row["id.orig_p"]), [])
        assert len(docs) == 1, row
        doc = docs[0]
        krb = doc["watchkeeper"]["kerberos"]
        if "client" in krb:                 # absent when a PKINIT certificate fills the segment
            assert (krb["client"], krb.get("service")) == (row["client"], row["service"]), row
            clients += 1
        assert (doc["event"]["outcome"] == "success") == row["success"], row
        assert (doc["event"]["outcome"] == "failure") == (row.get("error_msg")
                                                          in ZEEK_FAILED_LOGIN), row
        matched += 1
    left = [d["watchkeeper"]["kerberos"].get("error_msg") for docs in ours.values()
            for d in docs]
    assert set(left) <= {"KDC_ERR_PREAUTH_REQUIRED"}, left
    print(f"\nkerberos: {matched}/{len(rows)} AS exchanges agree with Zeek ({clients} with the "
          f"client principal); {len(left)} PREAUTH_REQUIRED steps reported beside them")
    assert matched == len(rows) == 84 and clients >= 80
