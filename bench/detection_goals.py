"""Issue 14's detection goals, measured on randomised attack families and benign look-alikes.

    .venv/bin/python bench/detection_goals.py [--runs 20] [--seed 1]

Each family draws its parameters per run (tool encoding, record types, mode, timing, jitter,
ports, counts, domains) and builds the events a sensor would produce: flows as the capture's
flow documents, auth lines through the real sshd parsers, DNS transactions as the capture's
DNS documents. Every registered detector runs with default settings on each stream (one
instance per detector, as for one partition). A run is detected when an alert of the family's
category names the actor (source or entity); "to detect" counts what the goal counts (probes,
failures, periods, seconds after the monitor started). Benign families count alerts naming
anyone. The generators are ours, written from the tools' documented encodings; they are not a
substitute for public captures, only a like-for-like before/after on the same draws.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.syslog import document, programs, rfc  # noqa: E402
from collectors.syslog.document import Origin  # noqa: E402
from detectors import registry  # noqa: E402
from watchkeeper import schema, timeutil  # noqa: E402
from watchkeeper.documents import FlowRecord, flow_document  # noqa: E402
from watchkeeper.networks import InternalNetworks  # noqa: E402

NETS = InternalNetworks()
T0 = 1_780_000_000.0
HEX, B32 = "0123456789abcdef", "abcdefghijklmnopqrstuvwxyz234567"
B64L = "abcdefghijklmnopqrstuvwxyz0123456789-_"       # base64 lower-cased in transit
ACTOR = "10.0.7.9"


def flow(i, t, src, dst, port, state="SF", proto=6, orig=300, resp=900, seconds=0.3):
    answered = state not in ("S0",)
    return flow_document(FlowRecord(
        uid=f"G{src}{i}", start=t, end=t + seconds, proto=proto, orig_ip=src,
        orig_port=30000 + i % 30000, resp_ip=dst, resp_port=port, orig_pkts=3,
        resp_pkts=3 if answered else 0, orig_bytes=orig if state in ("SF", "S1") else 0,
        resp_bytes=resp if state in ("SF", "S1") else 0, conn_state=state), "b", NETS)


def dns(i, t, name, qtype="A", rcode="NOERROR", answers=(), src=ACTOR):
    return {"@timestamp": timeutil.format(t),
            "event": {"id": f"g{src}{i}", "dataset": schema.DNS, "kind": "event"},
            "source": {"ip": src, "port": 40000 + i % 20000},
            "destination": {"ip": "10.0.0.53", "port": 53},
            "network": {"transport": "udp", "protocol": "dns"},
            "dns": {"question": {"name": name, "type": qtype}, "response_code": rcode,
                    "answers": [{"data": a} for a in answers]}}


def sshd(t, text):
    raw = f"<38>1 {timeutil.format(t)} srv1 sshd 812 - - {text}".encode()
    msg = rfc.parse(raw, t)
    return schema.validate(document.build(msg, raw, Origin("192.0.2.1", 514, "udp", t),
                                          programs.extract(msg)))


def rand(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def gaps(rng, period, jitter, n, t=T0):
    out = []
    for _ in range(n):
        out.append(t)
        t += period * rng.uniform(1 - jitter, 1 + jitter)
    return out


# --- DNS tunnels: (events, unit) ---------------------------------------------------------------
def dns_tunnel(rng):
    tool = rng.choice(["dnscat2", "iodine", "dns2tcp", "apt_a", "apt_txt", "hex_plain"])
    mode = rng.choice(["download", "upload", "idle"])
    domain = rng.choice([f"{rand(rng, 'abcdefghijklmnop', 7)}.com", f"cdn-{rng.randint(1, 99)}.net",
                         f"{rand(rng, 'klmnoprst', 5)}.corp.lan", f"upd{rng.randint(1, 9)}.info"])
    alphabet, types = {"dnscat2": (HEX, ["TXT", "CNAME", "MX"]), "iodine": (B32, ["NULL"]),
                       "dns2tcp": (B64L.replace("-", "").replace("_", ""), ["TXT"]),
                       "apt_a": (HEX + "ghijklmnopqrstuv", ["A"]), "apt_txt": (B32, ["TXT"]),
                       "hex_plain": (HEX, ["A"])}[tool]
    if mode == "idle":
        length, period, n = rng.randint(6, 20), rng.choice([1, 2, 5, 10, 30, 60, 120]), 60
    else:
        length, period, n = rng.randint(30, 150), rng.uniform(0.05, 0.5), 300
    rcode = "REFUSED" if domain.endswith(".lan") else rng.choice(["NOERROR", "NOERROR", "NXDOMAIN"])
    text = b"Meeting notes: budget, staff list, contract numbers. " * 200
    events = []
    for i, t in enumerate(gaps(rng, period, rng.uniform(0, 0.3), n)):
        if tool == "hex_plain":
            # a sequence number: a repeated name would be answered from the resolver's cache
            data = text[i * length // 2 % 5000:][:length // 2].hex() + f".{i:x}"
        else:
            data = rand(rng, alphabet, length)
        labels = ".".join(data[k:k + 63] for k in range(0, len(data), 63))
        if tool == "dnscat2" and rng.random() < 0.5:
            labels = f"{labels}.dnscat"
        qtype = rng.choice(types)
        answer = [rand(rng, HEX, 200 if mode == "download" else 16)] if qtype != "A" \
            else [f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.1"]
        events.append(dns(i, t, f"{labels}.{domain}", qtype, rcode,
                          answer if rcode == "NOERROR" else ()))
    return events, "queries", "dns_tunneling", f"{tool}/{mode}"


def dns_idle_rotated(rng):
    """An idle tunnel that rotates its domain: one short poll per period under the next of 5-13
    look-alike domains, unanswered or refused, sometimes retried, among the host's own look-ups
    (answered, plus a rare failing one such as wpad)."""
    domains = [f"{rand(rng, 'abcdefghijklmnopqrstuvwxyz0', rng.randint(5, 12))}."
               f"{rng.choice(['agency', 'services', 'life', 'stream', 'com', 'net', 'info'])}"
               for _ in range(rng.randint(5, 13))]
    style = rng.choice(["letters", "prefixed", "digits", "hex"])
    prefix, fixed = rand(rng, B32[:26], 4), f"{rng.randint(1, 999)}-{rng.randint(1, 99999)}"
    period = rng.choice([2, 5, 10, 30, 60, 300])
    rcode = rng.choice(["SERVFAIL", "NXDOMAIN", "REFUSED", None])
    types = rng.sample(["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "SOA", "NULL"], rng.randint(1, 7))
    events, i = [], 0
    for k, t in enumerate(gaps(rng, period, rng.uniform(0, 0.3), 40)):
        label = {"letters": rand(rng, B32[:26], rng.randint(6, 12)),
                 "prefixed": prefix + rand(rng, B32[:26], 5), "digits": fixed,
                 "hex": rand(rng, HEX, rng.randint(6, 16))}[style]
        name, qtype = f"{label}.{domains[k % len(domains)]}", types[k % len(types)]
        for retry in range(1 + (rng.random() < 0.5)):
            events.append(dns(i, t + 2.0 * retry, name, qtype, rcode)); i += 1
        if rng.random() < 0.3:       # the host's own look-ups, answered
            events.append(dns(i, t + rng.uniform(0, period), f"www.site{rng.randint(1, 50)}.com",
                              answers=["198.51.100.7"])); i += 1
        if rng.random() < 0.03:
            events.append(dns(i, t + rng.uniform(0, period), "wpad.corp.lan", rcode="NXDOMAIN"))
            i += 1
    events.sort(key=lambda e: e["@timestamp"])
    return events, "polls", "dns_tunneling", f"{style}/{period}s/{len(domains)} domains/{rcode}"


WORDS = ["office", "cloud", "mail", "news", "shop", "bank", "travel", "weather", "city",
         "health", "school", "sport", "video", "music", "map", "print", "data", "home", "tax",
         "gov", "water", "power", "bus", "rail", "post", "library", "court", "police", "park"]


def site(rng):
    """A plausible web or service name (real ones are words, not random letters)."""
    return f"{rng.choice(WORDS)}{rng.choice(['', '-', ''])}{rng.choice(WORDS)}" \
        f"{rng.choice(['', str(rng.randint(1, 99))])}.{rng.choice(['com', 'net', 'org', 'cn'])}"


def benign_failing_dns(rng):
    """Benign hosts whose look-ups fail: a resolver outage (each application retries its own
    domain on its own timer), a mail server's DNSBL look-ups, a monitor checking dead names in
    one burst per round, one dead name polled on a clock, browsing through a failing resolver."""
    kind = rng.choice(["outage", "dnsbl", "monitor", "dead_name", "browsing"])
    src, events = "10.0.1.51", []
    if kind == "outage":
        apps = [site(rng) for _ in range(6)]
        for a, app in enumerate(apps):
            period = rng.uniform(20, 120)
            events += [dns(a * 1000 + k, T0 + a * 3 + k * period, f"api.{app}", rcode="SERVFAIL",
                           src=src) for k in range(int(3600 / period))]
    elif kind == "dnsbl":
        zones = ["bl.spamcop.net", "b.barracudacentral.org", "dnsbl.sorbs.net",
                 "psbl.surriel.com", "bl.mailspike.net"]
        t = T0
        for m in range(150):
            ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            events += [dns(m * 10 + z, t + 0.01 * z, f"{ip}.{zone}", rcode="NXDOMAIN", src=src)
                       for z, zone in enumerate(zones)]
            t += rng.expovariate(1 / rng.choice([5, 20, 60]))
    elif kind == "monitor":
        dead = [f"old{k}.{site(rng)}" for k in range(rng.randint(5, 12))]
        period = rng.choice([30, 60, 300])
        events = [dns(r * 100 + k, T0 + r * period + 0.05 * k, name, rcode="NXDOMAIN", src=src)
                  for r in range(40) for k, name in enumerate(dead)]
    elif kind == "dead_name":
        events = [dns(k, T0 + 30 * k, "licence.vendor-gone.com", rcode="NXDOMAIN", src=src)
                  for k in range(60)]
    else:
        t = T0
        for k in range(300):
            t += rng.expovariate(1 / 8)
            events.append(dns(k, t, f"www.{site(rng)}", rcode="SERVFAIL",
                              src=src))
    events.sort(key=lambda e: e["@timestamp"])
    return events, "alerts", None, kind


# --- scans --------------------------------------------------------------------------------------
def scan(rng):
    kind = rng.choice(["vertical", "horizontal", "mixed", "udp"])
    gap = rng.choice([0.01, 0.1, 0.4, 1.0, 15.0, 120.0])
    open_share = rng.choice([0.0, 0.05, 0.15])
    proto = 17 if kind == "udp" else 6
    closed = "S0" if proto == 17 else rng.choice(["REJ", "S0"])
    ports = rng.sample(range(1, 10000), 200)
    events = []
    for i in range(200):
        host = f"10.0.2.{1 + (i % 200 if kind == 'horizontal' else i % 3 if kind == 'mixed' else 0)}"
        port = 445 if kind == "horizontal" else ports[i]
        state = "SF" if rng.random() < open_share else closed
        events.append(flow(i, T0 + i * gap * rng.uniform(0.8, 1.2), ACTOR, host, port, state, proto))
    events.sort(key=lambda e: e["@timestamp"])
    return events, "probes", "scan", f"{kind}/gap {gap:g}s"


# --- beacons --------------------------------------------------------------------------------------
def beacon(rng):
    period = rng.choice([2, 5, 10, 60, 300, 900, 3600])
    jitter = rng.uniform(0, 0.3)
    over = rng.choice(["http", "https", "dns"])
    size = rng.randint(150, 900)
    events = []
    for i, t in enumerate(gaps(rng, period, jitter, 40)):
        if over == "dns":
            events.append(dns(i, t, f"{rand(rng, HEX, 12)}.{rand(rng, HEX, 4)}.telemetry-x.com"))
        else:
            events.append(flow(i, t, ACTOR, "198.51.100.77", 443 if over == "https" else 80,
                               orig=size + rng.randint(-8, 8), resp=rng.randint(200, 2000)))
    return events, "periods", "beaconing", f"{over}/{period}s +-{jitter:.0%}"


# --- password guessing ------------------------------------------------------------------------
def brute_force(rng):
    kind = rng.choice(["guessing", "spraying", "distributed"])
    rate = rng.uniform(10, 25)                  # tries a minute
    events = []
    for i in range(60):
        t = T0 + i * 60 / rate * rng.uniform(0.7, 1.3)
        src = f"203.0.113.{10 + i}" if kind == "distributed" else "203.0.113.5"
        user = f"user{i}" if kind == "spraying" else rng.choice(["root", "admin"]) \
            if kind == "guessing" else "admin"
        port = 40000 + i // 3                  # MaxAuthTries 3: three tries a connection
        if kind == "spraying":
            events.append(sshd(t, f"Invalid user {user} from {src} port {port}"))
        events.append(sshd(t + 0.2, f"Failed password for {'invalid user ' if kind == 'spraying' else ''}"
                                    f"{user} from {src} port {port} ssh2"))
    events.sort(key=lambda e: e["@timestamp"])
    return events, "failures", "brute_force", f"{kind}/{rate:.0f} a minute"


# --- lateral movement on a monitor started two minutes earlier ---------------------------------
def lateral(rng):
    events = [flow(i, T0 + i * 2, f"10.0.1.{20 + i % 5}", "10.0.3.80", 443) for i in range(60)]
    services = rng.sample([445, 3389, 5985, 22, 135], rng.randint(1, 3))
    if services == [445]:
        services = [445, 3389]
    hosts = [f"10.0.3.{1 + h}" for h in range(rng.randint(2, 4))]
    t = T0 + 120
    for i, (h, p) in enumerate((h, p) for h in hosts for p in services):
        events.append(flow(1000 + i, t + i * rng.uniform(2, 20), ACTOR, h, p, seconds=20))
    return events, "seconds", "lateral_movement", f"{len(hosts)} hosts x {services}"


# --- benign ----------------------------------------------------------------------------------------
def benign(rng):
    kind = rng.choice(["cdn", "inventory", "poller", "browsing", "dead_servers"])
    events = []
    src = "10.0.1.50"
    if kind == "cdn":
        t = T0
        for i in range(80):
            t += rng.expovariate(1 / 20)
            events.append(dns(i, t,
                              f"d{rand(rng, B32[:26] + '0123456789', 13)}.cloudfront.net",
                              answers=["13.32.0.1"], src=src))
    elif kind == "inventory":
        for i in range(200):
            events.append(dns(i, T0 + i * 2, f"ws{i:05d}.corp.lan",
                              rcode="NXDOMAIN" if i % 3 == 0 else "NOERROR", src=src))
    elif kind == "poller":
        for i in range(120):
            events.append(dns(i, T0 + i * 30, f"{rng.choice(['api', 'status'])}.vendor.com", src=src))
    elif kind == "browsing":
        t = T0
        for i in range(200):
            t += rng.expovariate(1 / 30)
            events.append(flow(i, t, src, f"198.51.{i % 7}.{rng.randint(1, 9)}", 443,
                               orig=rng.randint(300, 3000)))
    else:
        for i in range(40):
            events.append(flow(i, T0 + i * 5, src, f"198.51.100.{i % 6 + 1}", 443, "S0"))
    events.sort(key=lambda e: e["@timestamp"])
    return events, "alerts", None, kind


FAMILIES = {"dns_tunnel": dns_tunnel, "dns_idle_rotated": dns_idle_rotated, "scan": scan,
            "beacon": beacon, "brute_force": brute_force, "lateral": lateral, "benign": benign,
            "benign_failing_dns": benign_failing_dns}


def first_detection(events, category):
    """(index of the event that raised it, event time) of the first matching alert, or Nones;
    for benign streams, the number of alerts."""
    detectors = registry.build()
    raised = 0
    for n, event in enumerate(events):
        t = timeutil.parse(event["@timestamp"])
        for det in detectors:
            if event["event"]["dataset"] not in det.datasets:
                continue
            for alert in det.on_event(event, t) + det.on_timer(t):
                names = {alert.source_ip, *alert.related_ips, alert.entity.split("->")[0]}
                if category is None:
                    raised += 1
                elif alert.category == category and (ACTOR in names or category == "brute_force"):
                    return n, t
    return (raised, None) if category is None else (None, None)


def measure(family: str, runs: int, seed: int) -> dict:
    rng = random.Random(f"{family}-{seed}")
    found, costs, missed, false = 0, [], [], 0
    for _ in range(runs):
        events, unit, category, label = FAMILIES[family](rng)
        n, t = first_detection(events, category)
        if category is None:
            false += n
            continue
        if n is None:
            missed.append(label)
            continue
        found += 1
        start = timeutil.parse(events[0]["@timestamp"])
        actor_events = [e for e in events[:n + 1] if e.get("source", {}).get("ip") == ACTOR]
        tries = sum("Failed" in e.get("message", "") for e in events[:n + 1])
        polls = len({e["dns"]["question"]["name"] for e in actor_events
                     if e.get("dns", {}).get("response_code", "NOERROR") != "NOERROR"})
        costs.append({"queries": n + 1, "probes": n + 1, "failures": tries, "polls": polls,
                      "periods": n, "seconds": t - start}[unit]
                     if unit != "seconds" else t - timeutil.parse(actor_events[0]["@timestamp"]))
    return {"family": family, "runs": runs, "found": found, "costs": costs, "missed": missed,
            "false": false}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| family | runs | detected | to detect p50 | p95 | max | unit | alerts on benign |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    units = {"dns_tunnel": "queries", "dns_idle_rotated": "polls", "scan": "probes", "beacon": "periods",
             "brute_force": "failures", "lateral": "s after first admin session", "benign": "–",
             "benign_failing_dns": "–"}
    notes = []
    for family in FAMILIES:
        r = measure(family, args.runs, args.seed)
        c = sorted(r["costs"])
        p = (lambda q: f"{c[min(len(c) - 1, int(q * len(c)))]:.0f}") if c else (lambda q: "–")
        benign = family.startswith("benign")
        detected = "–" if benign else f"{r['found']}/{r['runs']}"
        print(f"| {family} | {r['runs']} | {detected} | {p(0.5)} | {p(0.95)} | "
              f"{f'{c[-1]:.0f}' if c else '–'} | {units[family]} | "
              f"{r['false'] if benign else '–'} |")
        notes += [f"- {family}: missed {m}" for m in r["missed"]]
    print()
    print("\n".join(notes) or "- nothing missed")


if __name__ == "__main__":
    main()
