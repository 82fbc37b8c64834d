"""bench/pipeline.py `processes` mode: Kafka -> detectors -> ES with every stage its own
process, started by `watchkeeper supervise` (the path a user runs for a local multi-process
deployment). The events are published before the stages start; the rate is taken from the
first stored event to the last (process start-up and group joins are reported apart), read
once a second from the events indices' indexing counter, which needs no refresh: counting
the documents instead made Elasticsearch refresh the events index every second (a new
segment, then merges), work the raw-bulk anchor is not asked to do. Once the counter reaches
N, the events are counted once, refreshed, to check that N are stored.

The run ends when the events are stored *and* detection has finished: the indexers read the
events topic on their own, so stored events alone said nothing of whether detection kept up
(until 2026-12-05 the rate was taken at the last stored event, while the source-keyed stage
could still be a minute behind). Detection has finished when every detection group has
committed all of its input (the source-keyed group on the events topic, each re-keyed group
on its topic); it finished *at* the end of the last second in which its processes were busy
(bench/stage_cpu.py), because commits come at checkpoints spaced by their cost: the last
commit came 30-50 s after the work ended. Both times are reported."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.stage_cpu import StageCpu

ROOT = Path(__file__).resolve().parents[1]


def indexed(store) -> int:
    """Index operations on the events indices so far: visible without a refresh (a retried
    event counts twice, hence the refreshed count at the end)."""
    stats = store.es.indices.stats(index=store.index_for("events"), metric="indexing",
                                   expand_wildcards="open")
    return stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0)


class DetectionProgress:
    """How many messages the detection groups of a namespace have not committed yet, read
    with Kafka's admin API (committed offsets against the topics' ends)."""

    def __init__(self, bus_url: str, names):
        from kafka import KafkaAdminClient, KafkaConsumer

        from app.pipeline import detection_inputs
        from watchkeeper.bus.kafka import _servers
        servers = _servers(bus_url)
        self.admin = KafkaAdminClient(bootstrap_servers=servers)
        self.ends = KafkaConsumer(bootstrap_servers=servers)
        # the source-keyed group first: the re-keyed topics' ends are final once it is done
        self.groups = detection_inputs(names)
        self.alerts_raw = names.alerts_raw

    def alerts_published(self) -> int:
        """Alerts the detectors raised: messages on the raw alerts topic (the alerting stage
        merges the updates of one alert, so fewer are stored)."""
        from kafka import TopicPartition
        parts = [TopicPartition(self.alerts_raw, p)
                 for p in sorted(self.ends.partitions_for_topic(self.alerts_raw) or ())]
        return sum(self.ends.end_offsets(parts).values()) if parts else 0

    def behind(self) -> int:
        from kafka import TopicPartition
        total = 0
        for group, topic in self.groups:
            parts = [TopicPartition(topic, p)
                     for p in sorted(self.ends.partitions_for_topic(topic) or ())]
            committed = self.admin.list_group_offsets({group: parts}).get(group, {})
            ends = self.ends.end_offsets(parts)
            total += sum(end - max(0, committed[tp].offset if tp in committed else 0)
                         for tp, end in ends.items())
            if total:
                return total      # a re-keyed topic's end moves until the source group is done
        return total

    def close(self) -> None:
        self.ends.close()
        self.admin.close()


def _count(store, kind: str) -> int:
    store.refresh(kind)
    return store.es.count(index=store.index_for(kind), ignore_unavailable=True,
                          allow_no_indices=True)["count"]


def mode_processes(n: int, names, bus_url: str, store, store_url: str, processes: str,
                   deadline_s: float = 600.0) -> dict:
    env = {**os.environ, "WATCHKEEPER_NAMESPACE": names.namespace}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "supervise", "--bus", bus_url,
                             "--store", store_url, "--processes", processes],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first_at = first_count = None
    stored = 0
    progress = DetectionProgress(bus_url, names) if detecting(processes) else None
    cpu = StageCpu(proc.pid) if progress is not None else None
    stored_at = detected_at = None
    try:
        while stored < n:
            if time.perf_counter() - started > deadline_s:
                raise SystemExit(f"processes: {stored} of {n} events stored in {deadline_s} s")
            if proc.poll() is not None:
                raise SystemExit(f"processes: supervise exited with {proc.returncode}")
            time.sleep(1.0)
            stored = indexed(store)
            if stored and first_at is None:
                first_at, first_count = time.perf_counter(), stored
        stored_at = time.perf_counter()
        while (stored := _count(store, "events")) < n:      # a retried bulk counted twice
            if time.perf_counter() - started > deadline_s:
                raise SystemExit(f"processes: {stored} of {n} events stored in {deadline_s} s")
            time.sleep(1.0)
            stored_at = time.perf_counter()     # the rate never counts an event not stored
        while progress is not None and (behind := progress.behind()) > 0:
            if time.perf_counter() - started > deadline_s:
                raise SystemExit(f"processes: detection {behind} messages behind after "
                                 f"{deadline_s} s")
            time.sleep(1.0)
        committed_at = time.perf_counter()
        detected_at = stored_at
        if cpu is not None:
            cpu.stop()
            detected_at = cpu.last_busy(after=first_at) or stored_at
        done_at = max(stored_at, detected_at)
        time.sleep(3)     # alerts trail the last event by a policy step and an index step
        alerts = _count(store, "alerts")
        published = progress.alerts_published() if progress is not None else None
    finally:
        if cpu is not None:
            cpu.stop()
        if progress is not None:
            progress.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    seconds = done_at - first_at
    return {"events": n, "processes": processes, "events_per_s": (n - first_count) / seconds
            if seconds > 0 else float("inf"), "seconds": seconds,
            "startup_s": first_at - started, "alerts_stored": alerts, "stored": stored,
            **({"alerts_published": published} if published is not None else {}),
            "stored_s": stored_at - first_at, "detected_s": detected_at - first_at,
            "committed_s": committed_at - first_at}


def detecting(processes: str) -> bool:
    """Whether a `--processes` spec runs any detection stage (as `supervise` reads it)."""
    from app.supervise import parse_counts
    counts = parse_counts(processes)
    return bool(counts["detect-source"] or counts["detect-rekeyed"])
