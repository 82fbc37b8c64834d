"""Benign background traffic of the lab: the hosts that must never be named in an alert.

Each stream is an ordinary task (browsing, file downloads, DNS lookups through the lab
resolver, key-based ssh logins, a nightly-style backup) repeated at irregular (exponential)
gaps, so nothing benign is periodic; each counts its successes and failures for the report.
"""
from __future__ import annotations

import random
import threading
import zlib
from pathlib import Path

from . import services as svc
from .topology import Lab

SERVERS = {"web": "10.77.1.10", "ssh": "10.77.1.11", "dns": "10.77.1.12",
           "backup": "10.77.1.13", "files": "10.77.1.14"}
CLIENTS = {"c1": "10.77.2.11", "c2": "10.77.2.12", "c3": "10.77.2.13"}
EXTERNAL_SERVERS = {"xweb": "198.51.100.10", "xsite": "198.51.100.30", "xdns": "198.51.100.53"}


def start_background(lab: Lab, ssh_key: Path, stop: threading.Event,
                     stats: dict[str, list[int]], threads: list[threading.Thread]) -> int:
    """Start every stream; returns how many. `stats[name]` becomes [ok, failed]."""
    rng = random.Random(7)

    def web_browsing(client):
        pages = ["/", "/app.js", "/index.html"]
        return lambda: lab.exec(client, "curl", "-s", "-m", "5", "-o", "/dev/null",
                                "-w", "%{http_code}",
                                f"http://{SERVERS['web']}{rng.choice(pages)}",
                                timeout=10).stdout == "200"

    def internet_browsing(client):
        return lambda: lab.exec(client, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w",
                                "%{http_code}", f"http://{EXTERNAL_SERVERS['xsite']}/",
                                timeout=10).stdout == "200"

    def files(client):
        return lambda: lab.exec(client, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w",
                                "%{http_code}", f"http://{SERVERS['files']}/report.pdf",
                                timeout=15).stdout == "200"

    def lookups(client):
        names = [f"{n}.{svc.LAB_ZONE}" for n in (*SERVERS, *CLIENTS)] + \
            ["www.news-site.example", "cdn.news-site.example"]
        return lambda: svc.dig(lab, client, SERVERS["dns"], rng.choice(names)).returncode == 0

    def ssh_session(client):
        return lambda: svc.ssh_login(lab, client, SERVERS["ssh"], ssh_key).stdout \
            .strip() == "lab-ok"

    def backup():
        # the nightly backup: files -> backup over iperf3, 120 MB at 80 Mbit/s
        out = lab.exec("files", "iperf3", "-c", SERVERS["backup"], "-n", "120M", "-b", "80M",
                       "-J", timeout=60)
        return out.returncode == 0

    streams = [("c1 web", web_browsing("c1"), 2.0), ("c2 web", web_browsing("c2"), 3.0),
               ("c1 internet", internet_browsing("c1"), 7.0),
               ("c3 internet", internet_browsing("c3"), 9.0),
               ("c3 file server", files("c3"), 6.0),
               ("c2 dns", lookups("c2"), 2.0), ("c1 dns", lookups("c1"), 4.0),
               ("c3 ssh", ssh_session("c3"), 15.0), ("c1 ssh", ssh_session("c1"), 25.0),
               ("backup iperf3", backup, 150.0)]
    for name, action, mean in streams:
        stats[name] = [0, 0]
        thread = threading.Thread(target=_loop, args=(name, action, mean, stop, stats),
                                  name=f"lab-bg-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    return len(streams)


def _loop(name, action, mean, stop: threading.Event, stats: dict[str, list[int]]) -> None:
    # A stable seed (str hash() changes with every process): the same benign gaps every run,
    # so a lab verdict can be reproduced.
    rng = random.Random(zlib.crc32(name.encode()))
    first = True
    while not stop.is_set():
        # irregular (exponential) gaps, so benign traffic is not periodic
        if not first and stop.wait(min(mean * 4, rng.expovariate(1 / mean))):
            return
        first = False
        try:
            ok = action()
        except Exception:  # noqa: BLE001 - a timeout counts as a failure, keep going
            ok = False
        stats[name][0 if ok else 1] += 1
