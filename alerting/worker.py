"""The alerting stage: wk.alerts.raw -> policy (alerting/context.py) -> wk.alerts.

Every alert passes here once, whoever raised it: the detectors and the Suricata tailer
publish to the raw topic, the indexer and the correlator read the policy's output. The
policy is a function of the alert alone (inventory, allowlist, suppression rules), so any
number of members of the consumer group give the same result. Offsets are committed only
after the processed alerts are on the bus (at-least-once; alert ids make retries harmless).
"""
from __future__ import annotations

from watchkeeper import codec, metrics, schema
from watchkeeper.bus import Bus, Names
from watchkeeper.deadletter import send_deadletter
from watchkeeper.worker import StepResult

from alerting.context import AlertContext


class AlertingWorker:
    name = "alerting"

    def __init__(self, bus: Bus, policy: AlertContext | None = None, names: Names = Names()):
        self.policy = policy or AlertContext()
        self.names = names
        self.group = names.group(self.name)
        self.consumer = bus.consumer(self.group, [names.alerts_raw])
        self.producer = bus.producer()

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        if not messages:
            return StepResult()
        passed = bad = 0
        for msg in messages:
            try:
                alert = schema.validate(codec.decode(msg.value))
                if schema.get(alert, "event.kind") != "alert":
                    raise schema.ValidationError("event.kind must be 'alert' on the alerts topic")
                alert = self.policy.apply(alert)
            except (codec.DecodeError, schema.ValidationError, KeyError, TypeError,
                    ValueError) as exc:
                bad += 1
                send_deadletter(self.producer, self.names, self.name,
                                f"{type(exc).__name__}: {exc}", msg.value, msg.topic,
                                f"{msg.topic}:{msg.partition}:{msg.offset}")
                continue
            self.producer.send(self.names.alerts, codec.encode(alert), key=msg.key)
            passed += 1
        self.producer.flush()          # on the bus before the offsets that produced them
        self.consumer.commit()
        metrics.RECORDS.labels(stage=self.name, outcome="accepted").inc(passed)
        return StepResult(consumed=len(messages), alerts=passed, deadlettered=bad)

    def reset(self) -> None:
        self.consumer.rewind()

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()
