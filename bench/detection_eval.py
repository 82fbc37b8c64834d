"""Per-detector precision and recall on the labelled captures in tests/data
(or the folder named by WATCHKEEPER_SHARED_DATA, laid out the same way).

    .venv/bin/python bench/detection_eval.py [--public]

--public scores the public captures of tests/data/public instead (ground truth in its
labels.json, from each capture's own repository; issue 14 item 8).

Every capture goes through the real capture path and every registered detector with its
default settings (one partition set for source-keyed detectors, one for each other key, as
the runner does). An alert counts as a true positive when its category and entity (the
actor, or the target for floods) match the capture's ground truth from MANIFEST.md; any
other alert is a false positive; a truth row with no matching alert is a false negative.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.capture import iter_flow_documents  # noqa: E402
from detectors import registry  # noqa: E402
from detectors.runner import PartitionDetectors  # noqa: E402
from tests.datafiles import DATA, captures, data_file  # noqa: E402
from watchkeeper.networks import InternalNetworks  # noqa: E402

SHARED = Path(os.environ.get("WATCHKEEPER_SHARED_DATA") or DATA)

# capture -> [(category, entity)]; entity = actor IP (target IP for dos). From MANIFEST.md.
TRUTH: dict[str, list[tuple[str, str]]] = {
    "scan/cs_synscan.pcapng": [("scan", "172.16.0.8")],
    "scan/slips_test7-iot-telnet-scan.pcap": [("scan", "192.168.2.16")],
    "scan/slips_test12-icmp-portscan.pcap": [("scan", "192.168.1.109")],
    "scan/slips_test8-arp-scan.pcap": [("scan", "192.168.1.247")],     # ARP sweep (session 28)
    "scan/cs_activeosfingerprinting.pcapng": [("scan", "172.16.16.128")],
    "bruteforce/zeek_ssh-sshguess.pcap": [("brute_force", "192.168.56.1")],
    "bruteforce/zeek_ftp-bruteforce.pcap": [("brute_force", "192.168.56.1")],
    "bruteforce/slips_ssh-bruteforce-nmap.pcap": [("brute_force", "147.32.80.40")],
    "c2-beacon/slips_test-cc-capture-1.pcap": [("beaconing", "147.32.80.37")],
    "c2-beacon/slips_test-cc-capture-2.pcap": [("beaconing", "147.32.80.37")],
    "c2-beacon/cs_ratinfected.pcapng": [("exfiltration", "172.16.0.114")],
    "dos/stopddos_pkt.TCP.synflood.spoofed.pcap": [("dos", "10.10.10.10")],
    "dos/sv_syn-flood-200.pcap": [("dos", "198.51.100.5")],
    "exfil/zeek_ctu-agent-tesla-http-exfil.pcap": [("exfiltration", "192.168.1.108")],
}
BENIGN_DIR = "benign"


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    notes: list[str] = field(default_factory=list)


def alerts_for(path: Path) -> set[tuple[str, str]]:
    """(category, entity) of every alert the default detectors raise on one capture."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name, cls in registry.available().items():
        groups[cls.key_field].append(name)
    parts = {key: PartitionDetectors(registry.build(names=names)) for key, names in groups.items()}
    raised: set[tuple[str, str]] = set()
    for doc in iter_flow_documents([str(path)], "eval", InternalNetworks(), app=True):
        for part in parts.values():
            for spec in part.on_event(doc):
                actor_first = (spec.destination_ip, spec.source_ip) if spec.category == "dos" \
                    else (spec.source_ip, spec.destination_ip)
                entity = next((ip for ip in actor_first if ip), spec.entity)
                raised.add((spec.category, entity))
    return raised


def public_truth() -> dict[str, list[tuple[str, str]]]:
    """tests/data/public/labels.json as a TRUTH table (paths relative to tests/data)."""
    labels = json.loads(data_file("public/labels.json").read_text())["captures"]
    return {f"public/{c['file']}": [(c["category"], c["actor"])] for c in labels}


def evaluate(truth_table: dict[str, list[tuple[str, str]]], base: Path,
             negatives: list[str]) -> dict[str, Score]:
    scores: dict[str, Score] = defaultdict(Score)
    for rel in sorted(truth_table) + negatives:
        raised = alerts_for(data_file(rel, base))
        truth = set(truth_table.get(rel, []))
        for category, entity in truth:
            hit = (category, entity) in raised
            scores[category].tp += hit
            scores[category].fn += not hit
            if not hit:
                scores[category].notes.append(f"missed {entity} in {rel}")
        for category, entity in raised - truth:
            scores[category].fp += 1
            scores[category].notes.append(f"false alarm on {entity} in {rel}")
    return scores


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one flow (captures joined from several days have gaps of
    years between their parts: first-to-last would be meaningless)."""
    total, end = 0.0, None
    for a, b in sorted(spans):
        if end is None or a > end:
            total, end = total + (b - a), b
        elif b > end:
            total, end = total + (b - end), b
    return total


def benign_exposure(path: Path) -> tuple[float, int]:
    """(seconds of traffic, distinct internal hosts) of one capture, from its flow documents."""
    nets, spans, hosts = InternalNetworks(), [], set()
    for doc in iter_flow_documents([str(path)], "eval", nets, app=True):
        ev = doc.get("event", {})
        spans.append((_ts(ev.get("start") or doc["@timestamp"]), _ts(ev.get("end") or
                                                                    doc["@timestamp"])))
        for side in ("source", "destination"):
            ip = (doc.get(side) or {}).get("ip")
            if ip and nets.is_internal(ip):
                hosts.add(ip)
    return _union_seconds(spans), len(hosts)


def _ts(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def benign_rate() -> None:
    """Alerts per hour per 100 internal hosts over the benign captures, pooled by host-hours."""
    alerts, host_hours = 0, 0.0
    print("| benign capture | traffic (s) | internal hosts | alerts |")
    print("|---|---:|---:|---:|")
    for path in captures(SHARED / BENIGN_DIR):
        seconds, hosts = benign_exposure(path)
        raised = alerts_for(path)
        alerts += len(raised)
        host_hours += seconds / 3600 * hosts
        print(f"| {path.name} | {seconds:.0f} | {hosts} | {len(raised)} |")
    rate = alerts / host_hours * 100 if host_hours else float("nan")
    bound = 3 / host_hours * 100 if host_hours else float("nan")   # rule of three, 95 %
    print(f"\n{alerts} alerts over {host_hours:.2f} internal host-hours: {rate:.1f} alerts per "
          f"hour per 100 hosts (95 % upper bound with none seen: {bound:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benign-rate", action="store_true",
                        help="alerts per hour per 100 internal hosts on the benign captures")
    parser.add_argument("--public", action="store_true",
                        help="score tests/data/public (labels.json) instead")
    args = parser.parse_args()
    if args.benign_rate:
        benign_rate()
        return
    if args.public:
        truth_table = public_truth()
        scores = evaluate(truth_table, DATA, [])
    else:
        truth_table = TRUTH
        benign = [str(p.relative_to(SHARED)) for p in captures(SHARED / BENIGN_DIR)]
        scores = evaluate(truth_table, SHARED, benign)
    print("| detector category | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for category in sorted(set(scores) | set(c for t in truth_table.values() for c, _ in t)):
        s = scores[category]
        precision = f"{s.tp / (s.tp + s.fp):.2f}" if s.tp + s.fp else "–"
        recall = f"{s.tp / (s.tp + s.fn):.2f}" if s.tp + s.fn else "–"
        print(f"| {category} | {s.tp} | {s.fp} | {s.fn} | {precision} | {recall} |")
    print()
    for category in sorted(scores):
        for note in scores[category].notes:
            print(f"- {category}: {note}")


if __name__ == "__main__":
    main()
