"""Detector checkpoints: per-partition state saved together with the committed offset.

The detection stage keeps one set of detector instances per bus partition. At a checkpoint
it stores each partition's snapshots with the next offset to read, then commits that offset:
a worker that takes the partition over (after a crash or a rebalance) restores the snapshot
and resumes exactly where it was taken, so windows are neither lost nor counted twice.

A stage that reads a re-keyed topic also keeps, per source partition, the last source offset
it has counted (`origins`): a source worker that restarts from its own checkpoint re-publishes
what it had already copied, and those copies must not be counted twice either.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from watchkeeper import schema, timeutil
from watchkeeper.store import Store
from watchkeeper.store.raw import RawDoc


@dataclass
class Checkpoint:
    next_offset: int                 # first offset not yet reflected in the snapshots
    watermark: float                 # newest event time seen on the partition
    snapshots: dict[str, dict]       # detector name -> snapshot()
    next_timer: float | None = None  # event time of the next on_timer (None: watermark + period)
    origins: dict[int, int] = field(default_factory=dict)  # source partition -> last offset


class CheckpointStore:
    def __init__(self, store: Store, scope: str):
        self.store = store
        self.scope = scope           # e.g. "wk-detect": the consumer group owning the state

    def _id(self, topic: str, partition: int) -> str:
        return schema.stable_id("checkpoint", self.scope, topic, partition)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        found = self.store.get_by_ids("state", [self._id(topic, partition)])
        if not found:
            return None
        state = found[0]["watchkeeper"]["state"]
        return Checkpoint(state["next_offset"], state["watermark"], state["snapshots"],
                          state.get("next_timer"),
                          {int(p): o for p, o in state.get("origins", {}).items()})

    def save(self, checkpoints: dict[tuple[str, int], Checkpoint]) -> None:
        self.write(self.encode(checkpoints))

    def encode(self, checkpoints: dict[tuple[str, int], Checkpoint]) -> list[RawDoc]:
        """The state documents, encoded at once (the snapshots may hold live records:
        keyed.live_snapshots), so they can be written while the detectors move on."""
        now = timeutil.format(time.time())
        return [RawDoc(self._id(topic, partition), now, encode_state({
            "@timestamp": now,
            "event": {"id": self._id(topic, partition), "kind": "state",
                      "dataset": "watchkeeper.state"},
            "watchkeeper": {"state": {"scope": self.scope, "topic": topic,
                                      "partition": partition, "next_offset": cp.next_offset,
                                      "watermark": cp.watermark, "snapshots": cp.snapshots,
                                      "next_timer": cp.next_timer,
                                      "origins": {str(p): o for p, o in cp.origins.items()}}},
        })) for (topic, partition), cp in checkpoints.items()]

    def write(self, docs: list[RawDoc]) -> None:
        for doc in docs:           # one request each: a partition's state can be tens of MB
            self.store.put_raw("state", [doc])
        self.store.refresh("state")   # load() searches: only the small state index, never all


def encode_state(doc: dict) -> bytes:
    """JSON of a state document whose snapshots may hold dataclass records (int dict keys
    become strings, as `keyed.to_plain` makes them)."""
    return msgspec.json.encode(doc)
