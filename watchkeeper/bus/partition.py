"""Key -> partition exactly as Kafka's default partitioner does, so both backends agree."""
from __future__ import annotations

import random
from functools import lru_cache

from kafka.partitioner.default import murmur2


def partition_for(key: str | None, partitions: int) -> int:
    if key is None:
        return random.randrange(partitions)  # Kafka spreads keyless records too
    return _keyed(key, partitions)


@lru_cache(maxsize=65_536)      # bounded (keys can come from the network); murmur2 is pure
def _keyed(key: str, partitions: int) -> int:   # Python, ~10x the cost of a cache hit
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
