"""The bench's collector: publishes the workload as the app's collectors do, and counts the
messages that took (the stages' `consumed` counts messages, not events)."""
from __future__ import annotations

import time

from watchkeeper.bus import Names
from watchkeeper.publish import EventPublisher


class CountingProducer:
    """The bus producer, counting the messages it was given (the stages' `consumed`)."""

    def __init__(self, producer):
        self.producer, self.sent = producer, 0

    def send(self, topic, value, key=None):
        self.sent += 1
        self.producer.send(topic, value, key=key)

    def flush(self):
        self.producer.flush()

    def close(self):
        self.producer.close()


# --framing: "batched" as the app's collectors publish (watchkeeper/batches.py), or "single"
# (one message per event, as before 2026-12-06)
FRAMING = {"batched": True}


def publish(bus, names: Names, docs: list[dict]) -> tuple[float, int]:
    """Seconds to publish `docs` as a collector does, and the messages that took."""
    producer = CountingProducer(bus.producer())
    partitions = bus.partitions if FRAMING["batched"] else None
    publisher = EventPublisher(producer, "bench", names, partitions=partitions)
    started = time.perf_counter()
    for doc in docs:
        publisher.publish(doc)
    publisher.close()
    producer.close()                      # flush: every message stored
    seconds = time.perf_counter() - started
    if publisher.published != len(docs) or publisher.rejected:
        raise SystemExit(f"publish: {publisher.published} published, {publisher.rejected} "
                         f"rejected of {len(docs)}")
    return seconds, producer.sent
