"""Benchmark: pcap -> flows throughput, beside the raw read ceiling and softflowd, in one run.

    .venv/bin/python bench/capture.py [--packets 1500000] [--keep]

Builds a big pcap (git-ignored `bench/.data/`) by replaying the captures in tests/data (or in
WATCHKEEPER_SHARED_DATA) with shifted timestamps, then times, each in a fresh subprocess (so
peak RSS is per contender):
  * raw:       a Python loop that only iterates the pcap records (struct, no parsing)
  * ours:      collectors.capture.iter_flow_columns (the compiled flow table's record
               columns: the flow meter alone, as softflowd/argus meter before exporting)
  * ours+documents: Capture.documents (one ECS flow document per record, as published)
  * softflowd: `softflowd -r FILE -d` (offline mode)
  * argus:     `argus -r FILE -w /dev/null` (flow records, discarded)
  * tshark:    `tshark -r FILE -q -z conv,tcp -z conv,udp` (conversation tables)
and prints packets/s, ratios and peak RSS (MiB). The peers come from
deploy/local/bench-packages.txt (`make bench` installs them); a missing one is reported, not
faked. Live capture: bench/live_capture.py.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
sys.path.insert(0, str(ROOT))


def shared_captures() -> list[Path]:
    from tests.datafiles import DATA, captures
    return captures(Path(os.environ.get("WATCHKEEPER_SHARED_DATA") or DATA))


def build(path: Path, target: int) -> int:
    """Replay shared captures (Ethernet only, each < 1 day long) until `target` packets."""
    from collectors.capture.sources.pcap import open_records
    sources = []
    for cap in shared_captures():
        recs = [(float(b.ts[i]), bytes(b.data[b.offset[i]:b.offset[i] + b.caplen[i]]),
                 int(b.wirelen[i])) for b in open_records(str(cap)) for i in range(len(b))
                if b.linktype[i] == 1]
        if recs and recs[-1][0] - recs[0][0] < 86400:
            sources.append(recs)
    written, clock = 0, 1_600_000_000.0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while written < target:
            for recs in sources:
                t0 = recs[0][0]
                for ts, frame, wire in recs:
                    t = clock + (ts - t0)
                    sec = int(t)
                    out.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), wire))
                    out.write(frame)
                written += len(recs)
                clock += (recs[-1][0] - t0) + 1.0
    return written


def run_raw(path: str) -> dict:
    """The ceiling of a Python record loop: 8 MiB chunks, unpack each header, nothing else."""
    hdr = struct.Struct("<IIII")
    n, carry = 0, b""
    with open(path, "rb") as fh:
        fh.read(24)
        while True:
            block = fh.read(8 << 20)
            if not block:
                break
            data = carry + block
            off, size = 0, len(data)
            while off + 16 <= size:
                caplen = hdr.unpack_from(data, off)[2]
                if off + 16 + caplen > size:
                    break
                off += 16 + caplen
                n += 1
            carry = data[off:]
    return {"packets": n}


def run_ours(path: str) -> dict:
    """The flow meter: pcap -> decoded packets -> compiled flow table -> record columns
    (what softflowd and argus do before they export)."""
    from collectors.capture import CaptureStats, iter_flow_columns
    stats = CaptureStats()
    count = sum(len(columns) for columns in iter_flow_columns([path], stats=stats))
    return {"packets": stats.packets, "flows": count, "slow_path": stats.slow_path}


def run_ours_documents(path: str) -> dict:
    """The same, plus one ECS flow document per record (what the pipeline publishes to
    wk.events), built from the record rows in bulk."""
    from collectors.capture import Capture, CaptureStats, file_batches
    from watchkeeper.networks import InternalNetworks
    stats = CaptureStats()
    docs = Capture(file_batches([path], stats), stats=stats).documents("bench", InternalNetworks())
    count = sum(1 for _ in docs)
    return {"packets": stats.packets, "flows": count, "slow_path": stats.slow_path}


def child(mode: str, path: str) -> None:
    if mode != "raw":
        from collectors.capture.kernels.warm import warm
        warm()      # load the compiled kernels from numba's cache (make install builds it)
    start = time.perf_counter()
    result = {"raw": run_raw, "ours": run_ours, "ours+documents": run_ours_documents}[mode](path)
    result["seconds"] = time.perf_counter() - start
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_softflowd(path: Path, packets: int) -> dict | None:
    """softflowd offline (`-r FILE -d`: read the file in the foreground, exit at EOF)."""
    exe = shutil.which("softflowd") or "/usr/sbin/softflowd"
    # softflowd 1.1.0 (Debian) never exits after EOF when the control socket path (-c) is
    # longer than 12 characters (found by bisecting: /tmp/abcdefg exits in ~2 s,
    # /tmp/abcdefgh waits on a socket forever), so the socket gets a short name.
    tmp = Path(tempfile.mkdtemp(prefix="wk-softflowd-"))
    ctl = Path(f"/tmp/wk{os.getpid() % 100000:05d}")
    ctl.unlink(missing_ok=True)
    # -n: export to the discard port on loopback (UDP: nothing listens, nothing waits).
    try:
        return measure_tool("softflowd", [exe, "-r", str(path), "-d", "-c", str(ctl), "-p",
                                          str(tmp / "pid"), "-n", "127.0.0.1:9", "-m", "500000"],
                            packets, timeout=120, done_when="pcap EOF")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        ctl.unlink(missing_ok=True)


def measure_tool(name: str, cmd: list[str], packets: int, timeout: float = 300,
                 done_when: str | None = None) -> dict | None:
    """A peer tool over the same file, run as an argument list (no shell) with its output to
    a file: wall time to exit and peak RSS from its rusage (os.wait4). A tool that is
    missing, fails, hangs, or does not print `done_when` is reported and not measured."""
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        print(f"{name}: {cmd[0]} not installed (deploy/local/bench-packages.txt); not measured",
              file=sys.stderr)
        return None
    log = DATA / f"{name}.log"
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_default_signals)
        status, usage = _wait4(proc.pid, timeout=timeout)
        seconds = time.perf_counter() - start
    if status is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"{name} did not finish within {timeout:.0f} s; not measured", file=sys.stderr)
        return None
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if code != 0 or (done_when and done_when not in text):
        print(f"{name} failed (exit {code}); not measured:\n{text[-2000:]}", file=sys.stderr)
        return None
    return {"packets": packets, "seconds": seconds, "rss_mib": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime}


def _wait4(pid: int, timeout: float):
    """(wait status, rusage) of child `pid`, or (None, None) if it is still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        time.sleep(0.005)
    return None, None


def _default_signals() -> None:
    # softflowd ends offline mode by signalling itself; a background parent may have left
    # SIGINT ignored (inherited across exec), which makes it wait forever.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_500_000)
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / ".gitignore").write_text("*\n")
    path = DATA / f"replay-{args.packets}.pcap"
    if not path.exists():
        print(f"building {path} ...", flush=True)
        build(path, args.packets)
    size = path.stat().st_size / 2**20
    results = {"raw": measure("raw", path), "ours": measure("ours", path),
               "ours+documents": measure("ours+documents", path)}
    packets = results["raw"]["packets"]
    peers = {"softflowd": measure_softflowd(path, packets),
             "argus": measure_tool("argus", ["argus", "-r", str(path), "-w", "/dev/null"],
                                   packets),
             "tshark": measure_tool("tshark", ["tshark", "-r", str(path), "-q", "-z",
                                               "conv,tcp", "-z", "conv,udp"], packets)}
    results.update({name: res for name, res in peers.items() if res})
    from bench.machine import machine, machine_line
    print(machine_line(machine(None, kafka=False)))
    print(f"file {path.name}: {results['raw']['packets']} packets, {size:.0f} MiB")
    rates = {k: v["packets"] / v["seconds"] for k, v in results.items()}
    for name, res in results.items():
        print(f"{name:14} {rates[name] / 1e6:7.3f} M pkts/s  {res['seconds']:7.2f} s  "
              f"peak RSS {res['rss_mib']:7.1f} MiB  {json.dumps(res)}")
    for ours in ("ours", "ours+documents"):
        print(f"{ours} / raw loop : {rates[ours] / rates['raw']:.2f}x")
        for peer in ("softflowd", "argus", "tshark"):
            if peer in rates:
                print(f"{ours} / {peer:9}: {rates[ours] / rates[peer]:.2f}x")


if __name__ == "__main__":
    main()
