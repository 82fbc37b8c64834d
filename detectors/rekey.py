"""The source-keyed stage's copies of events for the re-keyed stages, sent in batches.

Each copy used to be its own message: one kafka-python send (~20-30 µs of Python plus its
sender thread) for nearly every event, then one consumer record on the other side. Now the
copies of one step are grouped by the partition their key picks and each group goes out as
one message, a JSON array of copies, keyed so that every group lands in its own partition.
A copy is `[source partition, source offset, event]`, the event's bytes as they were read
(the origin counts a copy re-sent after a crash once; an older copy, an event carrying
`watchkeeper.rekeyed_from`, is still read).

Order is what the re-keyed detectors need, and it is kept: an entity's copies always fall
in the same group (the group is a function of the key), a group always goes to the same
partition (its key is fixed), and a step's batches are sent in the order the events were
read. The re-keyed stage tells a batch from a single event by what it decodes to (a list).
"""
from __future__ import annotations

from functools import lru_cache

from watchkeeper.bus import Producer
from watchkeeper.bus.partition import partition_for

# A batch is sent once it holds this much (Kafka refuses messages over ~1 MB by default,
# and the consumer fetches up to 1 MB per partition).
MAX_BATCH_BYTES = 256 * 1024


@lru_cache(maxsize=64)
def group_keys(partitions: int) -> tuple[str, ...]:
    """A message key per partition that Kafka's partitioner sends to that partition."""
    keys: dict[int, str] = {}
    n = 0
    while len(keys) < partitions:
        key = f"rekeyed-{n}"
        keys.setdefault(partition_for(key, partitions), key)
        n += 1
    return tuple(keys[p] for p in range(partitions))


class BatchedCopies:
    """Copies gathered during one step, per (topic, partition group); `send` hands them to
    the producer as one message per group (sooner for a group past MAX_BATCH_BYTES)."""

    def __init__(self, partitions: int):
        self.keys = group_keys(partitions)
        self.partitions = partitions
        self._groups: dict[tuple[str, int], list[bytes]] = {}
        self._sizes: dict[tuple[str, int], int] = {}

    def add(self, producer: Producer, topic: str, key: str, copy: bytes) -> None:
        group = (topic, partition_for(key, self.partitions))
        held = self._groups.setdefault(group, [])
        held.append(copy)
        self._sizes[group] = size = self._sizes.get(group, 0) + len(copy) + 1
        if size >= MAX_BATCH_BYTES:
            self._send(producer, group)

    def send(self, producer: Producer) -> None:
        for group in list(self._groups):
            self._send(producer, group)

    def _send(self, producer: Producer, group: tuple[str, int]) -> None:
        copies = self._groups.pop(group)
        del self._sizes[group]
        producer.send(group[0], b"[" + b",".join(copies) + b"]", key=self.keys[group[1]])

    def clear(self) -> None:
        """Forget unsent copies (the step they came from will be read again)."""
        self._groups.clear()
        self._sizes.clear()

