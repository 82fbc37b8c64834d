"""The attack lab as one session-scoped range: topology, services, the monitor, benign
background traffic; scenarios run on demand, one after another, and the report is written at
the end (tests/lab/last-report.md)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.required import unavailable

from . import services as svc
from .background import CLIENTS, EXTERNAL_SERVERS, SERVERS, start_background
from .families import FAMILY_ATTACKERS
from .report import write_report
from .scenarios import ATTACKERS, SCENARIOS, Scenario
from .topology import MIRROR, Lab, LabError

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
INTERNAL = ["10.77.0.0/16"]
TOOLS = ["ip", "tc", "ss", "ethtool", "ping", "ssh-keygen", "ssh", "/usr/sbin/sshd", "nginx",
         "dnsmasq", "iperf3", "nmap", "masscan", "hping3", "hydra", "slowhttptest", "curl",
         "dig", "logger"]

ADMIN_SSH_HOSTS = ("web", "dns", "backup", "files")
# The lab lives for minutes, production for months: admin pairs are learned for the first
# minute instead of the first week (detectors.lateral_movement.learning_seconds).
MONITOR_DETECTORS = {"lateral_movement": {"learning_seconds": 60}}


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def registered_categories() -> dict[str, str]:
    """category -> detector name(s), for the detectors the monitor will run (brute_force has
    two: brute_force and account_attack)."""
    from detectors import registry
    names: dict[str, str] = {}
    for name, cls in registry.available().items():
        names[cls.category] = f"{names[cls.category]}, {name}" if cls.category in names else name
    return names


@dataclass
class Result:
    scenario: Scenario
    status: str = "not run"            # detected | late | missed | no detector | tool failed
    started: float = 0.0               # wall clock
    ttd: float | None = None           # seconds from start to the first matching event.created
    alerts: list[dict] = field(default_factory=list)       # matching category
    other_alerts: list[dict] = field(default_factory=list)  # same attackers, other categories
    tool_rc: dict[str, int | None] = field(default_factory=dict)
    tool_tail: str = ""
    duration: float = 0.0


class Range:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.lab = Lab(workdir)
        self.base = ""
        self.monitor: subprocess.Popen | None = None
        self.monitor_log = workdir / "monitor.log"
        self.forwarder: svc.SyslogForwarder | None = None
        self.ssh_key: Path | None = None
        self.sshd_log: Path | None = None
        self.results: dict[str, Result] = {s.id: Result(s) for s in SCENARIOS}
        self.results_random: list = []        # randomised.Outcome, tests/lab/test_lab_random.py
        self.addresses_used: set[str] = set()  # by the randomised families' attackers
        self.categories = registered_categories()
        self.background_stop = threading.Event()
        self.background_threads: list[threading.Thread] = []
        self.background_stats: dict[str, list[int]] = {}     # name -> [ok, failed]
        self.timeline: list[str] = []
        self.mirror_check: dict = {}
        self.started_at = time.time()
        self.http = httpx.Client(timeout=10)

    # ---- bring-up -------------------------------------------------------------------------
    def build(self) -> None:
        t0 = time.monotonic()
        self.lab.create()
        for name, ip in {**SERVERS, **CLIENTS}.items():
            self.lab.add_host(name, ip, 16, "server" if name in SERVERS else "client")
        for name, ip in EXTERNAL_SERVERS.items():
            self.lab.add_host(name, ip, 24, "external-server")
        for name, ip in {**ATTACKERS, **FAMILY_ATTACKERS}.items():
            internal = ip.startswith("10.77.")
            self.lab.add_host(name, ip, 16 if internal else 24,
                              "attacker" if internal else "external-attacker")
        # the mirror must work before anything else means anything
        self.mirror_check = {"c1->xweb": self.lab.verify_mirror("c1", "xweb"),
                             "web->c2": self.lab.verify_mirror("web", "c2")}
        self.note(f"topology: {len(self.lab.hosts)} namespaces, mirror verified "
                  f"({time.monotonic() - t0:.1f}s)")
        self.start_services()
        self.start_monitor()

    def start_services(self) -> None:
        lab = self.lab
        svc.nginx(lab, "web")
        svc.nginx(lab, "files")
        svc.nginx(lab, "xweb", upload=True)
        svc.nginx(lab, "xsite")
        _, self.sshd_log, self.ssh_key = svc.sshd(lab, "ssh")
        for host in ADMIN_SSH_HOSTS:             # servers administered over ssh too
            svc.sshd(lab, host, label=f"sshd-{host}")
        svc.dnsmasq(lab, "xdns", {}, authoritative_for=[svc.TUNNEL_ZONE, "news-site.example"],
                    label="xdns")
        records = {f"{n}.{svc.LAB_ZONE}": ip for n, ip in {**SERVERS, **CLIENTS}.items()}
        svc.dnsmasq(lab, "dns", records, upstream=EXTERNAL_SERVERS["xdns"])
        svc.iperf3_server(lab, "backup", "iperf3-backup")
        # functional health: each service answers a real client request
        lab.wait_for("nginx web", lambda: "web ok" in lab.exec(
            "c1", "curl", "-s", "-m", "3", f"http://{SERVERS['web']}/").stdout)
        lab.wait_for("nginx xweb", lambda: "xweb ok" in lab.exec(
            "c1", "curl", "-s", "-m", "3", f"http://{EXTERNAL_SERVERS['xweb']}/").stdout)
        lab.wait_for("dnsmasq", lambda: SERVERS["web"] in svc.dig(
            lab, "c2", SERVERS["dns"], f"web.{svc.LAB_ZONE}").stdout)
        lab.wait_for("dnsmasq forwarding", lambda: EXTERNAL_SERVERS["xdns"] in svc.dig(
            lab, "c2", SERVERS["dns"], "www.news-site.example").stdout)
        lab.wait_for("sshd key login", lambda: svc.ssh_login(
            lab, "c3", SERVERS["ssh"], self.ssh_key).stdout.strip() == "lab-ok")
        self.note(f"services healthy: nginx x4, sshd x{1 + len(ADMIN_SSH_HOSTS)}, dnsmasq x2, "
                  "iperf3")

    def start_monitor(self) -> None:
        env = {**os.environ, "WATCHKEEPER_INTERNAL_NETWORKS": json.dumps(INTERNAL),
               "WATCHKEEPER_DATA_DIR": str(self.workdir / "var"),
               "WATCHKEEPER_DETECTORS": json.dumps(MONITOR_DETECTORS)}
        env.pop("WATCHKEEPER_BUS", None)
        env.pop("WATCHKEEPER_STORE", None)
        # The API answers only with credentials: an analyst key on the lab's store, made as
        # an operator would, before the monitor opens it.
        key = subprocess.run([sys.executable, "-m", "app.cli", "keys", "create", "lab",
                              "--role", "analyst", "--store", f"sqlite:///{self.workdir}/lab.db"],
                             env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        if key.returncode != 0:
            raise LabError(f"keys create failed: {key.stderr[-2000:]}")
        self.http.headers["X-API-Key"] = key.stdout.strip()
        # A port found free can be taken before the monitor binds it (seen once in CI: the
        # API port, "address already in use"); then the monitor is started on new ports.
        for attempt in range(3):
            port, syslog_port = _free_port(), _free_port()
            logged = len(self.lab.log("monitor"))
            try:
                self._spawn_monitor(env, port, syslog_port)
                break
            except LabError:
                if attempt == 2 or "address already in use" not in \
                        self.lab.log("monitor")[logged:]:
                    raise
                self.note(f"monitor ports {port}/{syslog_port} taken meanwhile; new ports")
        self.lab.wait_for("syslog listener", lambda: _tcp_open(syslog_port), deadline_s=30)
        self.forwarder = svc.SyslogForwarder(self.lab, self.sshd_log, syslog_port)
        self.syslog_port = syslog_port
        # benign hosts doing ordinary work all along (tests/lab/background.py)
        streams = start_background(self.lab, self.ssh_key, self.background_stop,
                                   self.background_stats, self.background_threads)
        self.note(f"benign background: {streams} streams")
        # the collector sees lab traffic: a flow between two lab hosts reaches the store
        self.lab.exec("c1", "curl", "-s", "-m", "3", "-o", "/dev/null",
                      f"http://{SERVERS['files']}/report.pdf")
        self.lab.wait_for(f"live flows from {MIRROR} in the store", self._have_lab_flows,
                          deadline_s=60, every=1)
        self.note(f"monitor up on {self.base} (syslog tcp/{syslog_port}); "
                  f"detectors registered: {sorted(self.categories.values())}")

    def _spawn_monitor(self, env: dict, port: int, syslog_port: int) -> None:
        self.monitor = self.lab.spawn(
            None, "monitor", sys.executable, "-m", "app.cli", "run",
            "--interface", MIRROR, "--store", f"sqlite:///{self.workdir}/lab.db",
            "--port", str(port), "--syslog-port", str(syslog_port), "--netflow-port", "0",
            env=env, cwd=str(ROOT))
        self.base = f"http://127.0.0.1:{port}"

        def healthy():
            if self.monitor.poll() is not None:
                raise LabError(f"monitor exited {self.monitor.returncode}: "
                               f"{self.lab.log('monitor')[-2000:]}")
            try:
                return self.http.get(f"{self.base}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        try:
            self.lab.wait_for("watchkeeper run /health", healthy, deadline_s=90, every=0.5)
        except LabError:
            if self.monitor.poll() is not None:
                raise LabError(f"monitor exited {self.monitor.returncode}: "
                               f"{self.lab.log('monitor')[-2000:]}") from None
            raise

    def _have_lab_flows(self) -> bool:
        r = self.http.get(f"{self.base}/api/v1/events",
                          params={"ip": SERVERS["files"], "limit": 1})
        return r.status_code == 200 and r.json().get("total", 0) > 0

    # ---- API ------------------------------------------------------------------------------
    def alerts(self, ip: str | None = None) -> list[dict]:
        items, cursor = [], None
        for _ in range(50):      # bounded pagination
            params = {"limit": 1000}
            if ip:
                params["ip"] = ip
            if cursor:
                params["cursor"] = cursor
            r = self.http.get(f"{self.base}/api/v1/alerts", params=params)
            r.raise_for_status()
            body = r.json()
            items += body.get("items", [])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return items

    # ---- scenarios ------------------------------------------------------------------------
    def run_scenario(self, sid: str) -> Result:
        result = self.results[sid]
        if result.status != "not run":
            return result
        s = result.scenario
        registered = s.category in self.categories
        if not registered and not os.environ.get("WATCHKEEPER_LAB_ALL"):
            result.status = "no detector"     # WATCHKEEPER_LAB_ALL=1 runs the tools anyway
            return result
        ips = {self.lab.hosts[h].ip for h in s.attackers}
        victim_ip = self.lab.hosts[s.victim].ip if s.victim else None
        self.settle()
        self.note(f"scenario {sid}: start")
        result.started = time.time()
        t0 = time.monotonic()
        procs = s.launch(self, s)
        labels = [label for label, p in self.lab.procs if any(p is q for q in procs)]
        verdict_by = t0 + s.deadline + 8       # time for the last alert to reach the store
        while True:
            now = time.monotonic()
            done = all(p.poll() is not None for p in procs)
            matching, other = self._matching(s, ips, victim_ip, result.started)
            in_time = [a for a in matching if a["_ttd"] <= s.deadline]
            if in_time and (done or now - t0 > 3):
                break          # detected: stop the tools early, the verdict is in
            if now > verdict_by and done:
                break
            if now - t0 > max(s.max_runtime, s.deadline + 8):
                break
            time.sleep(1)
        for p in procs:
            if p.poll() is None:
                self.lab.stop(p)
        result.duration = time.monotonic() - t0
        result.tool_rc = {lb: p.returncode for lb, p in zip(labels, procs)}
        result.tool_tail = "\n".join(f"[{lb}] " + self.lab.log(lb)[-600:] for lb in labels)
        matching, other = self._matching(s, ips, victim_ip, result.started)
        result.alerts, result.other_alerts = matching, other
        if matching:
            result.ttd = min(a["_ttd"] for a in matching)
        if not registered:
            result.status = "no detector"
        elif result.ttd is not None and result.ttd <= s.deadline:
            result.status = "detected"
        elif result.ttd is not None:
            result.status = "late"
        else:
            result.status = "missed"
        self.note(f"scenario {sid}: {result.status}"
                  + (f" in {result.ttd:.1f}s" if result.ttd is not None else "")
                  + f", tools {result.tool_rc}")
        return result

    def _matching(self, s: Scenario, ips: set[str], victim_ip: str | None, started: float):
        found: dict[str, dict] = {}
        for ip in ips:
            for a in self.alerts(ip=ip):
                found[a.get("event", {}).get("id") or id(a)] = a
        matching, other = [], []
        for a in found.values():
            src = (a.get("source") or {}).get("ip")
            dst = (a.get("destination") or {}).get("ip")
            cat = a.get("watchkeeper", {}).get("alert", {}).get("category")
            about_attacker = src in ips or (src is None and victim_ip and dst == victim_ip)
            if not about_attacker:
                continue
            a["_ttd"] = _parse_time(a["event"]["created"]) - started
            (matching if cat == s.category else other).append(a)
        return matching, other

    def settle(self, quiet_s: float = 2.0, cap_s: float = 10.0) -> None:
        """Let the pipeline catch up: wait until the alert count stops moving (bounded)."""
        end, last, stable_since = time.monotonic() + cap_s, None, time.monotonic()
        while time.monotonic() < end:
            try:
                total = self.http.get(f"{self.base}/api/v1/alerts", params={"limit": 1}) \
                    .json().get("total")
            except httpx.HTTPError:
                total = None
            if total != last:
                last, stable_since = total, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_s:
                return
            time.sleep(0.5)

    def benign_hosts(self) -> dict[str, str]:
        return {h.ip: f"{h.name} ({h.role})" for h in self.lab.hosts.values() if h.benign}

    def false_positives(self) -> list[dict]:
        benign = self.benign_hosts()
        return [a for a in self.alerts() if (a.get("source") or {}).get("ip") in benign]

    def note(self, text: str) -> None:
        line = f"[lab +{time.time() - self.started_at:6.1f}s] {text}"
        self.timeline.append(line)
        print(line, flush=True)

    # ---- teardown -------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.background_stop.set()
        for t in self.background_threads:
            t.join(timeout=70)
        if self.forwarder:
            self.forwarder.close()

    def stop_monitor(self) -> None:
        if self.monitor is not None and self.monitor.poll() is None:
            self.lab.stop(self.monitor, timeout=30)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def lab_range():
    why = None
    if os.geteuid() != 0:
        why = "the lab needs root (network namespaces, tc, raw sockets)"
    else:
        missing = [t for t in TOOLS if shutil.which(t) is None and not Path(t).exists()]
        if missing:
            why = (f"lab tools missing: {missing} (install deploy/local/lab-packages.txt)")
    if why:
        unavailable(why)
    workdir = Path(tempfile.mkdtemp(prefix="wk-lab-"))
    rng = Range(workdir)
    failure = None
    try:
        rng.build()
        yield rng
    except BaseException as exc:
        failure = exc
        raise
    finally:
        fps = []
        try:
            rng.shutdown()
            if rng.monitor is not None and rng.monitor.poll() is None:
                fps = rng.false_positives()
        except Exception as exc:  # noqa: BLE001 - the report still gets written
            rng.note(f"teardown: {exc!r}")
        rng.stop_monitor()
        try:
            text = write_report(rng, fps, HERE / "last-report.md", failure)
            print("\n" + text, flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"[lab] report failed: {exc!r}", flush=True)
        rng.http.close()
        rng.lab.teardown()
        if os.environ.get("WATCHKEEPER_LAB_KEEP"):
            print(f"[lab] work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
