"""Many events to a bus message: what each message costs is paid per batch, not per event.

kafka-python spends ~10-15 µs of Python on each record it sends and ~6.6 µs on each it reads
(bench/RESULTS.md, session 23), and an event was a record three times on its way to the store
(the collector's send, the source-keyed stage's and the indexer's reads). So collectors send
events in batches, and the stages split them.

An event batch is JSON lines: events joined by a newline. Our encoders never write a raw
newline (JSON escapes it inside strings), so a message without one is a single event: every
producer and reader of single-event messages keeps working, and a reader tells the two apart
by the bytes alone.

Order and keys: a batch holds the events whose keys Kafka's partitioner sends to one partition
(`partition_for`, with the bus's partition count), and it is sent with a key that the
partitioner sends to that same partition (`group_keys`). So each event lands where it would
have landed alone, after the events sent before it for its entity.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from watchkeeper.bus import Producer
from watchkeeper.bus.partition import partition_for

SEPARATOR = b"\n"
# A batch is sent once it holds this much. Kafka refuses messages over ~1 MB by default and
# the consumer fetches up to 1 MB per partition; a reader polls by message count, and sizes
# its polls by the events per message it saw (`PollSize`).
MAX_BATCH_BYTES = 128 * 1024
MAX_BATCH_EVENTS = 512
# A position inside a partition: offset * POSITION_SPAN + index in the message's batch.
POSITION_SPAN = 1 << 20


def split(value: bytes) -> list[bytes]:
    """The events of one message: itself, or each line of a batch."""
    if SEPARATOR not in value:
        return [value]
    return [line for line in value.split(SEPARATOR) if line]


def lines(values: list[bytes]) -> bytes:
    return SEPARATOR.join(values)


def position(offset: int, index: int = 0) -> int:
    """One number that orders the events of a partition, batched or not."""
    return offset * POSITION_SPAN + index


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


class PartitionBatches:
    """Values gathered per (topic, partition group); each group goes out as one message,
    `frame(values)`, at `send_all` or sooner once it holds `max_bytes` or `max_events`.
    Not thread-safe: its owner holds its own lock around it."""

    def __init__(self, partitions: int, frame: Callable[[list[bytes]], bytes] = lines,
                 max_bytes: int = MAX_BATCH_BYTES, max_events: int = MAX_BATCH_EVENTS):
        self.keys = group_keys(partitions)
        self.partitions = partitions
        self.frame = frame
        self.max_bytes = max_bytes
        self.max_events = max_events
        self._groups: dict[tuple[str, int], list[bytes]] = {}
        self._sizes: dict[tuple[str, int], int] = {}

    def add(self, producer: Producer, topic: str, key: str | None, value: bytes) -> None:
        group = (topic, partition_for(key, self.partitions))
        held = self._groups.setdefault(group, [])
        held.append(value)
        self._sizes[group] = size = self._sizes.get(group, 0) + len(value) + 1
        if size >= self.max_bytes or len(held) >= self.max_events:
            self._send(producer, group)

    def send_all(self, producer: Producer) -> None:
        for group in list(self._groups):
            self._send(producer, group)

    def _send(self, producer: Producer, group: tuple[str, int]) -> None:
        # forgotten only once sent: a send that raises leaves the group for the next try
        producer.send(group[0], self.frame(self._groups[group]), key=self.keys[group[1]])
        del self._groups[group], self._sizes[group]

    def clear(self) -> None:
        """Forget unsent values (the step they came from will be read again)."""
        self._groups.clear()
        self._sizes.clear()


class PollSize:
    """How many messages a stage polls to get about `events` events: single-event and batch
    messages arrive on the same topics, so it follows the events per message it last saw."""

    def __init__(self, events: int, guess: float = 64.0):
        self.events = events
        self._per_message = guess    # before the first poll: assume batches, keep it short

    def records(self, events: int | None = None) -> int:
        return max(1, int((events or self.events) / self._per_message))

    def saw(self, messages: int, events: int) -> None:
        if messages:
            self._per_message = max(1.0, events / messages)
