"""Collector counters as metric events, so the command-centre screen reads them from the store.

Every `every` seconds (and once more when the collector stops) a collector's counters
(packets, parsed, malformed, dropped, kernel drops, ...) are published on the bus as one
document of dataset `watchkeeper.collector`, `event.kind: metric`; the indexer stores them like
any event. The same values are exported at /metrics as the gauge
`watchkeeper_collector_counter{collector, counter}`. Counters are cumulative since the
collector started; the id is (observer, collector, start, interval), so a replay does not
duplicate a point and a restarted collector starts a new series.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

from watchkeeper import schema, timeutil
from watchkeeper.publish import EventPublisher

DATASET = "watchkeeper.collector"
COUNTER = Gauge("watchkeeper_collector_counter", "A collector's cumulative counter",
                ["collector", "counter"])
log = logging.getLogger(__name__)


def counters_of(*stats) -> dict[str, int]:
    """Integer fields of stats dataclasses (later ones win on a name clash)."""
    out: dict[str, int] = {}
    for item in stats:
        for f in dataclasses.fields(item):
            value = getattr(item, f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                out[f.name] = value
    return out


def status_document(collector: str, counters: dict[str, int], observer: str, started: float,
                    now: float, every: float, site: str | None = None,
                    final: bool = False) -> dict:
    doc = {
        "@timestamp": timeutil.format(now),
        "event": {"id": schema.stable_id(observer, "status", collector, repr(started),
                                         int(now // every)),
                  "kind": "metric", "dataset": DATASET, "module": "watchkeeper",
                  "start": timeutil.format(started)},
        "observer": {"name": observer, "type": "sensor"},
        "watchkeeper": {"collector": {"name": collector, "counters": dict(counters)}},
    }
    if final:       # the last report of a clean stop: a stopped collector, not a silent one
        doc["watchkeeper"]["collector"]["final"] = True
    if site:
        doc["labels"] = {"site": site}
    return doc


class StatusReporter:
    """A daemon thread publishing one collector's counters until `stop` is set."""

    def __init__(self, publisher: EventPublisher, collector: str,
                 counters: Callable[[], dict[str, int]], observer: str, stop: threading.Event,
                 every: float = 10.0, site: str | None = None):
        self.publisher, self.collector, self.counters = publisher, collector, counters
        self.observer, self.stop, self.every, self.site = observer, stop, every, site
        self.started = time.time()
        self.thread = threading.Thread(target=self._run, name=f"wk-status-{collector}",
                                       daemon=True)

    def start(self) -> StatusReporter:
        self.thread.start()
        return self

    def report(self, final: bool = False) -> None:
        counters = self.counters()
        for name, value in counters.items():
            COUNTER.labels(collector=self.collector, counter=name).set(value)
        self.publisher.publish(status_document(self.collector, counters, self.observer,
                                               self.started, time.time(), self.every,
                                               self.site, final))
        self.publisher.flush()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self._safe_report()
        self._safe_report(final=True)   # the final counts, as the collector stops

    def _safe_report(self, final: bool = False) -> None:
        try:
            self.report(final)
        except Exception:  # noqa: BLE001 - status must never take a collector down
            log.exception("status of %s not published", self.collector)
