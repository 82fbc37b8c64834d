"""Playbook load on the production path: Kafka + Elasticsearch, `watchkeeper playbooks` worker
processes in one consumer group, and detection throughput measured beside it (issue 12).

Alerts are published to `<ns>.alerts` on Kafka at `--rate` per minute for `--minutes`; each
starts one run of a playbook with a webhook step (a local HTTP receiver counting every POST and
Idempotency-Key) and a comment step. `--workers` role processes (`python -m app.cli playbooks`)
consume them. Beside it, a probe process times the detectors over the same flow workload as
bench/detect.py, chunk after chunk, before the workers start (without), during the load (with)
and after they stop (without again): the detection ratio is with / without (medians).
Checked at the end: every run recorded once and succeeded, no run left active (stuck), one
attempt per step (no step ran twice), every webhook key delivered once, the audit chain whole.

    .venv/bin/python bench/playbooks_load.py --rate 10000 --minutes 5 --workers 1 \\
        --bus kafka://127.0.0.1:19092 --es http://127.0.0.1:19200
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine, machine_line  # noqa: E402
from bench.playbooks import BOOK, publish  # noqa: E402
from tests.playbooks_support import Receiver  # noqa: E402
from watchkeeper.bus import Names, open_bus  # noqa: E402
from watchkeeper.store import Query, audit, open_store, runs  # noqa: E402


def probe(out: str, events: int) -> None:
    """Detection alone (bench/detect.py's workload), one timed chunk after another."""
    from bench.detect import timed, workload
    from detectors import registry
    docs = workload(events)
    with open(out, "a", encoding="utf-8") as sink:
        while True:
            row = timed("all", registry.build(), docs)
            sink.write(f"{time.time():.3f} {len(docs) / row.seconds:.1f}\n")
            sink.flush()


def count(store, **terms) -> int:
    query = Query(limit=1, terms={k.replace("__", "."): v for k, v in terms.items()})
    return store.search("runs", query).total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVICE_MARKS = (b"org.elasticsearch.bootstrap", b"kafka.Kafka")


def pin_services(cpus: set[int]) -> list[int]:
    """Every thread of the local Kafka and Elasticsearch processes onto `cpus` (--pin)."""
    pinned = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not any(mark in cmdline for mark in SERVICE_MARKS):
                continue
            for task in (entry / "task").iterdir():
                os.sched_setaffinity(int(task.name), cpus)
            pinned.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return pinned


def rates_between(path: Path, start: float, end: float) -> list[float]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [float(r) for t, r in rows if start <= float(t) <= end]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=10_000, help="alerts per minute")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--workers", type=int, default=1, help="playbook worker processes")
    ap.add_argument("--parallel", type=int, default=64, help="playbooks.parallel_runs")
    ap.add_argument("--bus", default="kafka://127.0.0.1:19092")
    ap.add_argument("--es", default="http://127.0.0.1:19200")
    ap.add_argument("--baseline", type=float, default=60, help="seconds of detection alone")
    ap.add_argument("--probe-events", type=int, default=50_000)
    ap.add_argument("--max-wait", type=float, default=900,
                    help="seconds after the start to stop waiting for the backlog")
    ap.add_argument("--pin", action="store_true",
                    help="detection probe alone on CPU 1; workers, Kafka, Elasticsearch, the "
                         "publisher and the receiver on CPU 0 (is there interference beyond "
                         "sharing cores?)")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(args.probe, args.probe_events)
        return 0
    if args.pin:
        os.sched_setaffinity(0, {0})          # this process and the workers it starts
        print(f"pinned: probe on CPU 1; services {pin_services({0})} and the rest on CPU 0")
    try:
        return load(args)
    finally:
        if args.pin:
            pin_services({0, 1})


def load(args) -> int:
    tag = uuid.uuid4().hex[:8]
    names = Names(f"wkbpb{tag}")
    store_url = f"{args.es}?prefix=wkbench-pb-{tag}"
    print(machine_line(machine(args.es, kafka=True)))
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "books"
        folder.mkdir()
        (folder / "load.yaml").write_text(BOOK.format(url=receiver.url))
        config = Path(tmp) / "wk.yaml"
        config.write_text(json.dumps({"namespace": names.namespace, "playbooks": {
            "shipped": False, "folders": [str(folder)], "tick_seconds": 0.5,
            "parallel_runs": args.parallel}}))
        bus = open_bus(args.bus)
        bus.ensure_topics(names.topics)
        store = open_store(store_url)
        rates = Path(tmp) / "probe.txt"
        prober = subprocess.Popen([sys.executable, __file__, "--probe", str(rates),
                                   "--probe-events", str(args.probe_events)], cwd=ROOT,
                                  preexec_fn=(lambda: os.sched_setaffinity(0, {1}))
                                  if args.pin else None)
        time.sleep(args.baseline)
        workers_started = time.time()
        workers = [subprocess.Popen([sys.executable, "-m", "app.cli", "playbooks",
                                     "--config", str(config), "--bus", args.bus,
                                     "--store", store_url], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=open(
                                        Path(tmp) / f"worker{n}.log", "w"))
                   for n in range(args.workers)]
        total, sent = int(args.rate * args.minutes), [0]
        started = time.monotonic()
        producer = threading.Thread(target=publish, args=(bus, names, args.rate,
                                                          args.minutes, sent))
        producer.start()
        most_active, done = 0, 0
        while True:
            time.sleep(5)
            store.refresh("runs")
            active = count(store, event__dataset=[runs.RUN],
                           watchkeeper__run__status=list(runs.ACTIVE))
            done = count(store, event__dataset=[runs.RUN],
                         watchkeeper__run__status=list(runs.FINISHED))
            most_active = max(most_active, active)
            print(f"  {time.monotonic() - started:6.0f} s: published {sent[0]}, runs active "
                  f"{active}, finished {done}, webhooks {len(receiver.posts)}", flush=True)
            if not producer.is_alive() and done >= total and active == 0:
                break
            if time.monotonic() - started > args.max_wait:
                print("stopped waiting: the workers did not keep up", file=sys.stderr)
                break
        finished_after = time.monotonic() - started
        cpu = sum(cpu_seconds(w.pid) for w in workers)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)
        workers_stopped = time.time()
        time.sleep(args.baseline)
        prober.terminate()
        prober.wait()
        store.refresh()
        recorded = count(store, event__dataset=[runs.RUN])
        succeeded = count(store, event__dataset=[runs.RUN], watchkeeper__run__status=["succeeded"])
        # unfinished when the workers were stopped (a backlog if they did not keep up; with
        # everything finished it is 0: no run stuck)
        stuck = count(store, event__dataset=[runs.RUN], watchkeeper__run__status=list(runs.ACTIVE))
        attempts = count(store, event__dataset=[runs.STEP])
        chain = audit.verify(store)
        keys = len(receiver.keys)
        posts = len(receiver.posts)
        without = rates_between(rates, 0, workers_started) + \
            rates_between(rates, workers_stopped, time.time())
        with_ = rates_between(rates, workers_started + 10, workers_stopped)
        result = {
            "alerts": sent[0], "rate_per_min": args.rate, "minutes": args.minutes,
            "workers": args.workers, "parallel_runs": args.parallel, "runs_recorded": recorded, "runs_succeeded": succeeded,
            "unfinished_at_stop": stuck, "most_active": most_active, "step_attempts": attempts,
"webhook_posts": posts, "webhook_keys": keys,
            "audit_chain_ok": chain.ok, "audit_records": chain.checked,
            "finished_after_s": round(finished_after, 1),
            "worker_cpu_s": round(cpu, 1),
            "detect_without_eps": round(statistics.median(without)) if without else None,
            "detect_with_eps": round(statistics.median(with_)) if with_ else None,
            "detect_chunks": [len(without), len(with_)],
            "loadavg": os.getloadavg(), "pinned": args.pin}
        if without and with_:
            result["detect_ratio"] = round(result["detect_with_eps"] /
                                           result["detect_without_eps"], 3)
        print(json.dumps(result))
        ok = recorded == succeeded == total and stuck == 0 and posts == keys == total \
            and attempts == 2 * total and chain.ok
        if hasattr(store, "es"):
            store.es.indices.delete(index=f"{store.prefix}-*", ignore_unavailable=True,
                                    allow_no_indices=True)
        store.close()
    receiver.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
