"""Key -> partition exactly as Kafka's default partitioner does, so both backends agree."""
from __future__ import annotations

import random

from kafka.partitioner.default import murmur2


def partition_for(key: str | None, partitions: int) -> int:
    if key is None:
        return random.randrange(partitions)  # Kafka spreads keyless records too
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
