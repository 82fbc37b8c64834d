"""Benchmark: `watchkeeper flows FILE --json` (the whole process) beside softflowd, in one run.

    .venv/bin/python bench/flows_json.py [--packets 2000000] [--captures synthetic,replay]

Captures (built once under /tmp/wk-flowsjson/, never in the repository):
  * synthetic: TCP sessions written here - 10 packets each (handshake, a request, four
    1400-byte answers, the close), ~100 k sessions per million packets, interleaved in time;
    the shape of a capture at a sensor (few records per packet, big packets).
  * replay: the shared captures (tests/data, or WATCHKEEPER_SHARED_DATA) replayed with
    shifted times until --packets (bench/capture.py's build).
Contenders, each a fresh process measured whole (wall time to exit, peak RSS from os.wait4):
  * ours:  `watchkeeper flows FILE --json`, stdout to a file under /tmp (lines counted)
  * meter: our flow meter alone (bench/capture.py's `ours` child: record columns, no
           documents): with ours, it gives the cost per flow document
  * softflowd: `softflowd -r FILE -d`, exporting NetFlow to a UDP port on loopback
  * write floor: `dd` writing as many bytes as our output to a file beside it (softflowd
           writes no file; on a VM whose page cache is dear this bounds what ours can reach)
Prints seconds, peak RSS, records, ours / softflowd as a speed ratio (softflowd seconds / our
seconds) and µs per document.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import capture as capture_bench  # noqa: E402

WORK = Path("/tmp/wk-flowsjson")
SESSION = 10                    # packets per synthetic TCP session


def _ip_header(total: int, ident: int, src: int, dst: int) -> bytes:
    head = struct.pack("!BBHHHBBHII", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
    words = struct.unpack("!10H", head)
    s = sum(words)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return head[:10] + struct.pack("!H", ~s & 0xFFFF) + head[12:]


def _session(i: int, t0: float) -> list[tuple[float, bytes]]:
    """One complete TCP session (client i % 5000 in 10.1/16 -> one of 200 servers in
    192.0.2/24 and 198.51.100/24 on port 443 or 80) as (time, Ethernet frame) pairs."""
    client = 0x0A010000 + i % 5000
    server = (0xC0000200 if i % 2 else 0xC6336400) + (i * 7919) % 100
    cport, sport = 1024 + (i // 5000) % 60000, 443 if i % 3 else 80
    c_seq, s_seq = (i * 2654435761) & 0xFFFFFFFF, (i * 40503) & 0xFFFFFFFF
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    plan = [(0, 0x02, 0), (1, 0x12, 0), (0, 0x10, 0), (0, 0x18, 300)] + \
        [(1, 0x18, 1400)] * 4 + [(0, 0x11, 0), (1, 0x11, 0)]
    seq, frames, t = [c_seq, s_seq], [], t0
    acked = [0, 0]
    for k, (side, flags, size) in enumerate(plan):
        src, dst = (client, server) if side == 0 else (server, client)
        ports = (cport, sport) if side == 0 else (sport, cport)
        ack = seq[1 - side] if flags != 0x02 else 0
        tcp = struct.pack("!HHIIBBHHH", *ports, seq[side] & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          0x50, flags, 65535, 0, 0)
        frames.append((t, eth + _ip_header(40 + size, i + k, src, dst) + tcp + b"x" * size))
        seq[side] += size + (1 if flags & 0x03 else 0)
        acked[side] += size
        t += 0.0004 + 0.0001 * (k % 3)
    return frames


def build_synthetic(path: Path, packets: int) -> int:
    """`packets` // 10 sessions, each starting 50 µs after the previous (so ~10 overlap)."""
    sessions = packets // SESSION
    rec = struct.Struct("<IIII")
    start = 1_700_000_000.0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        window: list[tuple[float, bytes]] = []
        for i in range(sessions):
            t0 = start + i * 50e-6
            window.extend(_session(i, t0))
            if len(window) > 4096:
                window.sort(key=lambda p: p[0])
                ready = [p for p in window if p[0] < t0]
                window = [p for p in window if p[0] >= t0]
                _write(out, rec, ready)
        window.sort(key=lambda p: p[0])
        _write(out, rec, window)
    return sessions * SESSION


def _write(out, rec, frames) -> None:
    for t, frame in frames:
        micros = round(t * 1e6)
        out.write(rec.pack(micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
        out.write(frame)


def capture(kind: str, packets: int) -> tuple[Path, int]:
    WORK.mkdir(exist_ok=True)
    path = WORK / f"{kind}-{packets}.pcap"
    count_file = path.with_suffix(".packets")
    if not path.exists() or not count_file.exists():
        started = time.perf_counter()
        written = build_synthetic(path, packets) if kind == "synthetic" \
            else capture_bench.build(path, packets)
        count_file.write_text(str(written))
        print(f"built {path} ({written} packets, {path.stat().st_size >> 20} MiB) in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path, int(count_file.read_text())


def run_process(cmd: list[str], stdout: Path) -> dict:
    """Wall time to exit and peak RSS (MiB) of one process, its stdout to a file."""
    with open(stdout, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return {"seconds": seconds, "rss_mib": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime}


def measure_ours(path: Path) -> dict:
    lines = WORK / "ours.jsonl"
    result = run_process([str(ROOT / ".venv" / "bin" / "watchkeeper"), "flows", str(path),
                          "--json"], lines)
    with open(lines, "rb") as fh:
        result["records"] = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24),
                                                                       b""))
    result["mib_out"] = lines.stat().st_size / 2**20
    lines.unlink()
    return result


def measure_write_floor(mib: float) -> dict:
    """`dd` writing as many bytes (zeros, 8 MiB blocks) to a new file in the same directory:
    what putting our output on this disk costs any tool, before a byte of JSON is made."""
    floor = WORK / "floor.out"
    result = run_process(["dd", "if=/dev/zero", f"of={floor}", "bs=8M",
                          f"count={max(1, round(mib / 8))}"], Path(os.devnull))
    floor.unlink()
    return result


def measure_meter(path: Path) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "capture.py"), "--child", "ours",
                          str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_documents(path: Path, sample: int) -> dict:
    """CPU time per flow document in a child process: the record columns of the whole
    capture are collected first (not timed), then encoded as JSON lines by the compiled
    writer, and (for the first `sample` rows) by the dict path - flow_documents + msgspec,
    what `flows --json` did before. Process CPU time, so other load on the machine inflates
    it less than wall time."""
    out = subprocess.run([sys.executable, __file__, "--documents-child", str(path), str(sample)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def documents_child(path: str, sample: int) -> None:
    import numpy as np
    from collectors.capture import iter_flow_columns
    from collectors.capture.documents.flowjson import flow_lines
    from collectors.capture.documents.flows import flow_documents
    from watchkeeper import codec
    from watchkeeper.networks import InternalNetworks
    networks = InternalNetworks()
    rows = np.concatenate([c.rows for c in iter_flow_columns([path])])
    b"".join(flow_lines(rows[:100], {}, "bench", networks))          # load the kernel
    started = time.process_time()
    size = sum(len(chunk) for chunk in flow_lines(rows, {}, "bench", networks))
    compiled = time.process_time() - started
    part = rows[:sample]
    started = time.process_time()
    for doc in flow_documents(part, {}, "bench", networks):
        codec.encode(doc)
    dicts = time.process_time() - started
    print(json.dumps({"records": len(rows), "bytes": size,
                      "compiled_us": compiled / len(rows) * 1e6,
                      "dict_us": dicts / max(1, len(part)) * 1e6}))


def median_run(measure, repeat: int) -> dict | None:
    """The run of median time among `repeat` runs (the machine is shared: single runs vary)."""
    runs = [measure() for _ in range(repeat)]
    if any(r is None for r in runs):
        return None
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--captures", default="synthetic,replay")
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender (median shown)")
    ap.add_argument("--sample", type=int, default=50_000,
                    help="rows encoded by the old dict path for the per-document comparison")
    ap.add_argument("--documents-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.documents_child:
        documents_child(args.documents_child[0], int(args.documents_child[1]))
        return
    from bench.machine import machine, machine_line
    print(machine_line(machine(None, kafka=False)))
    WORK.mkdir(exist_ok=True)
    capture_bench.DATA = WORK            # where measure_tool writes softflowd's log
    for kind in args.captures.split(","):
        path, packets = capture(kind, args.packets)
        load = os.getloadavg()
        soft = median_run(lambda: capture_bench.measure_softflowd(path, packets), args.repeat)
        ours = median_run(lambda: measure_ours(path), args.repeat)
        meter = median_run(lambda: measure_meter(path), args.repeat)
        floor = median_run(lambda: measure_write_floor(ours["mib_out"]), args.repeat)
        docs = measure_documents(path, args.sample)
        print(f"\n{kind}: {path.name}, {packets} packets, {path.stat().st_size / 2**20:.0f} MiB;"
              f" load average {load[0]:.1f} (machine shared with 7 other engineers); "
              f"median of {args.repeat} runs each")
        print(f"  ours `watchkeeper flows FILE --json`: {ours['seconds']:.2f} s "
              f"(CPU {ours['cpu_s']:.2f} s), {ours['rss_mib']:.0f} MiB peak, "
              f"{ours['records']} documents ({ours['mib_out']:.0f} MiB of JSON)")
        print(f"  writing as many bytes to a file here (dd, 8 MiB blocks): "
              f"{floor['seconds']:.2f} s (CPU {floor['cpu_s']:.2f} s)")
        print(f"  our meter alone (no documents, in-process time): {meter['seconds']:.2f} s, "
              f"{meter['flows']} records")
        print(f"  per flow document, CPU: compiled JSON lines {docs['compiled_us']:.2f} µs; "
              f"dict + msgspec (before) {docs['dict_us']:.2f} µs "
              f"({docs['dict_us'] / docs['compiled_us']:.1f}× less)")
        if soft is None:
            print("  softflowd: not measured")
            continue
        print(f"  softflowd -r FILE -d: {soft['seconds']:.2f} s (CPU {soft['cpu_s']:.2f} s), "
              f"{soft['rss_mib']:.0f} MiB peak")
        print(f"  ours ÷ softflowd (speed = softflowd time / ours): wall "
              f"{soft['seconds'] / ours['seconds']:.2f}×, CPU {soft['cpu_s'] / ours['cpu_s']:.2f}×")


if __name__ == "__main__":
    main()
