"""Silent collectors raise an alert (`rule.id: wk.collector.silent`), closed when they return.

Runs beside the alerting stage (in `watchkeeper alerting` and in `run`): every
`check_seconds` it reads the silences from the store (watchkeeper/collector_silence.py) and
publishes one alert per silence on wk.alerts.raw, so it passes the policy layer like any
alert and reaches the store and the playbooks (playbooks/library/silent-collector.yaml
mails the duty officer). The alert id is the silence's id: replicas of the stage, or a
restart, raise the same alert again, never a second one. When a collector reports output
again, its open silence alerts are closed (verdict `other`, audited as the system).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from watchkeeper import codec, ratelog, timeutil
from watchkeeper.bus import Bus, Names
from watchkeeper.collector_silence import Silence, silences
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store.base import Query, Store
from watchkeeper.store.triage import AlertChange, change_alerts

log = logging.getLogger(__name__)
ratelog.limit(log)
RULE_ID = "wk.collector.silent"
DETECTOR = "collector_health"
ACTOR = "system:collector-health"
OPEN = ("new", "acknowledged", "investigating")
KIND_NAMES = {"stopped": "停止上报", "idle": "无数据"}
KIND_NAMES_EN = {"stopped": "stopped reporting", "idle": "no data"}


def silence_alert(silence: Silence, now: float) -> dict:
    since = timeutil.parse(silence.since)
    minutes = max(1, round((now - since) / 60))
    spec = AlertSpec(
        detector=DETECTOR, detector_version="1", category="anomaly", rule_id=RULE_ID,
        rule_name="Collector silent", rule_name_zh="采集器静默", severity=3,
        entity=f"{silence.observer}/{silence.collector}", first_seen=since, last_seen=since,
        message=(f"collector {silence.collector} (sensor {silence.observer}) silent for about "
                 f"{minutes} min ({KIND_NAMES_EN[silence.kind]}, last output count "
                 f"{silence.output}): detections fed by it miss this time's traffic"),
        message_zh=(f"采集器 {silence.collector}（传感器 {silence.observer}）已静默约 {minutes} 分钟"
                    f"（{KIND_NAMES[silence.kind]}，最后输出计数 {silence.output}）：依赖它的检测"
                    f"看不到这段时间的流量"))
    doc = alert_document(spec, now)
    doc["event"]["id"] = silence.id                 # one alert per silence
    doc["observer"] = {"name": silence.observer, "type": "sensor"}
    doc["watchkeeper"]["collector"] = {"name": silence.collector, "silence": silence.kind}
    if silence.site:
        doc["labels"] = {"site": silence.site}
    return doc


class CollectorWatch:
    """One check: raise alerts for new silences, close those of collectors that are back."""

    def __init__(self, bus: Bus, store: Store, silent_after: float, names: Names = Names(),
                 clock: Callable[[], float] = time.time):
        self.store, self.silent_after, self.names, self.clock = store, silent_after, names, clock
        self.producer = bus.producer()
        self.raised: set[str] = set()       # published by this process (store may lag)

    def check(self) -> tuple[int, int]:
        """(alerts raised, alerts closed) by this check."""
        now = self.clock()
        current = silences(self.store, now, self.silent_after)
        new = [s for s in current if s.id not in self.raised]
        for silence in new:
            self.producer.send(self.names.alerts_raw, codec.encode(silence_alert(silence, now)),
                               key=silence.observer)
        if new:
            self.producer.flush()
            self.raised.update(s.id for s in new)
        return len(new), self._close_returned({s.id for s in current}, now)

    def _close_returned(self, silent_ids: set[str], now: float) -> int:
        query = Query(terms={"rule.id": [RULE_ID], "watchkeeper.alert.status": list(OPEN)},
                      limit=500)
        open_ids = [a["event"]["id"] for a in self.store.scan("alerts", query, 500)]
        back = [alert_id for alert_id in open_ids if alert_id not in silent_ids]
        if not back:
            return 0
        change = AlertChange(status="closed", verdict="other",
                             comment="采集器已恢复上报数据 (collector reporting again)")
        result = change_alerts(self.store, back, change, ACTOR, now)
        self.raised.difference_update(result.changed)
        return len(result.changed)

    def close(self) -> None:
        self.producer.close()


def run_collector_watch(watch: CollectorWatch, stop: threading.Event,
                        every: float) -> None:
    """Check every `every` seconds until `stop`; a failed check is logged and retried."""
    while not stop.wait(every):
        try:
            raised, closed = watch.check()
            if raised or closed:
                log.info("silent collectors: %d alert(s) raised, %d closed", raised, closed)
        except Exception:  # noqa: BLE001 - the store may be away for a while; try again
            log.exception("silent-collector check failed")
    watch.close()
