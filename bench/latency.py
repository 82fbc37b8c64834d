"""Benchmark: event -> stored alert latency with canary events, at fractions of capacity.

    .venv/bin/python bench/latency.py --capacity 2000 [--loads 0.5,0.8] [--seconds 30]
        [--topology embedded,kafka] [--bus kafka://...] [--es http://...]

Background flow events are published at load x capacity events/s (paced, event times =
wall clock; built before the run and sent as JSON lines, as the capture collector sends its
compiled documents, so the bench's own CPU stays off the cores under test); every 0.25 s
one of them is a canary: a flow from a fresh internal host to an
address on an IOC list, which the ioc detector turns into an alert at once. Latency = the
stored alert's `event.ingested` (stamped by the indexer as it writes) minus the wall time the
canary was published, so no polling interval is in it.

  embedded  `run`'s topology: memory:// bus, SQLite, every stage a thread of this process
            (detect, alerting, index), the publisher in the same process, as capture is.
  kafka     stages as processes (`watchkeeper supervise`), Elasticsearch.

Collector-side delay is not in these figures: a flow becomes an event when the flow table
reports it (end of the connection, or the active/inactive timeouts, printed below).
`--capacity` is the measured rate of the same topology (bench/pipeline.py, where the events
are published before the stages start), or, for kafka, `--probe RATE` measures it here: RATE
offered for `--seconds` with the publisher running beside the stages, as a collector on the
same machine does, and the rate at which the stages stored and detected those events (the
later of Elasticsearch's last index and detection's end, as bench/processes.py times it)
taken as capacity.
"""
from __future__ import annotations

import argparse
import os
import random
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
from watchkeeper import codec, timeutil  # noqa: E402
from watchkeeper.bus import Names, open_bus  # noqa: E402
from watchkeeper.documents import FlowRecord, flow_document  # noqa: E402
from watchkeeper.networks import InternalNetworks  # noqa: E402
from watchkeeper.publish import EventPublisher  # noqa: E402
from watchkeeper.store import Query, open_store  # noqa: E402

BAD_IP = "203.0.113.66"
CANARY_EVERY_S = 0.25


def write_config(tmp: Path) -> Path:
    (tmp / "ioc.csv").write_text("type,value,source,confidence,description\n"
                                 f"ip,{BAD_IP},bench,90,latency canary\n")
    config = tmp / "latency.yaml"
    config.write_text(f"detectors:\n  ioc_match:\n    paths: ['{tmp / 'ioc.csv'}']\n")
    return config


def flow(i: int, now: float, rng: random.Random, canary: int | None) -> dict:
    """Background flow, or canary number `canary`: its own source for 62,500 canaries (by
    event number they repeated after 62,500 events, and a repeated source's alert was the
    earlier canary's, updated: one 80 s "latency" in a 120 s run at 1,648 events/s)."""
    if canary is not None:
        src, dst, port = f"10.77.{canary // 250 % 250}.{1 + canary % 250}", BAD_IP, 443
    else:
        src, dst, port = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "93.184.216.34", 443
    return flow_document(FlowRecord(uid=f"L{i}", start=now - 0.5, end=now, proto=6, orig_ip=src,
                                    orig_port=rng.randint(32768, 60999), resp_ip=dst,
                                    resp_port=port, orig_pkts=5, resp_pkts=5, orig_bytes=400,
                                    resp_bytes=3000, orig_ip_bytes=660, resp_ip_bytes=3260,
                                    conn_state="SF", history="ShADadFf"), "bench",
                         InternalNetworks())


# (wall time started, events sent, seconds) of each paced run: the bench's own publisher
# shares the cores, so what it offered (events / seconds) may fall short of the plan
PUBLISHED: list[tuple[float, int, float]] = []
PLACEHOLDER_T = 946684800.0   # 2000-01-01: background documents are built with this time


def _iso(t: float) -> bytes:
    return timeutil.format(t).encode()


def background_lines(count: int, rng: random.Random) -> list[bytes]:
    """`count` background flow documents as JSON lines, built before the timed run with
    placeholder times that the pacer replaces as it sends them. The capture collector writes
    its documents with a compiled encoder (~2 µs each) and sends them as lines
    (`publish_lines`, no dict per event); building each one here with `flow_document` and
    publishing the dict cost this bench ~100 µs per event on the same two cores as the
    stages under test, so at "80 %" the bench, not the pipeline, ran out of CPU."""
    return [codec.encode(flow(i, PLACEHOLDER_T, rng, None)) for i in range(count)]


def paced_publish(publisher: EventPublisher, rate: float, seconds: float) -> dict[str, float]:
    """Publish at `rate` events/s for `seconds`; returns canary event id -> wall time sent.
    Background events go out as JSON lines the way the capture collector sends them; the
    canaries (4 a second) one by one, each flushed at once."""
    rng, sent = random.Random(3), {}
    lines = background_lines(int(rate * seconds) + 1, rng)
    placeholders = (_iso(PLACEHOLDER_T - 0.5), _iso(PLACEHOLDER_T))   # start, end
    started = time.time()
    next_canary = started
    i = 0
    while True:
        now = time.time()
        if now - started >= seconds:
            break
        due = min(int((now - started) * rate), len(lines))
        chunk = []
        while i < due:
            if now >= next_canary:
                if chunk:
                    _send_lines(publisher, chunk, placeholders, now)
                    chunk = []
                doc = flow(i, now, rng, len(sent))
                publisher.publish(doc)
                publisher.flush()   # a collector flushes every second; a canary waits for none
                sent[doc["event"]["id"]] = time.time()
                next_canary += CANARY_EVERY_S
            else:
                chunk.append(lines[i])
            i += 1
        if chunk:
            _send_lines(publisher, chunk, placeholders, now)
        time.sleep(0.002)
    publisher.flush()
    PUBLISHED.append((started, i, seconds))
    return sent


def _send_lines(publisher: EventPublisher, chunk: list[bytes], placeholders: tuple[bytes, bytes],
                now: float) -> None:
    """The chunk's lines with event times `now` - 0.5 s .. `now`, as `flow` makes them."""
    text = b"\n".join(chunk).replace(placeholders[0], _iso(now - 0.5))
    publisher.publish_lines(text.replace(placeholders[1], _iso(now)))


def latencies(alerts: list[dict], sent: dict[str, float], part: str = "total") -> list[float]:
    """Per canary alert: `total` publish -> stored; `detect` publish -> the detector made the
    alert (event.created); `after` detector -> stored (alerting stage, indexer)."""
    out = []
    for alert in alerts:
        ids = [e for e in alert.get("watchkeeper", {}).get("alert", {}).get("evidence", [])
               if e in sent]
        if ids and alert["event"].get("ingested"):
            published = min(sent[e] for e in ids)
            stored = timeutil.parse(alert["event"]["ingested"])
            created = timeutil.parse(alert["event"].get("created") or alert["event"]["ingested"])
            out.append({"total": stored - published, "detect": created - published,
                        "after": stored - created}[part])
    return out


def parts(alerts: list[dict], sent: dict[str, float]) -> dict:
    """p50 / p99 of the detect and after parts, for the printout."""
    if os.environ.get("WK_LAT_TRACE"):
        start = min(sent.values())
        rows = sorted((min(sent[e] for e in a["watchkeeper"]["alert"]["evidence"] if e in sent)
                       - start, latencies([a], sent, "detect")[0])
                      for a in alerts if latencies([a], sent, "detect"))
        print("trace (s into the run, detect latency):",
              " ".join(f"{t:.1f}:{d:.2f}" for t, d in rows), file=sys.stderr)
    out = {}
    for part in ("detect", "after"):
        values = sorted(latencies(alerts, sent, part))
        if values:
            out[part] = (values[len(values) // 2], values[min(len(values) - 1,
                                                              int(0.99 * len(values)))])
    return out


def summary(values: list[float], canaries: int) -> dict:
    values = sorted(values)
    pick = (lambda q: values[min(len(values) - 1, int(q * len(values)))]) if values else None
    return {"canaries": canaries, "alerts": len(values),
            "p50_s": pick(0.50) if values else None, "p99_s": pick(0.99) if values else None,
            "max_s": values[-1] if values else None,
            "mean_s": statistics.fmean(values) if values else None}


def all_alerts(store) -> list[dict]:
    store.refresh()
    return list(store.scan("alerts", Query(limit=1000)))


def wait_alerts(store, sent: dict[str, float], settle_s: float = 15.0) -> list[dict]:
    """Alerts until every canary has one, or `settle_s` without a new one."""
    last, found, deadline = -1, [], time.time() + 120
    quiet_since = time.time()
    while time.time() < deadline:
        found = all_alerts(store)
        got = len(latencies(found, sent))
        if got >= len(sent):
            break
        if got != last:
            last, quiet_since = got, time.time()
        elif time.time() - quiet_since > settle_s:
            break
        time.sleep(1.0)
    return found


def run_embedded(config: Path, rate: float, seconds: float, tmp: Path) -> dict:
    from app.pipeline import Backends, start_workers
    from app.settings import load_settings
    settings = load_settings(config, bus="memory://", store=f"sqlite:///{tmp}/lat-{rate:.0f}.db")
    backends = Backends(open_bus(settings.bus), open_store(settings.store))
    backends.bus.ensure_topics(Names(settings.namespace).topics)
    stop = threading.Event()
    threads = start_workers(settings, backends, stop, roles=("detect", "alerting", "index"))
    # batched by partition, as the app's collectors publish (watchkeeper/batches.py)
    publisher = EventPublisher(backends.bus.producer(), "capture", Names(settings.namespace),
                               partitions=backends.bus.partitions)
    try:
        sent = paced_publish(publisher, rate, seconds)
        alerts = wait_alerts(backends.store, sent)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        publisher.close()
    result = summary(latencies(alerts, sent), len(sent))
    result["parts"] = parts(alerts, sent)
    backends.store.close()
    return result


def offered() -> float:
    """Events/s the last paced run managed to publish."""
    _, count, seconds = PUBLISHED[-1]
    return count / seconds


def processed_rate(store, before: int, detection=None, deadline_s: float = 300.0) -> float:
    """Events/s the stages handled of the last paced run: its events over the time from its
    first publish until Elasticsearch had indexed all of them (and the `before` ones) and,
    given `detection` (a (DetectionProgress, StageCpu) pair), until detection was done with
    them too: the indexers read the events topic on their own, so a stored event says nothing
    of detection (bench/processes.py; until 2026-12-05 the probe took the stored rate alone).
    At a load the stages sustain this is the offered rate; above it, what they keep up with:
    the capacity of the whole machine with the collector publishing on it."""
    from bench.processes import indexed
    started, count, _ = PUBLISHED[-1]
    deadline = time.time() + deadline_s
    while indexed(store) < before + count and time.time() < deadline:
        time.sleep(0.5)
    done = time.time()
    if detection is not None:
        progress, cpu = detection
        while progress.behind() > 0 and time.time() < deadline:
            time.sleep(1.0)
        cpu.stop()
        # perf_counter time: moved to the wall clock (and the run's start to perf_counter)
        busy_until = cpu.last_busy(after=time.perf_counter() - (time.time() - started))
        if busy_until is not None:
            done = max(done, time.time() - (time.perf_counter() - busy_until))
    return count / (done - started)


def run_kafka(config: Path, rate: float, seconds: float, bus_url: str, es_url: str,
              processes: str, probe: bool = False) -> dict:
    """Latency at `rate`; `probe`: also the rate at which the stages stored *and* detected
    the run's events (a capacity)."""
    names = Names(f"wklat{uuid.uuid4().hex[:8]}")
    bus = open_bus(bus_url)
    bus.ensure_topics(names.topics)
    prefix = f"wkbench-lat-{names.namespace}"
    store = open_store(f"{es_url}?prefix={prefix}")
    env = {**os.environ, "WATCHKEEPER_NAMESPACE": names.namespace}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "supervise", "--config",
                             str(config), "--bus", bus_url, "--store", f"{es_url}?prefix={prefix}",
                             "--processes", processes], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = EventPublisher(bus.producer(), "capture", names, partitions=bus.partitions)
    detection = None
    try:
        warm = paced_publish(publisher, 20, 2)    # stages up and joined before timing
        wait_alerts(store, warm, settle_s=60)
        before = PUBLISHED[-1][1]
        if probe:
            from bench.processes import DetectionProgress
            from bench.stage_cpu import StageCpu
            detection = DetectionProgress(bus_url, names), StageCpu(proc.pid)
        sent = paced_publish(publisher, rate, seconds)
        alerts = wait_alerts(store, sent)
        result = summary(latencies(alerts, sent), len(sent))
        result["parts"] = parts(alerts, sent)
        result["processed"] = processed_rate(store, before, detection)
    finally:
        if detection is not None:
            detection[1].stop()
            detection[0].close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        publisher.close()
        for name in store.es.indices.get(index=f"{prefix}-*", ignore_unavailable=True):
            store.es.indices.delete(index=name)
        store.close()
        bus.close()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capacity", type=float, help="measured events/s")
    ap.add_argument("--probe", type=float, metavar="RATE",
                    help="kafka: first offer RATE events/s (above capacity) and take what the "
                    "stages stored and detected per second as the capacity")
    ap.add_argument("--loads", default="0.5,0.8")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--topology", default="embedded,kafka")
    ap.add_argument("--bus", default=os.environ.get("WATCHKEEPER_BENCH_BUS",
                                                    "kafka://127.0.0.1:9092"))
    ap.add_argument("--es", default=os.environ.get("WATCHKEEPER_BENCH_ES", "http://127.0.0.1:9200"))
    ap.add_argument("--processes", default="detect-source=1,detect-rekeyed=1,alerting=1,"
                    "index=1,correlate=0,playbooks=0")
    args = ap.parse_args(argv)
    topologies = [t.strip() for t in args.topology.split(",") if t.strip()]
    kafka = "kafka" in topologies
    print(machine_line(machine(args.es if kafka else None, kafka)))
    print(f"load average (1 min) at start {os.getloadavg()[0]:.1f}: the machine is shared "
          f"with 7 other engineers")
    from app.settings import load_settings
    flows = load_settings().flow_table
    print(f"collector side, not measured here: flows are reported at their end or by the flow "
          f"table's timeouts ({flows.model_dump()})")
    if args.capacity is None and not (args.probe and topologies == ["kafka"]):
        ap.error("--capacity is required (or --probe RATE with --topology kafka)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="wkbench-lat-") as tmp:
        config = write_config(Path(tmp))
        if args.probe:
            print(f"kafka probe at {args.probe:,.0f} ev/s for {args.seconds:.0f} s ...",
                  file=sys.stderr, flush=True)
            r = run_kafka(config, args.probe, args.seconds, args.bus, args.es, args.processes,
                          probe=True)
            args.capacity = r["processed"]
            print(f"capacity (probe: offered {offered():,.0f} ev/s, stored and detected "
                  f"{r['processed']:,.0f} ev/s while it was offered): {args.capacity:,.0f} ev/s")
        for topology in topologies:
            for load in (float(x) for x in args.loads.split(",")):
                rate = load * args.capacity
                print(f"{topology} at {load:.0%} of {args.capacity:,.0f}/s = {rate:,.0f} ev/s "
                      f"for {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
                if topology == "embedded":
                    r = run_embedded(config, rate, args.seconds, Path(tmp))
                else:
                    r = run_kafka(config, rate, args.seconds, args.bus, args.es, args.processes)
                r["offered"] = offered()
                rows.append((topology, load, rate, r))
    print(f"\n{'topology':<9} {'load':>5} {'events/s':>9} {'offered':>8} {'stored':>8} "
          f"{'canaries':>8} "
          f"{'alerts':>6} {'p50 s':>6} {'p99 s':>6} {'max s':>6}")
    for topology, load, rate, r in rows:
        fmt = (lambda v: f"{v:6.3f}" if v is not None else "     -")
        stored = f"{r['processed']:,.0f}" if "processed" in r else "-"
        print(f"{topology:<9} {load:>5.0%} {rate:>9,.0f} {r['offered']:>8,.0f} {stored:>8} "
              f"{r['canaries']:>8} {r['alerts']:>6} "
              f"{fmt(r['p50_s'])} {fmt(r['p99_s'])} {fmt(r['max_s'])}  "
              + "; ".join(f"{k} p50/p99 {a:.3f}/{b:.3f} s" for k, (a, b) in
                          r.get("parts", {}).items()))
    print("goal: p99 <= 2 s at 50 %, <= 5 s at 80 % of capacity; offered = events/s the "
          "bench's publisher managed; stored = events/s the stages stored of them (kafka); "
          "detect = publish -> the detector's alert (event.created), after = detector -> "
          "stored (alerting, indexer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
