"""Wiring the stages together: open the backends, ingest files, run workers."""
from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from watchkeeper import compiled, timeutil
from watchkeeper.bus import Bus, Names, open_bus
from app.settings import Settings
from alerting.correlate import Correlator
from alerting.worker import AlertingWorker
from playbooks.worker import playbook_stage
from watchkeeper.indexer import Indexer
from watchkeeper.liveness import StageRegistry
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.store import Query, Store, open_store
from watchkeeper.worker import StepResult, Stepping, drain, run_forever

log = logging.getLogger(__name__)


@dataclass
class Backends:
    bus: Bus
    store: Store

    def close(self) -> None:
        self.bus.close()
        self.store.close()

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# `ingest` drains every stage at the end: a Kafka fetch waits this long at most for data,
# and each lag question of a drained stage waits behind it (open_bus).
INGEST_FETCH_WAIT_MS = 100


def open_bus_only(settings: Settings, for_ingest: bool = False) -> Bus:
    """What a collector needs: the bus with its topics. `for_ingest`: the embedded bus is
    unbounded (`ingest` publishes a round from one thread before draining it: a producer
    waiting for room there would wait for itself; its rounds bound its memory instead), and
    Kafka consumers wait INGEST_FETCH_WAIT_MS at the broker."""
    bounded = not for_ingest
    bus = open_bus(settings.bus, partitions=settings.partitions,
                   memory_max_held=settings.bus_memory_max_held if bounded else 0,
                   memory_max_held_bytes=settings.bus_memory_max_held_mib * 2**20 if bounded
                   else 0, fetch_wait_ms=INGEST_FETCH_WAIT_MS if for_ingest else None)
    bus.ensure_topics(Names(settings.namespace).topics)
    return bus


def open_backends(settings: Settings, for_ingest: bool = False) -> Backends:
    bus = open_bus_only(settings, for_ingest)
    return Backends(bus, open_store(settings.store))


def alert_context(settings: Settings, store: Store | None = None):
    """Inventory and allowlist from settings, validated (errors name the rule or CIDR), and
    the suppression rules of `store` (re-read every few seconds: no restart needed).
    With a store, the inventory is the store's (seeded once from the file), reloaded every
    `inventory_refresh_seconds`: edits through the API reach new alerts without a restart."""
    from pydantic import ValidationError

    from alerting.context import AlertContext, AllowRule
    from watchkeeper.assets import load_inventory
    from watchkeeper.store.suppressions import RuleCache
    rules = []
    for i, rule in enumerate(settings.allowlist):
        try:
            rules.append(AllowRule(**rule))
        except ValidationError as exc:
            raise ValueError(f"config: allowlist[{i}]: {exc.errors()[0]['msg']}") from None
    if store is None:
        return AlertContext(load_inventory(settings.inventory_file), rules)
    from watchkeeper.assets import Inventory
    from watchkeeper.store.inventory import load_from_store, seed_from_file
    seed_from_file(store, settings.inventory_file)
    inventory = Inventory.refreshing(lambda: load_from_store(store),
                                     every=settings.inventory_refresh_seconds)
    from alerting.evidence import GapCache
    return AlertContext(inventory, rules, suppressions=RuleCache(store),
                        evidence_gaps=GapCache(store, settings.collector_silent_seconds))


def alerting_worker(settings: Settings, backends: Backends) -> AlertingWorker:
    """The policy stage every alert passes once: wk.alerts.raw -> wk.alerts."""
    return AlertingWorker(backends.bus, alert_context(settings, backends.store),
                          Names(settings.namespace))


def collector_watch(settings: Settings, backends: Backends, stop: threading.Event):
    """Silent collectors -> wk.collector.silent alerts (alerting/collector_watch.py)."""
    from alerting.collector_watch import CollectorWatch, run_collector_watch
    watch = CollectorWatch(backends.bus, backends.store, settings.collector_silent_seconds,
                           Names(settings.namespace))
    return lambda: run_collector_watch(watch, stop, settings.collector_check_seconds)


DETECT_STAGES = ("all", "source", "rekeyed")


def detection_workers(settings: Settings, backends: Backends, stages: str = "all",
                      checkpoint_every_s: float = 5.0) -> list:
    """One stage per partition key: source-keyed detectors read wk.events and re-publish it
    keyed by every other entity a detector needs (DESIGN.md §4), whose own stage reads that.
    `stages`: all of them, or only the source-keyed one, or only the re-keyed ones (each
    then runs as its own process and scales by adding processes to its consumer group).
    A stage also checkpoints whenever it runs out of messages, whatever `checkpoint_every_s`."""
    from detectors import registry
    from detectors.runner import DetectionWorker
    registry.build(settings.detectors)    # validate parameters now, not on the first event
    by_key: dict[str, list[str]] = {}
    datasets: dict[str, frozenset[str]] = {}
    for name, cls in sorted(registry.available().items()):
        by_key.setdefault(cls.key_field, []).append(name)
        datasets[cls.key_field] = datasets.get(cls.key_field, frozenset()) | cls.datasets
    names = Names(settings.namespace)
    rekey = {field: names.rekeyed(field) for field in by_key if field != "source.ip"}
    backends.bus.ensure_topics(tuple(rekey.values()))

    def stage(detector_names: list[str], **where) -> DetectionWorker:
        return DetectionWorker(backends.bus,
                               lambda: registry.build(settings.detectors, detector_names),
                               backends.store, names,
                               alert_window_seconds=settings.alert_window_seconds,
                               checkpoint_every_s=checkpoint_every_s, **where)
    workers = []
    if stages in ("all", "source"):
        workers.append(stage(by_key.get("source.ip", []), rekey=rekey,
                             rekey_datasets={field: datasets[field] for field in rekey}))
    for field, topic in rekey.items() if stages in ("all", "rekeyed") else ():
        workers.append(stage(by_key[field], input_topic=topic, group=rekeyed_group(names, field)))
    return workers


def rekeyed_group(names: Names, field: str) -> str:
    """The consumer group of the detection stage keyed on `field` (wk-detect-destination-ip)."""
    return names.group(f"detect-{field.replace('.', '-')}")


def detection_inputs(names: Names) -> list[tuple[str, str]]:
    """(consumer group, topic) of every detection stage: the source-keyed one first, then one
    per other key a registered detector declares."""
    from detectors import registry
    fields = sorted({cls.key_field for cls in registry.available().values()} - {"source.ip"})
    return [(names.group("detect"), names.events)] + [
        (rekeyed_group(names, field), names.rekeyed(field)) for field in fields]


def capture_documents(paths: list[str], settings: Settings, app: bool = True) -> Iterator[dict]:
    """Events of capture files: flows, and (`app`) DNS/HTTP/TLS from their payloads."""
    from collectors.capture import iter_flow_documents
    return iter_flow_documents(paths, observer=settings.observer,
                               networks=InternalNetworks(settings.internal_networks),
                               config=settings.flow_table.flow_config(), app=app,
                               site=settings.site)


@dataclass
class IngestReport:
    published: int
    rejected: int
    detected: StepResult
    indexed: StepResult
    seconds: float


INGEST_CHUNK = 50_000   # events published between two rounds of draining every stage


def ingest(paths: list[str], settings: Settings, backends: Backends,
           chunk: int = INGEST_CHUNK) -> IngestReport:
    """Files -> flow events on the bus -> detectors -> store, then return (everything drained).

    Every stage (and so every consumer group) exists before the first event is published, so
    the embedded bus keeps each message until all of them have read it. On the embedded bus
    stages are drained in rounds of `chunk` events: memory stays bounded by a round, not the
    file. Kafka keeps the messages itself, so there the stages work while the file is
    published: detection in a process of its own (app/ingest_detection.py), the other stages
    each in a thread of this one, then each is drained in order. Detection checkpoints (a
    snapshot of every detector's state, the costliest step after the detectors themselves)
    are taken when a stage has drained, or spaced by their cost while it steps.
    """
    if not settings.bus.startswith("memory:"):
        return _ingest_kafka(paths, settings, backends)
    started = time.monotonic()
    detectors = detection_workers(settings, backends, checkpoint_every_s=float("inf"))
    stages = [*detectors, *_storing_stages(settings, backends)]
    publisher = _publisher(settings, backends)
    results = [StepResult() for _ in stages]
    try:
        docs = _documents(paths, settings)
        while True:
            sent = _publish(publisher, docs, chunk)
            for total, stage in zip(results, stages):
                total.add(drain(stage, stall_s=settings.ingest_stall_seconds))
            if sent < chunk:
                break
    finally:
        for stage in stages:
            stage.close()
        publisher.producer.close()
    backends.store.refresh()
    return IngestReport(publisher.published, publisher.rejected, _sum(results[:-3]),
                        results[-2], time.monotonic() - started)


def _ingest_kafka(paths: list[str], settings: Settings, backends: Backends) -> IngestReport:
    """`ingest` on Kafka: detection steps in its own process, the stages that store in
    threads of this one, while the file is published; then all are drained in order."""
    from app.ingest_detection import DetectionProcess
    started = time.monotonic()
    detection = DetectionProcess(settings)
    stages, publisher = [], None
    try:
        detection.start()
        stages = _storing_stages(settings, backends)
        publisher = _publisher(settings, backends)
        with Stepping(stages) as stepping:
            _publish(publisher, _documents(paths, settings), None)
            detected = detection.finish()        # drained: every alert is on the bus
        results = [stepped.add(drain(stage, stall_s=settings.ingest_stall_seconds))
                   for stepped, stage in zip(stepping.results, stages)]
    finally:
        detection.stop()
        for stage in stages:
            stage.close()
        if publisher is not None:
            publisher.producer.close()
    backends.store.refresh()
    return IngestReport(publisher.published, publisher.rejected, _sum(detected), results[1],
                        time.monotonic() - started)


def _storing_stages(settings: Settings, backends: Backends) -> list:
    """The stages after detection, in the order `ingest` drains them (the indexer second)."""
    names = Names(settings.namespace)
    return [alerting_worker(settings, backends), Indexer(backends.bus, backends.store, names),
            Correlator(backends.bus, backends.store, names)]


def _publisher(settings: Settings, backends: Backends) -> EventPublisher:
    return EventPublisher(backends.bus.producer(), "capture", Names(settings.namespace),
                          partitions=backends.bus.partitions)


def _documents(paths: list[str], settings: Settings) -> Iterator[dict]:
    return iter(_with_progress(capture_documents(paths, settings), "events published"))


def _sum(results: list[StepResult]) -> StepResult:
    total = StepResult()
    for result in results:
        total.add(result)
    return total


def _publish(publisher: EventPublisher, docs: Iterator[dict], limit: int | None) -> int:
    """Publish up to `limit` documents (None: all of them), then flush; how many."""
    sent = 0
    for doc in docs if limit is None else itertools.islice(docs, limit):
        publisher.publish(doc)
        sent += 1
    publisher.flush()
    return sent


def _with_progress(docs: Iterable[dict], label: str) -> Iterator[dict]:
    if not sys.stderr.isatty():
        yield from docs
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} " + label), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(label, total=None)
        for doc in docs:
            yield doc
            progress.advance(task)


def start_workers(settings: Settings, backends: Backends, stop: threading.Event,
                  roles: tuple[str, ...] = ("detect", "alerting", "index", "correlate",
                                            "retention"),
                  registry: StageRegistry | None = None,
                  detect_stages: str = "all") -> list[threading.Thread]:
    """Each consuming stage in its own thread, reporting to `registry` (the watchdog's)."""
    registry = registry or StageRegistry()
    namespace = Names(settings.namespace).namespace

    def loop(stage):
        label = getattr(stage, "group", "").removeprefix(f"{namespace}-") or stage.name
        beat = registry.add(label)
        return lambda: run_forever(stage, stop, heartbeat=beat)
    targets = []
    for role in roles:
        if role == "detect":
            targets += [(f"wk-detect-{i}", loop(w))
                        for i, w in enumerate(detection_workers(settings, backends,
                                                                detect_stages))]
        elif role == "alerting":
            targets.append(("wk-alerting", loop(alerting_worker(settings, backends))))
            targets.append(("wk-collector-watch", collector_watch(settings, backends, stop)))
        elif role == "index":
            indexer = Indexer(backends.bus, backends.store, Names(settings.namespace))
            targets.append(("wk-index", loop(indexer)))
        elif role == "correlate":
            correlator = Correlator(backends.bus, backends.store, Names(settings.namespace))
            targets.append(("wk-correlate", loop(correlator)))
        elif role == "playbooks":
            targets.append(("wk-playbooks", loop(playbook_stage(settings, backends.bus,
                                                                backends.store))))
        elif role == "retention":
            targets.append(("wk-retention", lambda: retention_loop(settings, backends.store, stop)))
    if "detect" in roles:
        compiled.report(log)           # the detectors are imported now: compiled or not
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in targets]
    for thread in threads:
        thread.start()
    return threads


def apply_allowlist(settings: Settings, store: Store) -> int:
    """Close stored open alerts that the allowlist now covers (benign positive, audited)."""
    from alerting.context import ALLOWLIST
    from watchkeeper.store.suppressions import OPEN_STATUSES, close_fields
    rules = alert_context(settings).allowlist
    changed = 0
    query = Query(terms={"watchkeeper.alert.status": list(OPEN_STATUSES)})
    matches = {a["event"]["id"]: (a, r) for a in store.scan("alerts", query)
               for r in rules if r.matches(a)}
    for alert, rule in matches.values():
        store.update_alert(alert["event"]["id"],
                           close_fields(ALLOWLIST, "benign_positive", time.time()),
                           actor="allowlist", comment=rule.reason)
        changed += 1
    store.refresh()
    return changed


def apply_retention(settings: Settings, store: Store, now: float | None = None) -> list[str]:
    """Drop whole days of events older than `retention_months` calendar months."""
    cutoff = timeutil.months_before(now if now is not None else time.time(),
                                    settings.retention_months)
    dropped = store.delete_events_before(timeutil.day(cutoff))
    if dropped:
        log.info("retention: dropped event days %s", ", ".join(dropped))
    return dropped


def retention_loop(settings: Settings, store: Store, stop: threading.Event,
                   every_s: float = 3600.0) -> None:
    while not stop.is_set():
        try:
            apply_retention(settings, store)
        except Exception:   # noqa: BLE001 - retention must never take the monitor down
            log.exception("retention failed; will retry")
        stop.wait(every_s)
