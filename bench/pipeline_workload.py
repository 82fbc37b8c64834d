"""bench/pipeline.py's workload: N flow documents, ~10 % of them a port scan from a few
sources so the scan detector raises alerts; `rate` of them start in each second of event time
(100 by default, as every earlier figure in bench/RESULTS.md; a network carrying 10^4 flows a
second puts 10^4 in each second, so detector timers, which run on event time, fire 100x less
often per event than at 100)."""
from __future__ import annotations

import random

from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

BASE_TIME = 1_699_920_000 + 3600      # 2023-11-14T01:00:00Z: every event falls on one day


def generate(n: int, seed: int = 7, rate: float = 100.0) -> tuple[list[dict], int]:
    """N flow documents with unique ids; returns (docs, how many are scan probes)."""
    rng = random.Random(seed)
    networks = InternalNetworks()
    scanners = [f"10.66.0.{i}" for i in range(1, 9)]
    servers = [f"{a}.{b}.{c}.{d}" for a, b, c, d in
               ((93, 184, 216, 34), (151, 101, 1, 69), (142, 250, 74, 110), (104, 16, 132, 229),
                (13, 107, 42, 14), (185, 199, 108, 153), (8, 8, 8, 8), (1, 1, 1, 1))]
    docs, probes = [], 0
    for i in range(n):
        start = BASE_TIME + i / rate
        if rng.random() < 0.10:          # a scan probe: SYN, no answer, new (host, port)
            probes += 1
            src = rng.choice(scanners)
            flow = FlowRecord(uid=f"C{i:010d}", start=start, end=start + 0.001, proto=6,
                              orig_ip=src, orig_port=rng.randint(32768, 60999),
                              resp_ip=f"10.1.{rng.randint(0, 15)}.{rng.randint(1, 254)}",
                              resp_port=rng.randint(1, 10000), orig_pkts=1, orig_ip_bytes=44,
                              conn_state="S0", history="S")
        else:
            src = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            dst = rng.choice(servers)
            if rng.random() < 0.3:       # DNS over UDP, answered
                flow = FlowRecord(uid=f"C{i:010d}", start=start, end=start + 0.02, proto=17,
                                  orig_ip=src, orig_port=rng.randint(32768, 60999), resp_ip=dst,
                                  resp_port=53, orig_pkts=1, resp_pkts=1, orig_bytes=40,
                                  resp_bytes=120, orig_ip_bytes=68, resp_ip_bytes=148,
                                  conn_state="SF", history="Dd", service="dns")
            else:                        # a completed TCP session
                sent, got = rng.randint(200, 5000), rng.randint(500, 200_000)
                pk_o, pk_r = 5 + sent // 1400, 5 + got // 1400
                flow = FlowRecord(uid=f"C{i:010d}", start=start,
                                  end=start + rng.uniform(0.05, 30), proto=6, orig_ip=src,
                                  orig_port=rng.randint(32768, 60999), resp_ip=dst,
                                  resp_port=rng.choice((443, 443, 443, 80, 22)),
                                  orig_pkts=pk_o, resp_pkts=pk_r, orig_bytes=sent,
                                  resp_bytes=got, orig_ip_bytes=sent + 52 * pk_o,
                                  resp_ip_bytes=got + 52 * pk_r, conn_state="SF",
                                  history="ShADadFf", service="ssl")
        docs.append(flow_document(flow, "bench", networks))
    return docs, probes
