"""Hostile input for a running `watchkeeper run` (issue 9): random and half-valid NetFlow/IPFIX
datagrams and garbage syslog lines over UDP and TCP, on loopback, then what it did to the
process: alive, /metrics series per family, peak memory (VmHWM) and log volume.

Shared by tests/integration/test_hostile_input.py (a bounded count) and bench/hostile.py
(10^6). Not a test module itself.
"""
from __future__ import annotations

import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s", re.M)


# -- what to send ----------------------------------------------------------------------------
def _v9(rng: random.Random) -> bytes:
    """A v9 header (random domain) with a template set, an options template announcing a
    sampling rate, its options record, and a data set with random bytes."""
    domain, tid = rng.getrandbits(32), 256 + rng.randrange(2000)
    template = struct.pack("!HHHH", tid, 3, 8, 4) + struct.pack("!HHHH", 12, 4, 7, 2)
    opt_tid = tid + 1
    options = struct.pack("!HHH", opt_tid, 4, 4) + struct.pack("!HHHH", 1, 4, 34, 4)
    data_tid = tid if rng.random() < 0.02 else rng.getrandbits(16)   # mostly not a template
    sets = (struct.pack("!HH", 0, 4 + len(template)) + template
            + struct.pack("!HH", 1, 4 + len(options) + 2) + options + b"\0\0"
            + struct.pack("!HHII", opt_tid, 12, 0, 1 + rng.randrange(1 << 16))
            + struct.pack("!HH", data_tid, 4 + 40) + rng.randbytes(40))
    header = struct.pack("!HHIIII", 9, 4, rng.getrandbits(32), int(time.time()),
                         rng.getrandbits(32), domain)
    return header + sets


def _ipfix(rng: random.Random) -> bytes:
    """IPFIX with a correct length, random domain and template ids, random set contents."""
    body = b""
    for _ in range(rng.randrange(1, 4)):
        set_id = rng.choice((2, 3, 256 + rng.randrange(4000), rng.getrandbits(16)))
        payload = rng.randbytes(rng.randrange(0, 120))
        body += struct.pack("!HH", set_id, 4 + len(payload)) + payload
    header = struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), rng.getrandbits(32),
                         rng.getrandbits(32))
    return header + body


def _v5(rng: random.Random) -> bytes:
    count = rng.randrange(1, 31) if rng.random() < 0.02 else rng.getrandbits(16)
    return struct.pack("!HH", 5, count) + rng.randbytes(20 + 48 * rng.randrange(0, 31))


def netflow_datagram(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.01:
        return rng.randbytes(rng.randrange(9000, 65507))  # as large as UDP allows
    if pick < 0.4:
        return rng.randbytes(rng.randrange(0, 1400))      # any "version" at all
    if pick < 0.6:
        return _v9(rng)
    if pick < 0.85:
        return _ipfix(rng)
    return _v5(rng)


def syslog_line(rng: random.Random) -> bytes:
    """Garbage, near-syslog and oversized lines; never a LF inside (TCP framing is LF)."""
    pick = rng.random()
    if pick < 0.5:
        return rng.randbytes(rng.randrange(0, 300)).replace(b"\n", b" ")
    if pick < 0.8:
        pri = rng.choice((str(rng.randrange(0, 2000)), "", "x", "-1"))
        return (f"<{pri}>{rng.choice(('1 ', ''))}{rng.getrandbits(64):x} "
                f"{rng.randbytes(8).hex()}[{rng.randrange(1 << 20)}]: ").encode() \
            + rng.randbytes(rng.randrange(0, 200)).replace(b"\n", b" ")
    if pick < 0.98:
        return f"{rng.randrange(10 ** 6)} <13>1 - - - - - - {'x' * rng.randrange(50)}".encode()
    return b"A" * rng.randrange(65_000, 70_000)          # past MAX_MESSAGE


# -- how to send ----------------------------------------------------------------------------
@dataclass
class Sent:
    netflow_udp: int = 0
    syslog_udp: int = 0
    syslog_tcp: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.netflow_udp + self.syslog_udp + self.syslog_tcp


def _blast_udp(port: int, count: int, make, seed: int, deadline: float) -> int:
    rng = random.Random(seed)
    pool = [make(rng) for _ in range(min(count, 4096))]   # bytes made once, sent many times
    mutate = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            data = pool[i % len(pool)]
            if i >= len(pool) and data:               # keep values fresh: new domains, versions
                mutate = (mutate + 1) % len(data)
                data = data[:mutate] + bytes([rng.getrandbits(8)]) + data[mutate + 1:]
                if len(data) >= 20 and data[:2] in (b"\0\x09", b"\0\x0a"):
                    off = 16 if data[1] == 9 else 12
                    data = data[:off] + rng.randbytes(4) + data[off + 4:]
            try:
                sock.sendto(data, ("127.0.0.1", port))
            except OSError:
                pass                                 # ENOBUFS on a full queue: sent as fast as allowed
            if i % 1024 == 0 and time.monotonic() > deadline:
                return i + 1
    return count


def _stream_tcp(port: int, count: int, seed: int, deadline: float) -> int:
    rng = random.Random(seed)
    pool = [syslog_line(rng) + b"\n" for _ in range(min(count, 4096))]
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        while sent < count and time.monotonic() < deadline:
            chunk = [pool[(sent + i) % len(pool)] for i in range(min(512, count - sent))]
            sock.sendall(b"".join(chunk))
            sent += len(chunk)
    return sent


def send_all(netflow_port: int, syslog_port: int, netflow: int, syslog_udp: int,
             syslog_tcp: int, budget_s: float, seed: int = 9) -> Sent:
    """Send the three streams at once, each as fast as loopback allows, stopping at budget_s."""
    sent, deadline = Sent(), time.monotonic() + budget_s
    jobs = {"netflow_udp": lambda: _blast_udp(netflow_port, netflow, netflow_datagram, seed,
                                              deadline),
            "syslog_udp": lambda: _blast_udp(syslog_port, syslog_udp, syslog_line, seed + 1,
                                             deadline),
            "syslog_tcp": lambda: _stream_tcp(syslog_port, syslog_tcp, seed + 2, deadline)}
    threads = [threading.Thread(target=lambda n=n, j=j: setattr(sent, n, j()), daemon=True)
               for n, j in jobs.items()]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(budget_s + 60)
    sent.seconds = time.monotonic() - start
    return sent


# -- the process under attack -----------------------------------------------------------------
@dataclass
class Target:
    proc: subprocess.Popen
    api: str
    syslog_port: int
    netflow_port: int
    log_path: Path
    metrics: list[str] = field(default_factory=list)

    def series(self) -> dict[str, int]:
        """Series per metric family (name without _total/_created/_bucket… suffixes)."""
        text = httpx.get(f"{self.api}/metrics/", timeout=10).text
        counts: dict[str, int] = {}
        for name, _labels in _SERIES.findall(text):
            family = re.sub(r"_(total|created|bucket|count|sum)$", "", name)
            counts[family] = counts.get(family, 0) + 1
        return counts

    def value(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.api}/metrics/", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def memory_kib(self) -> dict[str, int]:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {key: int(re.search(rf"^{key}:\s+(\d+)", status, re.M).group(1))
                for key in ("VmRSS", "VmHWM")}

    def log_lines(self) -> int:
        with self.log_path.open("rb") as fh:
            return sum(1 for _ in fh)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP (syslog listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
                    return port
            except OSError:
                continue


def start_target(workdir: Path, extra_config: str = "") -> Target:
    """`watchkeeper run` on the embedded bus and SQLite in `workdir`, on free ports."""
    api, syslog_port, netflow_port = free_port(), free_port(), free_port()
    config = workdir / "wk.yaml"
    config.write_text(f"data_dir: {workdir / 'state'}\nstatus_seconds: 1\n{extra_config}")
    log_path = workdir / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run", "--config", str(config),
             "--port", str(api), "--syslog-port", str(syslog_port),
             "--netflow-port", str(netflow_port), "--store", f"sqlite:///{workdir}/wk.db"],
            cwd=ROOT, env={**os.environ, "WATCHKEEPER_BUS": "memory://"},
            stdout=log, stderr=subprocess.STDOUT)
    target = Target(proc, f"http://127.0.0.1:{api}", syslog_port, netflow_port, log_path)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"watchkeeper run exited {proc.returncode}: "
                               f"{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{target.api}/health", timeout=2).status_code == 200:
                return target
        except httpx.TransportError:
            pass
        time.sleep(0.2)        # polling for start-up, bounded by the deadline
    proc.kill()
    raise RuntimeError("watchkeeper run did not answer /health within 120 s")


def wait_quiet(target: Target, deadline_s: float = 120.0) -> float:
    """Until the collectors' record counters stop moving (the input has been handled)."""
    start = end = time.monotonic()
    end += deadline_s
    last = -1.0
    while time.monotonic() < end:
        now = target.value("watchkeeper_records_total")
        if now == last:
            break
        last = now
        time.sleep(2.0)        # the counters move while queued input is parsed
    return time.monotonic() - start


def stop_target(target: Target) -> int:
    target.proc.terminate()
    try:
        return target.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        target.proc.kill()
        return target.proc.wait()
