"""DNS tunnelling recall on a public set of tunnel recordings, per tool family.

    .venv/bin/python bench/dns_tunnel_public.py DIR [--client 192.168.7.7]

DIR holds the captures (pcap/pcapng) of one labelled set, for instance the Domainator
dataset's validation recordings (docs/public-captures.md says where they come from and how to
check them out; they are not redistributed). Every capture is a tunnel of the host `--client`
(in that dataset the one infected host); the family is the file name before its first "_".
Each capture goes through the path of bench/detection_eval.py (capture -> flows and DNS
events -> every registered detector, default settings). A capture counts as detected when a
dns_tunneling alert names the client; every alert naming another host is listed.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.detection_eval import alerts_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--client", default="192.168.7.7")
    args = ap.parse_args()
    files = sorted(p for p in args.dir.iterdir() if p.suffix in (".pcap", ".pcapng"))
    families: dict[str, list[bool]] = defaultdict(list)
    others: list[str] = []
    for path in files:
        alerts = alerts_for(path)
        hit = ("dns_tunneling", args.client) in alerts
        families[path.name.split("_")[0]].append(hit)
        print(f"{'detected' if hit else 'missed  '}  {path.name}")
        others += [f"{path.name}: {category} names {entity}" for category, entity in
                   sorted(alerts) if entity != args.client]
    print("\n| family | captures | detected | recall |\n|---|---:|---:|---:|")
    for family, hits in sorted(families.items()):
        print(f"| {family} | {len(hits)} | {sum(hits)} | {sum(hits) / len(hits):.2f} |")
    total = [h for hits in families.values() for h in hits]
    print(f"| **all** | {len(total)} | {sum(total)} | {sum(total) / len(total):.2f} |")
    print("\nalerts naming another host:" if others else "\nno alert names another host")
    for line in others:
        print(f"- {line}")


if __name__ == "__main__":
    main()
