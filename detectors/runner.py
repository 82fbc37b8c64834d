"""Detection stage: events from the bus through every detector; alerts back onto the bus."""
from __future__ import annotations

import time

from detectors.base import Detector
from watchkeeper import codec, metrics, schema, timeutil
from watchkeeper.bus import Bus, Message, Names
from watchkeeper.deadletter import send_deadletter
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.worker import StepResult

TIMER_EVERY_S = 5.0   # event-time seconds between on_timer calls


class DetectionWorker:
    name = "detect"

    def __init__(self, bus: Bus, detectors: list[Detector], names: Names = Names(),
                 alert_window_seconds: int = 3600):
        self.detectors = detectors
        self.names = names
        self.alert_window_seconds = alert_window_seconds
        self.consumer = bus.consumer(names.group(self.name), [names.events])
        self.producer = bus.producer()
        self._by_dataset: dict[str, list[Detector]] = {}
        for det in detectors:
            for dataset in det.datasets:
                self._by_dataset.setdefault(dataset, []).append(det)
        self.watermark = 0.0     # newest event time seen
        self._next_timer = 0.0

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        if not messages:
            return StepResult()
        specs: list[AlertSpec] = []
        bad = 0
        for msg in messages:
            try:
                specs += self._detect(msg)
            except (codec.DecodeError, schema.ValidationError, KeyError, ValueError) as exc:
                bad += 1
                send_deadletter(self.producer, self.names, self.name, f"{type(exc).__name__}: {exc}",
                                msg.value, msg.topic, f"{msg.topic}:{msg.partition}:{msg.offset}")
        specs += self._timers()
        self._publish(specs)
        self.producer.flush()     # alerts stored on the bus before the events are committed
        self.consumer.commit()
        metrics.RECORDS.labels(stage=self.name, outcome="accepted").inc(len(messages) - bad)
        return StepResult(consumed=len(messages), alerts=len(specs), deadlettered=bad)

    def _detect(self, msg: Message) -> list[AlertSpec]:
        event = codec.decode(msg.value)
        if not isinstance(event, dict):
            raise schema.ValidationError("event is not a JSON object")
        event_time = timeutil.parse(event["@timestamp"])
        self.watermark = max(self.watermark, event_time)
        dataset = event["event"]["dataset"]
        return [spec for det in self._by_dataset.get(dataset, ())
                for spec in det.on_event(event, event_time)]

    def _timers(self) -> list[AlertSpec]:
        if self.watermark < self._next_timer:
            return []
        self._next_timer = self.watermark + TIMER_EVERY_S
        return [spec for det in self.detectors for spec in det.on_timer(self.watermark)]

    def _publish(self, specs: list[AlertSpec]) -> None:
        created = time.time()
        for spec in specs:
            doc = alert_document(spec, created, self.alert_window_seconds)
            self.producer.send(self.names.alerts, codec.encode(doc), key=spec.entity)
        metrics.RECORDS.labels(stage=self.name, outcome="alerted").inc(len(specs))

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()
