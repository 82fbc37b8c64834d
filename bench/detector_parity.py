"""Alerts of every registered detector on every input in tests/data, one JSON line each: the
before/after comparison of a detector refactor (alert id, rule, entity, count, severity,
risk, times, score, subscores, message, evidence).

    .venv/bin/python bench/detector_parity.py > after.jsonl
    .venv/bin/python bench/detector_parity.py --detectors-from /tmp/old > before.jsonl

Inputs: every capture (capture path -> flow/DNS/HTTP/TLS events), the labelled DNS qname
lists (flows/*-qnames.csv, as DNS events) and an sshd guessing/spraying stream through the
real syslog parsers. Detectors are grouped by key field, as the runner partitions them.
`--detectors-from DIR` imports the `detectors` package from DIR (e.g. `git archive main
detectors | tar -x -C DIR`); `--resume-at-half` checkpoints each group halfway (JSON
round-trip) and restores it into fresh instances; `--save F` writes those checkpoints and
`--load F` resumes from checkpoints another version wrote."""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--detectors-from" in sys.argv:   # the detectors package of another tree (main's)
    sys.path.insert(0, sys.argv[sys.argv.index("--detectors-from") + 1])

from collectors.capture import iter_flow_documents  # noqa: E402
from detectors import registry  # noqa: E402
from detectors.runner import PartitionDetectors  # noqa: E402
from watchkeeper.documents import alert_document  # noqa: E402
from watchkeeper.networks import InternalNetworks  # noqa: E402

def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for name, cls in sorted(registry.available().items()):
        out[cls.key_field].append(name)
    return out


def line(capture: str, spec) -> dict:
    doc = alert_document(spec, 0.0)
    return {"capture": capture, "id": doc["event"]["id"], "detector": spec.detector,
            "rule": spec.rule_id, "entity": spec.entity, "severity": spec.severity,
            "risk": doc["event"]["risk_score"], "count": spec.count,
            "first": spec.first_seen, "last": spec.last_seen, "score": spec.score,
            "subscores": doc["watchkeeper"]["alert"]["subscores"], "message": spec.message,
            "evidence": spec.evidence}


SAVED: dict = {}


def qname_docs(path: Path) -> list[dict]:
    """DNS query events from a labelled qname list (tests/data/flows/*-qnames.csv)."""
    import csv
    from watchkeeper import timeutil
    rows = list(csv.DictReader(path.open()))
    return [{"@timestamp": timeutil.format(1.78e9 + i * 0.5),
             "event": {"id": f"{path.stem}-{i}", "kind": "event", "dataset": "watchkeeper.dns"},
             "source": {"ip": "10.1.2.3", "port": 40000 + i % 1000},
             "destination": {"ip": "10.1.0.53", "port": 53},
             "network": {"transport": "udp", "direction": "internal"},
             "dns": {"question": {"name": row["qname"], "type": "TXT" if i % 3 else "A"},
                     "response_code": "NXDOMAIN" if i % 2 else "NOERROR"}}
            for i, row in enumerate(rows[:3000])]


def auth_docs(path: Path) -> list[dict]:
    """sshd guessing, spraying and a success through the real syslog parsers."""
    from collectors.syslog import document, programs, rfc
    from collectors.syslog.document import Origin
    from watchkeeper import timeutil
    out = []
    for i in range(120):
        t = 1.78e9 + i * 4
        user = "root" if i < 60 else f"user{i}"
        text = (f"Failed password for {user} from 203.0.113.{i // 60 + 5} port {40000 + i} ssh2"
                if i != 90 else "Accepted password for root from 203.0.113.5 port 49999 ssh2")
        raw = f"<38>1 {timeutil.format(t)} web1 sshd 812 - - {text}".encode()
        msg = rfc.parse(raw, t)
        out.append(document.build(msg, raw, Origin("192.0.2.1", 514, "udp", t),
                                  programs.extract(msg)))
    return out


def docs_of(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return qname_docs(path)
    if path.name == "auth":
        return auth_docs(path)
    return list(iter_flow_documents([str(path)], "eval", InternalNetworks(), app=True))


def run(path: Path, resume: bool, load: dict | None = None) -> list[dict]:
    docs = docs_of(path)
    out = []
    for key, names in groups().items():
        part = PartitionDetectors(registry.build(names=names))
        for i, doc in enumerate(docs):
            if resume and i == len(docs) // 2:
                cp = json.loads(json.dumps(part.checkpoint().__dict__))
                SAVED[f"{path.name}|{key}"] = json.loads(json.dumps(cp))  # restore may alias it
                if load is not None:     # a checkpoint written by the other code
                    cp = load[f"{path.name}|{key}"]
                fresh = registry.build(names=names)
                for det in fresh:
                    det.restore(cp["snapshots"][det.name])
                part = PartitionDetectors(fresh, cp["next_offset"], cp["watermark"],
                                          cp["next_timer"])
            out += [line(str(path.relative_to(ROOT / "tests" / "data")), s)
                    for s in part.on_event(doc)]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--detectors-from")
    ap.add_argument("--resume-at-half", action="store_true")
    ap.add_argument("--save", help="write the halfway checkpoints to this JSON file")
    ap.add_argument("--load", help="resume from the halfway checkpoints in this JSON file")
    args = ap.parse_args()
    load = json.load(open(args.load)) if args.load else None
    data = ROOT / "tests" / "data"
    inputs = sorted(p for p in data.glob("**/*") if p.suffix in (".pcap", ".pcapng"))
    inputs += sorted(data.glob("flows/*-qnames.csv")) + [data / "auth"]
    for path in inputs:
        for row in run(path, args.resume_at_half or bool(load), load):
            print(json.dumps(row, sort_keys=True))
    if args.save:
        json.dump(SAVED, open(args.save, "w"))
