"""Flow conformance against Zeek: every `*.pcap*.zeek-conn.log` baseline in tests/data.

For each baseline we run our flow table on the capture and match Zeek's rows by 5-tuple
(proto, orig ip/port, resp ip/port; duplicates in order). A row is *fully equal* when the
packets and IP bytes each way and conn_state agree (whichever of those the baseline has;
`zeek-cut` subsets lack some). Acceptance: >= 99 % of Zeek's connections fully equal.

Zeek was run with or without `-C` (skip checksum verification) per baseline; MANIFEST.md
records each command line, and we configure checksum verification the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.capture import iter_flows
from collectors.capture.flows.reference import FlowConfig
from tests.datafiles import DATA, manifest, zeek_baselines

ACCEPTANCE = 0.99
COMPARED = ("orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "conn_state")
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}


def parse_conn_log(path: Path) -> list[dict]:
    """Zeek TSV (with #fields) or a zeek-cut subset (first non-comment line is the header)."""
    header, rows = None, []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            header = line.split("\t")[1:]
        elif not line or line.startswith("#"):
            continue
        elif header is None:
            header = line.split("\t")
        else:
            rows.append(dict(zip(header, line.split("\t"))))
    return rows


def zeek_used_checksums(log: Path) -> bool:
    """True unless the baseline's recorded command line has -C (from MANIFEST.md)."""
    for line in manifest().splitlines():
        if f"`{log.name}`" in line and "Run:" in line:
            run = line.split("Run:", 1)[1]
            return not re.search(r"(^|\s)-[A-Za-z]*C", run)
    return False


@dataclass
class FileResult:
    name: str
    zeek_rows: int = 0
    matched: int = 0
    equal: int = 0
    history_equal: int = 0
    mismatches: list = field(default_factory=list)


def _tuple(rec) -> tuple:
    name = PROTO_NAMES.get(rec.proto, "unknown_transport")
    return (name, rec.orig_ip, str(rec.orig_port), rec.resp_ip, str(rec.resp_port))


def _zeek_tuple(row: dict) -> tuple | None:
    if "id.orig_h" not in row:
        return None
    return (row.get("proto", "tcp"), row["id.orig_h"], row["id.orig_p"], row["id.resp_h"],
            row["id.resp_p"])


def _ours(rec) -> dict:
    return {"orig_pkts": str(rec.orig_pkts), "orig_ip_bytes": str(rec.orig_ip_bytes),
            "resp_pkts": str(rec.resp_pkts), "resp_ip_bytes": str(rec.resp_ip_bytes),
            "conn_state": rec.conn_state, "history": rec.history or "-"}


def compare_file(log: Path) -> FileResult:
    capture = Path(str(log)[: -len(".zeek-conn.log")])
    config = FlowConfig(verify_checksums=zeek_used_checksums(log))
    ours = sorted((r for r in iter_flows([str(capture)], config) if r.final),
                  key=lambda r: r.start)
    rows = parse_conn_log(log)
    result = FileResult(str(log.relative_to(DATA))[: -len(".zeek-conn.log")],
                        len(rows))
    pools: dict = {}
    for rec in ours:
        pools.setdefault(_tuple(rec), []).append(rec)
    for index, row in enumerate(rows):
        key = _zeek_tuple(row)
        if key is None:           # cut without the 5-tuple: match by position
            rec = ours[index] if index < len(ours) else None
        else:
            ip_proto = row.get("ip_proto")
            pool = pools.get(key, [])
            rec = next((r for r in pool if key[0] != "unknown_transport" or ip_proto in
                        (None, "-", str(r.proto))), None)
            if rec is not None:
                pool.remove(rec)
        _score(result, row, rec)
    return result


def _score(result: FileResult, row: dict, rec) -> None:
    if rec is None:
        result.mismatches.append(("missing", row))
        return
    result.matched += 1
    mine = _ours(rec)
    fields = [f for f in COMPARED if f in row] or ["history"]
    if all(mine[f] == row[f] for f in fields):
        result.equal += 1
    else:
        result.mismatches.append(("differs", {f: (row[f], mine[f]) for f in fields
                                              if mine[f] != row[f]}, _tuple(rec)))
    if "history" in row and row["history"] == mine["history"]:
        result.history_equal += 1


def report(results: list[FileResult]) -> str:
    lines = [f"{'capture':58} {'zeek':>5} {'match':>6} {'equal':>6} {'%':>6} {'hist':>5}"]
    for r in results:
        pct = 100.0 * r.equal / r.zeek_rows if r.zeek_rows else 100.0
        lines.append(f"{r.name:58} {r.zeek_rows:5} {r.matched:6} {r.equal:6} {pct:6.1f} "
                     f"{r.history_equal:5}")
    total = sum(r.zeek_rows for r in results)
    equal = sum(r.equal for r in results)
    matched = sum(r.matched for r in results)
    lines.append(f"{'TOTAL':58} {total:5} {matched:6} {equal:6} "
                 f"{100.0 * equal / max(total, 1):6.1f}")
    for r in results:
        for m in r.mismatches[:6]:
            lines.append(f"  {r.name}: {m}")
    return "\n".join(lines)


def test_flows_match_zeek_conn_logs():
    logs = zeek_baselines("conn")
    results = [compare_file(log) for log in logs]
    print("\n" + report(results))
    total = sum(r.zeek_rows for r in results)
    equal = sum(r.equal for r in results)
    assert equal / total >= ACCEPTANCE, f"{equal}/{total} Zeek connections reproduced"
