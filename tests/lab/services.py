"""Real services inside the lab's namespaces, each a child process with a temporary config,
started in the foreground (no systemd) and polled until healthy."""
from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

from .topology import Lab, LabError

LAB_ZONE = "lab.internal"
TUNNEL_ZONE = "t.cdn-sync.net"   # attacker zone; a tunnel needs a public suffix (lab traffic stays in its namespaces)
SSH_USER = "root"                        # key logins only (PermitRootLogin prohibit-password)


def nginx(lab: Lab, host: str, *, upload: bool = False) -> subprocess.Popen:
    ip = lab.hosts[host].ip
    root = lab.workdir / f"nginx-{host}"
    (root / "www").mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "logs"):
        (root / sub).mkdir(exist_ok=True)
    (root / "www" / "index.html").write_text(f"<html><body>{host} ok</body></html>\n")
    (root / "www" / "app.js").write_text("/* " + "x" * 40_000 + " */\n")
    (root / "www" / "report.pdf").write_bytes(bytes(range(256)) * 2048)     # 512 KiB
    (root / "www" / "beacon").write_text("{}\n")
    upload_conf = f"""
        location /upload/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_temp_path {root}/tmp/body;
            root {root};
        }}""" if upload else ""
    conf = root / "nginx.conf"
    conf.write_text(f"""
user root;
daemon off;
master_process on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    types {{ text/html html; application/javascript js; application/pdf pdf; }}
    server {{
        listen {ip}:80 backlog=4096;
        root {root}/www;
        {upload_conf}
    }}
}}
""")
    label = f"nginx-{host}"
    proc = lab.spawn(host, label, "nginx", "-c", str(conf), "-p", str(root), "-e",
                     str(root / "logs" / "error.log"))
    lab.wait_listening(host, 80, proc=proc, label=label)
    return proc


def sshd(lab: Lab, host: str, label: str = "sshd") -> tuple[subprocess.Popen, Path, Path]:
    """sshd on port 22 of `host`; returns (process, its log file, the client private key).
    Several instances (one per host) share the keys; each has its own config, log and pid."""
    ip = lab.hosts[host].ip
    d = lab.workdir / "sshd"
    d.mkdir(exist_ok=True)
    hostkey = d / "ssh_host_ed25519_key"
    userkey = d / "client_ed25519"
    for key in (hostkey, userkey):
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True, capture_output=True, timeout=30)
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    log = d / f"{label}.log"
    log.touch()
    conf = d / f"{label}_config"
    conf.write_text(f"""
Port 22
ListenAddress {ip}
HostKey {hostkey}
PidFile {d}/{label}.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
MaxAuthTries 6
MaxStartups 100:30:200
LoginGraceTime 20
UseDNS no
LogLevel INFO
SyslogFacility AUTH
Subsystem sftp internal-sftp
""")
    Path("/run/sshd").mkdir(exist_ok=True)      # privilege-separation directory sshd insists on
    test = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(conf)], capture_output=True,
                          text=True, timeout=30)
    if test.returncode != 0:
        raise LabError(f"sshd config: {test.stderr}")
    proc = lab.spawn(host, label, "/usr/sbin/sshd", "-D", "-f", str(conf), "-E", str(log))
    lab.wait_listening(host, 22, proc=proc, label=label)
    return proc, log, userkey


def ssh_login(lab: Lab, client: str, server_ip: str, key: Path, timeout: float = 20):
    return lab.exec(client, "ssh", "-i", str(key), "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                    f"{SSH_USER}@{server_ip}", "echo", "lab-ok", timeout=timeout)


def dnsmasq(lab: Lab, host: str, records: dict[str, str], *, upstream: str | None = None,
            authoritative_for: list[str] = (), label: str = "dnsmasq") -> subprocess.Popen:
    """Internal resolver (records of the lab zone, the rest forwarded to `upstream`), or the
    external "internet" DNS (answers `authoritative_for` zones, NXDOMAIN for the rest)."""
    ip = lab.hosts[host].ip
    d = lab.workdir / label
    d.mkdir(exist_ok=True)
    lines = [f"listen-address={ip}", "bind-interfaces", "no-resolv", "no-hosts", "port=53",
             f"pid-file={d}/dnsmasq.pid", f"log-facility={d}/queries.log", "log-queries",
             "user=root", "group=root", "cache-size=0", "no-negcache", "dns-forward-max=500"]
    lines += [f"host-record={name},{addr}" for name, addr in records.items()]
    if upstream:
        lines += [f"local=/{LAB_ZONE}/", f"server={upstream}"]
    for zone in authoritative_for:
        lines.append(f"address=/{zone}/{ip}")
    if not upstream:
        # the "internet": anything not ours does not exist
        lines += [f"local=/{tld}/" for tld in ("com", "net", "org", "info", "biz",
                                                "io", "ru", "xyz", "top")]
    conf = d / "dnsmasq.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = lab.spawn(host, label, "dnsmasq", "--keep-in-foreground", f"--conf-file={conf}")
    lab.wait_listening(host, 53, "udp", proc=proc, label=label)
    return proc


def dig(lab: Lab, client: str, server: str, name: str, qtype: str = "A",
        timeout: float = 10) -> subprocess.CompletedProcess:
    return lab.exec(client, "dig", f"@{server}", "+short", "+tries=1", "+time=2", name, qtype,
                    timeout=timeout)


def iperf3_server(lab: Lab, host: str, label: str) -> subprocess.Popen:
    proc = lab.spawn(host, label, "iperf3", "-s", "-B", lab.hosts[host].ip, "-p", "5201")
    lab.wait_listening(host, 5201, proc=proc, label=label)
    return proc


class SyslogForwarder:
    """Follows sshd's -E log in the root namespace and feeds each line to
    `logger --tcp --server 127.0.0.1 --port P -t sshd` (namespaces cannot reach the root
    namespace's 127.0.0.1, so the forwarder lives here)."""

    # sshd -E lines carry no syslog header; older builds prefix "sshd[pid]: "
    _PREFIX = re.compile(r"^(?:sshd(?:-session|-auth)?\[\d+\]: )?")

    def __init__(self, lab: Lab, log: Path, port: int, hostname: str = "lab-ssh"):
        self.lab, self.log, self.port, self.hostname = lab, log, port, hostname
        self.stop = threading.Event()
        self.lines = 0
        self.proc = lab.spawn(None, "logger", "logger", "--server", "127.0.0.1", "--port",
                              str(port), "--tcp", "--rfc5424=notq", "-t", "sshd",
                              "-p", "auth.info", stdin=subprocess.PIPE)
        self.thread = threading.Thread(target=self._follow, name="lab-syslog-fwd", daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        with open(self.log, "r", errors="replace") as fh:
            while not self.stop.is_set():
                line = fh.readline()
                if not line:
                    time.sleep(0.1)
                    continue
                msg = self._PREFIX.sub("", line.rstrip("\n"), count=1)
                if not msg:
                    continue
                try:
                    self.proc.stdin.write(msg.encode() + b"\n")
                    self.proc.stdin.flush()
                    self.lines += 1
                except (BrokenPipeError, ValueError):
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
