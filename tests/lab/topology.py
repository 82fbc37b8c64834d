"""The lab's network: one Linux bridge, one network namespace per host, and a mirror port.

    ns wkl-<host> [eth0 10.77.x.y] ── veth ── wkp-<host> ─┐
                                                         ├─ bridge wklab0 (root namespace)
    ns wkl-<other> ...                ── wkp-<other> ────┘
    every wkp-* port: ingress qdisc + u32 match-all + mirred egress mirror -> wkmirror1,
    the peer of wkmirror0 (a veth pair: this kernel has no dummy driver), captured on wkmirror0

Each frame enters the bridge through exactly one port (the sender's), so mirroring every port's
ingress gives the collector each frame once. All addresses (10.77.0.0/16 inside, 198.51.100.0/24
and 203.0.113.0/24 "outside") exist only in these namespaces; every host has an on-link default
route, so everything is one L2 segment and nothing is routed anywhere else.

Processes started here run in their own session and are killed (by process group) at teardown,
even when the lab failed half-way; stale lab objects from a crashed earlier run are removed first.
"""
from __future__ import annotations

import ipaddress
import os
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# WATCHKEEPER_LAB_PREFIX (one letter, default none) renames every lab object, so a second lab
# (a bench, an engineer's single scenario) can run beside the main one without either removing
# the other's namespaces as stale.
_TAG = os.environ.get("WATCHKEEPER_LAB_PREFIX", "")[:1]
BRIDGE = f"wk{_TAG}lab0"
MIRROR = f"wk{_TAG}mirror0"   # the collector captures here (receive side of a veth pair)
MIRROR_TX = f"wk{_TAG}mirror1"  # tc mirrors into this end
NS_PREFIX = f"wk{_TAG}l-"
PORT_PREFIX = f"w{_TAG}-" if _TAG else "wkp-"   # interface names: 15 characters at most
LAB_NETS = [ipaddress.ip_network(n) for n in ("10.77.0.0/16", "198.51.100.0/24", "203.0.113.0/24")]


class LabError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} -> {proc.returncode}: {proc.stderr.strip()[:500]}")
    return proc


@dataclass
class Host:
    name: str          # short: the namespace is wkl-<name>, the bridge port wkp-<name>
    ip: str
    prefix: int
    role: str          # client | server | attacker | external-server | external-attacker
    mac: str = ""

    @property
    def ns(self) -> str:
        return NS_PREFIX + self.name

    @property
    def port(self) -> str:
        return PORT_PREFIX + self.name

    @property
    def benign(self) -> bool:
        return self.role in ("client", "server", "external-server")


@dataclass
class Lab:
    workdir: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    # ---- topology -------------------------------------------------------------------------
    def create(self) -> None:
        cleanup_stale()
        run("ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
            "mcast_snooping", "0")
        # br_netfilter is loaded on some hosts: keep the root namespace's iptables out of the lab.
        run("ip", "link", "set", BRIDGE, "type", "bridge", "nf_call_iptables", "0",
            "nf_call_ip6tables", "0", "nf_call_arptables", "0", check=False)
        run("ip", "link", "add", MIRROR, "type", "veth", "peer", "name", MIRROR_TX)
        for dev in (BRIDGE, MIRROR, MIRROR_TX):
            _no_ipv6(dev)
            run("ip", "link", "set", dev, "arp", "off")
            run("ip", "link", "set", dev, "up")

    def add_host(self, name: str, ip: str, prefix: int, role: str) -> Host:
        assert len(PORT_PREFIX + name) <= 15, name
        addr = ipaddress.ip_address(ip)
        assert any(addr in net for net in LAB_NETS), f"{ip} is outside the lab ranges"
        host = Host(name, ip, prefix, role)
        run("ip", "netns", "add", host.ns)
        self.hosts[name] = host   # registered before anything else can fail: teardown finds it
        for key in ("all", "default"):
            run("ip", "netns", "exec", host.ns, "sysctl", "-qw",
                f"net.ipv6.conf.{key}.disable_ipv6=1")
        run("ip", "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
            "netns", host.ns)
        _no_ipv6(host.port)
        run("ip", "link", "set", host.port, "master", BRIDGE)
        run("ip", "link", "set", host.port, "up")
        run("ip", "-n", host.ns, "link", "set", "lo", "up")
        run("ip", "-n", host.ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        run("ip", "-n", host.ns, "link", "set", "eth0", "up")
        run("ip", "-n", host.ns, "route", "add", "default", "dev", "eth0")   # one L2 segment
        host.mac = Path(f"/sys/class/net/{host.port}/address").read_text().strip()  # root side
        # mirror: everything this host sends into the bridge is copied to wkmirror0
        run("tc", "qdisc", "add", "dev", host.port, "handle", "ffff:", "ingress")
        run("tc", "filter", "add", "dev", host.port, "parent", "ffff:", "protocol", "all",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror",
            "dev", MIRROR_TX)
        # a real mirror port sees wire-sized frames, not 64 KiB TSO/GSO super-packets
        run("ip", "netns", "exec", host.ns, "ethtool", "-K", "eth0", "tso", "off", "gso", "off",
            "gro", "off", check=False)
        return host

    def teardown(self) -> None:
        errors = []
        for _name, proc in reversed(self.procs):
            try:
                _kill_group(proc)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                errors.append(str(exc))
        self.procs.clear()
        for host in list(self.hosts.values()):
            _kill_namespace_pids(host.ns)
            run("ip", "link", "del", host.port, check=False)
            run("ip", "netns", "del", host.ns, check=False)
        self.hosts.clear()
        for dev in (MIRROR, MIRROR_TX, BRIDGE):
            if os.path.exists(f"/sys/class/net/{dev}"):
                run("ip", "link", "del", dev, check=False)
        if errors:
            raise LabError("; ".join(errors))

    # ---- processes ------------------------------------------------------------------------
    def ns_cmd(self, host: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host].ns, *cmd]

    def exec(self, host: str, *cmd: str, timeout: float = 30, check: bool = False,
             **kw) -> subprocess.CompletedProcess:
        return run(*self.ns_cmd(host, *cmd), timeout=timeout, check=check, **kw)

    def spawn(self, host: str | None, label: str, *cmd: str, stdin=None,
              env: dict | None = None, cwd: str | None = None) -> subprocess.Popen:
        """Start a long-running process (in `host`'s namespace, or the root one for None);
        its output goes to <workdir>/logs/<label>.log; killed at teardown."""
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        full = self.ns_cmd(host, *cmd) if host else list(cmd)
        out = open(logs / f"{label}.log", "ab")
        try:
            proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=cwd)
        finally:
            out.close()
        self.procs.append((label, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10) -> None:
        _kill_group(proc, timeout)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def log(self, label: str) -> str:
        path = self.workdir / "logs" / f"{label}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- health ---------------------------------------------------------------------------
    def wait_listening(self, host: str, port: int, proto: str = "tcp",
                       deadline_s: float = 20, proc: subprocess.Popen | None = None,
                       label: str = "") -> None:
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if proc is not None and proc.poll() is not None:
                raise LabError(f"{label or host} exited ({proc.returncode}): "
                               f"{self.log(label)[-1500:]}")
            out = self.exec(host, "ss", flag, f"sport = :{port}", timeout=10).stdout
            if out.strip():
                return
            time.sleep(0.2)
        raise LabError(f"{label or host}: nothing listening on {proto}/{port} after "
                       f"{deadline_s}s: {self.log(label)[-1500:]}")

    def wait_for(self, what: str, check, deadline_s: float = 20, every: float = 0.3):
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            try:
                last = check()
                if last:
                    return last
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last = exc
            time.sleep(every)
        raise LabError(f"{what}: not ready after {deadline_s}s ({last!r})")

    # ---- mirror check ---------------------------------------------------------------------
    def verify_mirror(self, a: str, b: str, count: int = 3) -> dict:
        """Ping b from a and prove wkmirror0 carries both directions (echo request and reply)."""
        ha, hb = self.hosts[a], self.hosts[b]
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        sock.bind((MIRROR, 0))
        sock.settimeout(0.2)
        try:
            ping = self.exec(a, "ping", "-c", str(count), "-i", "0.2", "-W", "1", hb.ip,
                             timeout=20)
            if ping.returncode != 0:
                raise LabError(f"{a} cannot ping {b}: {ping.stdout[-500:]} {ping.stderr[-500:]}")
            seen = {"request": 0, "reply": 0}
            end = time.monotonic() + 3
            while time.monotonic() < end and min(seen.values()) < count:
                try:
                    frame = sock.recv(2048)
                except (TimeoutError, socket.timeout):
                    continue
                if len(frame) < 34 + 1 or frame[12:14] != b"\x08\x00" or frame[23] != 1:
                    continue
                src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
                icmp_type = frame[14 + (frame[14] & 0x0F) * 4]
                if (src, dst, icmp_type) == (ha.ip, hb.ip, 8):
                    seen["request"] += 1
                elif (src, dst, icmp_type) == (hb.ip, ha.ip, 0):
                    seen["reply"] += 1
        finally:
            sock.close()
        if seen["request"] < count or seen["reply"] < count:
            raise LabError(f"mirror {MIRROR} saw {seen} of {count} pings {a}->{b} each way")
        return seen


def _no_ipv6(dev: str) -> None:
    run("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", check=False)


def _kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


def _kill_namespace_pids(ns: str) -> None:
    """Whatever still runs inside one of *our* namespaces (a daemon that forked away)."""
    out = run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in out:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def cleanup_stale() -> None:
    """Remove lab objects a crashed earlier run left behind (only names this module creates)."""
    for ns in run("ip", "netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0].strip()
        if name.startswith(NS_PREFIX):
            _kill_namespace_pids(name)
            run("ip", "netns", "del", name, check=False)
    for dev in os.listdir("/sys/class/net"):
        if dev.startswith(PORT_PREFIX) or dev in (BRIDGE, MIRROR, MIRROR_TX):
            run("ip", "link", "del", dev, check=False)


def ip_to_int(ip: str) -> int:
    return struct.unpack("!I", socket.inet_aton(ip))[0]
