"""Benchmark: events/s through the pipeline, beside the Kafka -> Elasticsearch ceiling, in one run.

    .venv/bin/python bench/pipeline.py [--events 200000] [--modes embedded,anchors,ceiling,full]
                                       [--json] [--kafka-libs DIR]

Generates N flow events once (FlowRecord -> flow_document, varied 5-tuples, ~10 % of them a
port scan from a few sources so the scan detector raises alerts), then times:

  embedded  memory:// bus + SQLite store (temp file): publish -> DetectionWorker -> Indexer,
            one stage after the other as `watchkeeper ingest` does; events/s for the whole.
  anchors   the raw anchors (bench/anchors.py): Kafka's own producer and consumer perf tools
            and a raw `_bulk` load of the same pre-serialised documents with 1 and 2 clients;
            the report then gives every Kafka mode as a ratio to the 2-client raw bulk rate.
  copy-processes  the ceiling's copy as a deployment scales it: two `watchkeeper index`
            processes (one consumer group) under `supervise`, timed like `processes`.
  processes Kafka -> detectors -> Elasticsearch with every stage its own process
            (`watchkeeper supervise --processes ...`, bench/processes.py); rate from the
            first stored event until every event is stored *and* detection has finished
            (its processes idle, every detection group committed); start-up apart.
  ceiling   Kafka -> Elasticsearch with no detection: N events pre-published to a fresh
            namespace's `<ns>.events`, then an Indexer alone copies them into ES. The ES event
            count must equal N afterwards (the run fails otherwise).
  full      Kafka -> detectors -> Elasticsearch: N events pre-published to fresh namespaces;
            DetectionWorker + Indexer (events + alerts) sequentially, then (main figure) the
            two stages concurrently in two threads. ratio = full concurrent / ceiling.

A stage stops as soon as it has consumed everything it is owed (N events, plus every alert
the detector published for the Indexer), so no idle-poll tail is timed; a consumer's Kafka
group join is timed (it is part of starting a worker); `1st batch` is the time until the
first batch was processed, join included.
Indices and templates under the run's `wkbench-*` prefixes are deleted at the end; the
topics stay (they are namespaced per run).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors import registry  # noqa: E402
from alerting.worker import AlertingWorker  # noqa: E402
from detectors.runner import DetectionWorker  # noqa: E402
from watchkeeper.bus import BusError, Names, open_bus  # noqa: E402
from watchkeeper.indexer import Indexer  # noqa: E402
from watchkeeper.store import StoreError, open_store  # noqa: E402
from watchkeeper.worker import StepResult  # noqa: E402

from bench.anchors import mode_anchors  # noqa: E402
from bench.machine import machine, machine_line  # noqa: E402
from bench.pipeline_elastic import Elastic  # noqa: E402
from bench.pipeline_report import report  # noqa: E402
from bench.processes import mode_processes  # noqa: E402
from bench.publishing import FRAMING, publish  # noqa: E402
from bench.pipeline_workload import generate  # noqa: E402

STEP_DEADLINE_S = 1800.0              # a stage that has not finished by then fails the run


# -- timing helpers ---------------------------------------------------------------------------
@dataclass
class StageRun:
    seconds: float = 0.0
    first_batch_s: float | None = None    # first batch processed (incl. Kafka group join)
    consumed: int = 0
    written: int = 0
    alerts: int = 0
    deadlettered: int = 0
    recoveries: int = 0                   # failed steps read again from the last commit


def run_stage(stage, owed, done=lambda: True) -> StageRun:
    """Step `stage` until it has consumed `owed()` records and `done()` (upstream finished)."""
    run = StageRun()
    started = time.perf_counter()
    deadline = started + STEP_DEADLINE_S
    while True:
        try:
            result = stage.step(timeout=0.2)
        except (BusError, StoreError) as exc:   # as run_forever does: read again from the commit
            print(f"{stage.name}: {exc}; rewinding", file=sys.stderr, flush=True)
            stage.reset()
            run.recoveries += 1
            continue
        if result.consumed and run.first_batch_s is None:
            run.first_batch_s = time.perf_counter() - started
        run.consumed += result.consumed
        run.written += result.written
        run.alerts += result.alerts
        run.deadlettered += result.deadlettered
        if done() and run.consumed >= owed() and (not run.recoveries or not stage.consumer.lag()):
            break
        if time.perf_counter() > deadline:
            raise SystemExit(f"{stage.name}: consumed {run.consumed} of {owed()} records "
                             f"in {STEP_DEADLINE_S:.0f} s; giving up")
    stage.close()                         # timed: a write still in flight is part of the stage
    run.seconds = time.perf_counter() - started
    return run


class DetectionWithPolicy:
    """The detection worker followed by the alerting stage, as in `run`: detectors publish
    to wk.alerts.raw, and only the policy stage's output on wk.alerts reaches the indexer."""
    name = "detect"

    def __init__(self, bus, store, names: Names):
        self.detector = DetectionWorker(bus, registry.build, store, names)
        self.policy = AlertingWorker(bus, names=names)
        self.owed = 0

    def step(self, timeout: float = 0.2) -> StepResult:
        result = self.detector.step(timeout=timeout)
        self.owed += result.alerts
        deadline = time.perf_counter() + STEP_DEADLINE_S
        while self.owed > 0 and time.perf_counter() < deadline:
            self.owed -= self.policy.step(timeout=0.2).consumed
        return result

    @property
    def consumer(self):
        return self.detector.consumer

    def reset(self) -> None:
        self.detector.reset()
        self.policy.reset()

    def close(self) -> None:
        self.detector.close()
        self.policy.close()


def detection(bus, store, names: Names) -> DetectionWithPolicy:
    return DetectionWithPolicy(bus, store, names)


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


# -- modes ------------------------------------------------------------------------------------
def mode_embedded(docs: list[dict]) -> dict:
    n = len(docs)
    names = Names("bench")
    with tempfile.TemporaryDirectory(prefix="wkbench-") as tmp:
        bus = open_bus("memory://")
        bus.ensure_topics(names.topics)
        store = open_store(f"sqlite:///{tmp}/bench.db")
        # Consumers subscribe first, as running workers would: the embedded bus keeps
        # messages for every group that reads a topic.
        detector = detection(bus, store, names)
        indexer = Indexer(bus, store, names)
        t_pub, sent = publish(bus, names, docs)
        det = run_stage(detector, lambda: sent)
        if det.deadlettered:
            raise SystemExit(f"embedded: detector dead-lettered {det.deadlettered} events")
        idx = run_stage(indexer, lambda: sent + det.alerts)
        stored = store._db.execute("SELECT count(*) FROM events").fetchone()[0]
        alerts = store._db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        store.close()
    if stored != n:
        raise SystemExit(f"embedded: SQLite holds {stored} events, expected {n}")
    total = t_pub + det.seconds + idx.seconds
    return {"events": n, "events_per_s": rate(n, total), "seconds": total,
            "publish_s": t_pub, "detect": asdict(det), "index": asdict(idx),
            "alerts_published": det.alerts, "alerts_stored": alerts}


def fresh_names(run_id: str, label: str, bus) -> Names:
    names = Names(f"wkb{run_id}-{label}")
    bus.ensure_topics(names.topics)
    return names


# The copy as a deployment scales it: two indexer processes (one consumer group), nothing else.
COPY_PROCESSES = "detect-source=0,detect-rekeyed=0,alerting=0,index=2,correlate=0,playbooks=0"


def staged(docs: list[dict], bus, elastic: Elastic, run_id: str, args, label: str,
           spec: str) -> dict:
    """A `supervise --processes spec` run over N pre-published events (bench/processes.py)."""
    names = fresh_names(run_id, label, bus)
    t_pub, _ = publish(bus, names, docs)
    store = elastic.open(label)
    r = mode_processes(len(docs), names, args.bus, store, f"{args.es}?prefix={store.prefix}",
                       spec)
    return {**r, "publish_s": t_pub}


def mode_ceiling(docs: list[dict], bus, elastic: Elastic, run_id: str,
                 validated: bool = False) -> dict:
    """`validated`: the indexer as before the byte path (every document decoded and
    validated, one write at a time), for a side-by-side figure."""
    n = len(docs)
    label = "ceilv" if validated else "ceil"
    names = fresh_names(run_id, label, bus)
    t_pub, sent = publish(bus, names, docs)
    store = elastic.open(label)
    indexer = (Indexer(bus, store, names, trusted=(), in_flight=1) if validated
               else Indexer(bus, store, names))
    idx = run_stage(indexer, lambda: sent)
    stored = elastic.count(store, "events")
    if stored != n or idx.deadlettered:
        raise SystemExit(f"ceiling: Elasticsearch holds {stored} events (expected {n}), "
                         f"{idx.deadlettered} dead-lettered")
    return {"events": n, "events_per_s": rate(n, idx.seconds), "seconds": idx.seconds,
            "publish_s": t_pub, "publish_per_s": rate(n, t_pub), "index": asdict(idx),
            "stored": stored}


def mode_full(docs: list[dict], bus, elastic: Elastic, run_id: str, concurrent: bool) -> dict:
    n = len(docs)
    label = "conc" if concurrent else "seq"
    names = fresh_names(run_id, label, bus)
    t_pub, sent = publish(bus, names, docs)
    store = elastic.open(label)
    detector = detection(bus, store, names)
    indexer = Indexer(bus, store, names)
    if concurrent:
        det_box: dict = {}
        failures: list[BaseException] = []
        det_done = threading.Event()

        def detect() -> None:
            try:
                det_box["run"] = run_stage(detector, lambda: sent)
            except BaseException as exc:   # noqa: BLE001 - re-raised in the main thread
                failures.append(exc)
            finally:
                det_done.set()

        started = time.perf_counter()
        thread = threading.Thread(target=detect, name="bench-detect")
        thread.start()
        try:
            def detector_finished() -> bool:
                if failures:
                    raise failures[0]
                return det_done.is_set()

            idx = run_stage(indexer,
                            lambda: sent + (det_box["run"].alerts if "run" in det_box else 0),
                            done=detector_finished)
        finally:
            thread.join()
        if failures:
            raise failures[0]
        det = det_box["run"]
        seconds = time.perf_counter() - started
    else:
        det = run_stage(detector, lambda: sent)
        idx = run_stage(indexer, lambda: sent + det.alerts)
        seconds = det.seconds + idx.seconds
    stored = elastic.count(store, "events")
    alerts = elastic.count(store, "alerts")
    if stored != n or det.deadlettered or idx.deadlettered:
        raise SystemExit(f"full ({label}): Elasticsearch holds {stored} events (expected {n}); "
                         f"dead-lettered: detect {det.deadlettered}, index {idx.deadlettered}")
    return {"events": n, "events_per_s": rate(n, seconds), "seconds": seconds,
            "publish_s": t_pub, "publish_per_s": rate(n, t_pub), "detect": asdict(det),
            "index": asdict(idx), "alerts_published": det.alerts, "alerts_stored": alerts,
            "stored": stored}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="N events per mode")
    ap.add_argument("--event-rate", type=float, default=100.0,
                    help="events per second of event time (bench/pipeline_workload.py)")
    ap.add_argument("--modes", default="embedded,ceiling,full",
                    help="comma list of embedded, anchors, ceiling, ceiling-validated, full, "
                         "processes, copy-processes")
    ap.add_argument("--processes", default="detect-source=1,detect-rekeyed=1,alerting=1,"
                    "index=2,correlate=0,playbooks=0",
                    help="processes mode: processes per stage (watchkeeper supervise)")
    ap.add_argument("--kafka-libs", default=None,
                    help="Kafka jars for the perf tools (default deploy/local/.cache/kafka-*/libs)")
    ap.add_argument("--bus", default=os.environ.get("WATCHKEEPER_BENCH_BUS",
                                                    "kafka://127.0.0.1:9092"))
    ap.add_argument("--es", default=os.environ.get("WATCHKEEPER_BENCH_ES", "http://127.0.0.1:9200"))
    ap.add_argument("--no-concurrent", action="store_true", help="full mode: sequential only")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--framing", choices=("batched", "single"), default="batched",
                    help="events published in batches, as the app's collectors do, or one "
                         "message each")
    args = ap.parse_args(argv)
    FRAMING["batched"] = args.framing == "batched"
    modes = {m.strip() for m in args.modes.split(",") if m.strip()}
    known = {"embedded", "anchors", "ceiling", "ceiling-validated", "full", "processes",
             "copy-processes"}
    if modes - known:
        ap.error(f"unknown modes {sorted(modes - known)}")
    remote = bool(modes - {"embedded"})

    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    info = machine(args.es if remote else None, remote)
    log(machine_line(info))
    started = time.perf_counter()
    docs, probes = generate(args.events, rate=args.event_rate)
    gen_s = time.perf_counter() - started
    log(f"generated {len(docs):,} events in {gen_s:.1f} s")
    result: dict = {"events": len(docs), "scan_probes": probes, "generate_s": gen_s,
                    "event_rate": args.event_rate,
                    "machine": info, "command": " ".join([Path(sys.executable).name, *sys.argv]),
                    "modes": {}, "load": {"start": os.getloadavg()[0]}}

    if "embedded" in modes:
        log("embedded: memory:// bus + SQLite ...")
        result["modes"]["embedded"] = mode_embedded(docs)
    if remote:
        run_id = uuid.uuid4().hex[:10]
        bus = open_bus(args.bus)
        elastic = Elastic(args.es, run_id)
        try:
            if "anchors" in modes:
                result["anchors"] = mode_anchors(docs, args.bus, args.es, elastic, run_id,
                                                 args.kafka_libs, log)
            if "ceiling" in modes:
                log(f"ceiling: Kafka -> ES (run {run_id}) ...")
                result["modes"]["ceiling"] = mode_ceiling(docs, bus, elastic, run_id)
            if "ceiling-validated" in modes:
                log("ceiling-validated: Kafka -> ES, decode + validate, one write at a time ...")
                result["modes"]["ceiling_validated"] = mode_ceiling(docs, bus, elastic, run_id,
                                                                    validated=True)
            if "full" in modes:
                log("full: Kafka -> detect -> ES, sequential ...")
                result["modes"]["full_sequential"] = mode_full(docs, bus, elastic, run_id, False)
                if not args.no_concurrent:
                    log("full: Kafka -> detect -> ES, concurrent ...")
                    result["modes"]["full_concurrent"] = mode_full(docs, bus, elastic, run_id,
                                                                   True)
            for mode, key, short, label, spec in (
                    ("copy-processes", "copy_processes", "cproc",
                     "Kafka -> ES, indexers as processes", COPY_PROCESSES),
                    ("processes", "full_processes", "proc",
                     "Kafka -> detect -> ES, stages as processes", args.processes)):
                if mode in modes:
                    log(f"{mode}: {label} ({spec}) ...")
                    result["modes"][key] = staged(docs, bus, elastic, run_id, args, short, spec)
        finally:
            deleted = elastic.cleanup()
            log(f"cleanup: deleted {len(deleted)} indices under wkbench-{run_id}-*")
            bus.close()
    m = result["modes"]
    full = m.get("full_concurrent") or m.get("full_sequential")
    if full and "ceiling" in m:
        result["ratio"] = full["events_per_s"] / m["ceiling"]["events_per_s"]
        if "full_concurrent" in m:
            result["ratio_sequential"] = (m["full_sequential"]["events_per_s"]
                                          / m["ceiling"]["events_per_s"])
    result["total_s"] = time.perf_counter() - started
    result["load"]["end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
