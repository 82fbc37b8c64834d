"""Wiring the stages together: open the backends, ingest files, run workers."""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from watchkeeper import timeutil
from watchkeeper.bus import Bus, Names, open_bus
from watchkeeper.config import Settings
from watchkeeper.indexer import Indexer
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.store import Store, open_store
from watchkeeper.worker import StepResult, drain, run_forever

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


def open_bus_only(settings: Settings) -> Bus:
    """What a collector needs: the bus with its topics."""
    bus = open_bus(settings.bus, partitions=settings.partitions)
    bus.ensure_topics(Names(settings.namespace).topics)
    return bus


def open_backends(settings: Settings) -> Backends:
    bus = open_bus_only(settings)
    return Backends(bus, open_store(settings.store))


def detection_worker(settings: Settings, backends: Backends):
    from detectors import registry
    from detectors.runner import DetectionWorker
    registry.build(settings.detectors)    # validate parameters now, not on the first event
    return DetectionWorker(backends.bus, lambda: registry.build(settings.detectors),
                           backends.store, Names(settings.namespace),
                           alert_window_seconds=settings.alert_window_seconds)


def flow_documents(paths: list[str], settings: Settings) -> Iterator[dict]:
    from collectors.capture import iter_flow_documents
    return iter_flow_documents(paths, observer=settings.observer,
                               networks=InternalNetworks(settings.internal_networks))


@dataclass
class IngestReport:
    published: int
    rejected: int
    detected: StepResult
    indexed: StepResult
    seconds: float


def ingest(paths: list[str], settings: Settings, backends: Backends) -> IngestReport:
    """Files -> flow events on the bus -> detectors -> store, then return (everything drained)."""
    started = time.monotonic()
    publisher = EventPublisher(backends.bus.producer(), "capture", Names(settings.namespace))
    for doc in _with_progress(flow_documents(paths, settings), "flows published"):
        publisher.publish(doc)
    publisher.producer.close()
    detector = detection_worker(settings, backends)
    detected = drain(detector)
    detector.close()
    indexer = Indexer(backends.bus, backends.store, Names(settings.namespace))
    indexed = drain(indexer)
    indexer.close()
    backends.store.refresh()
    return IngestReport(publisher.published, publisher.rejected, detected, indexed,
                        time.monotonic() - started)


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
                  roles: tuple[str, ...] = ("detect", "index", "retention")) -> list[threading.Thread]:
    targets = {
        "detect": lambda: run_forever(detection_worker(settings, backends), stop),
        "index": lambda: run_forever(
            Indexer(backends.bus, backends.store, Names(settings.namespace)), stop),
        "retention": lambda: retention_loop(settings, backends.store, stop),
    }
    threads = [threading.Thread(target=targets[r], name=f"wk-{r}", daemon=True) for r in roles]
    for thread in threads:
        thread.start()
    return threads


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
