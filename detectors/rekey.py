"""The source-keyed stage's copies of events for the re-keyed stages, sent in batches.

Each copy used to be its own message: one kafka-python send (~20-30 µs of Python plus its
sender thread) for nearly every event, then one consumer record on the other side. Now the
copies of one step are grouped by the partition their key picks and each group goes out as
one message, a JSON array of copies, keyed so that every group lands in its own partition
(watchkeeper/batches.py, which collectors' event batches share).
A copy is `[source partition, source offset, event]`, or `[source partition, source offset,
index, event]` for the event at `index` of a batch, the event's bytes as they were read (the
origin counts a copy re-sent after a crash once; an older copy, an event carrying
`watchkeeper.rekeyed_from`, is still read).

Order is what the re-keyed detectors need, and it is kept: an entity's copies always fall
in the same group (the group is a function of the key), a group always goes to the same
partition (its key is fixed), and a step's batches are sent in the order the events were
read. The re-keyed stage tells a batch from a single event by what it decodes to (a list).
"""
from __future__ import annotations

from watchkeeper.batches import PartitionBatches, group_keys

# A batch is sent once it holds this much (Kafka refuses messages over ~1 MB by default,
# and the consumer fetches up to 1 MB per partition).
MAX_BATCH_BYTES = 256 * 1024

__all__ = ["BatchedCopies", "MAX_BATCH_BYTES", "group_keys"]


def _array(copies: list[bytes]) -> bytes:
    return b"[" + b",".join(copies) + b"]"


class BatchedCopies(PartitionBatches):
    """Copies gathered during one step, per (topic, partition group); `send_all` hands them to
    the producer as one message per group (sooner for a group past MAX_BATCH_BYTES)."""

    def __init__(self, partitions: int):
        super().__init__(partitions, frame=_array, max_bytes=MAX_BATCH_BYTES,
                         max_events=1 << 30)
