"""Detector checkpoints: per-partition state saved together with the committed offset.

The detection stage keeps one set of detector instances per bus partition. At a checkpoint
it stores each partition's snapshots with the next offset to read, then commits that offset:
a worker that takes the partition over (after a crash or a rebalance) restores the snapshot
and resumes exactly where it was taken, so windows are neither lost nor counted twice.

A stage that reads a re-keyed topic also keeps, per source partition, the last source position
it has counted (`origins`; a position is offset and index in the message's batch,
watchkeeper/batches.py): a source worker that restarts from its own checkpoint re-publishes
what it had already copied, and those copies must not be counted twice either. States saved
before positions (key "origins", offsets) count every event of their last offset.

Stored as a head document (offsets, clock, where the state is) and the state itself, JSON
compressed with LZ4 and cut into parts of at most PART_BYTES: a partition's state grows with
the hosts it tracks (~1 KB each in exfiltration, up to 100,000 per partition), and one
document of it would pass Elasticsearch's 100 MB request limit (`http.max_content_length`),
after which every checkpoint would fail. Parts go to one of two slots, alternately, and the
head is written last: a reader always finds a complete set (docs/decisions.md).
"""
from __future__ import annotations

import base64
import logging
import secrets
import time
from dataclasses import dataclass, field

import lz4.frame
import msgspec

from watchkeeper import schema, timeutil
from watchkeeper.batches import POSITION_SPAN, position
from watchkeeper.store import Store
from watchkeeper.store.raw import RawDoc

log = logging.getLogger(__name__)

FORMAT = "lz4-json-parts"
PART_BYTES = 8 * 1024 * 1024      # compressed bytes per part document (~11 MB as base64)
READ_ATTEMPTS = 3                 # a head can move on while its parts are read


@dataclass
class Checkpoint:
    next_offset: int                 # first offset not yet reflected in the snapshots
    watermark: float                 # newest event time seen on the partition
    snapshots: dict[str, dict]       # detector name -> snapshot()
    next_timer: float | None = None  # event time of the next on_timer (None: watermark + period)
    origins: dict[int, int] = field(default_factory=dict)  # source partition -> last position


@dataclass
class EncodedState:
    """One partition's checkpoint, encoded on the stage's thread; compressed by `write`."""
    topic: str
    partition: int
    next_offset: int
    watermark: float
    body: bytes                      # JSON: snapshots, next_timer, origins


class CheckpointStore:
    def __init__(self, store: Store, scope: str):
        self.store = store
        self.scope = scope           # e.g. "wk-detect": the consumer group owning the state
        self._generations: dict[tuple[str, int], int] = {}   # last head read or written

    def _id(self, topic: str, partition: int) -> str:
        return schema.stable_id("checkpoint", self.scope, topic, partition)

    def _part_id(self, topic: str, partition: int, slot: int, index: int) -> str:
        return schema.stable_id("checkpoint-part", self.scope, topic, partition, slot, index)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        for _ in range(READ_ATTEMPTS):
            head = self._head(topic, partition)
            if head is None:
                return None
            if "snapshots" in head:        # written whole, before parts existed
                return _checkpoint(head)
            body = self._body(topic, partition, head)
            if body is not None:
                self._generations[(topic, partition)] = head["generation"]
                return _checkpoint({**head, **msgspec.json.decode(body)})
        log.error("checkpoint of %s/%s unreadable (its parts changed %d times while read): "
                  "starting the partition without state", topic, partition, READ_ATTEMPTS)
        return None

    def load_offset(self, topic: str, partition: int) -> int | None:
        """The next offset of the stored checkpoint, from its head alone."""
        head = self._head(topic, partition)
        return None if head is None else head["next_offset"]

    def _head(self, topic: str, partition: int) -> dict | None:
        found = self.store.get_by_ids("state", [self._id(topic, partition)])
        return found[0]["watchkeeper"]["state"] if found else None

    def _body(self, topic: str, partition: int, head: dict) -> bytes | None:
        """The state's JSON, or None when a part is missing or from another write."""
        ids = [self._part_id(topic, partition, head["slot"], i) for i in range(head["parts"])]
        parts = self.store.get_by_ids("state", ids)
        states = [p["watchkeeper"]["state"] for p in parts]
        if len(states) != len(ids) or any(s.get("write") != head["write"] for s in states):
            return None
        return lz4.frame.decompress(b"".join(base64.b64decode(s["data"]) for s in states))

    def save(self, checkpoints: dict[tuple[str, int], Checkpoint]) -> None:
        self.write(self.encode(checkpoints))

    def encode(self, checkpoints: dict[tuple[str, int], Checkpoint]) -> list[EncodedState]:
        """The states encoded at once (the snapshots may hold live records:
        keyed.live_snapshots), so they can be written while the detectors move on."""
        return [EncodedState(topic, partition, cp.next_offset, cp.watermark, encode_state({
            "snapshots": cp.snapshots, "next_timer": cp.next_timer,
            "positions": {str(p): o for p, o in cp.origins.items()}}))
            for (topic, partition), cp in checkpoints.items()]

    def write(self, states: list[EncodedState]) -> None:
        for state in states:       # one request per part: a state can be tens of MB
            self._write(state)
        self.store.refresh("state")   # load() searches: only the small state index, never all

    def _write(self, state: EncodedState) -> None:
        pair = (state.topic, state.partition)
        generation = self._generations.get(pair, -1) + 1
        slot, write = generation % 2, secrets.token_hex(8)   # `write` ties the parts together
        packed = lz4.frame.compress(state.body)
        chunks = [packed[i:i + PART_BYTES] for i in range(0, len(packed), PART_BYTES)] or [b""]
        now = timeutil.format(time.time())
        for index, chunk in enumerate(chunks):
            part_id = self._part_id(*pair, slot, index)
            self.store.put_raw("state", [RawDoc(part_id, now, encode_state(_document(
                part_id, now, {"scope": self.scope, "write": write, "part": index,
                               "data": base64.b64encode(chunk).decode()})))])
        head_id = self._id(*pair)
        self.store.put_raw("state", [RawDoc(head_id, now, encode_state(_document(head_id, now, {
            "scope": self.scope, "topic": state.topic, "partition": state.partition,
            "next_offset": state.next_offset, "watermark": state.watermark,
            "format": FORMAT, "generation": generation, "slot": slot, "parts": len(chunks),
            "write": write, "bytes": len(state.body), "compressed": len(packed)})))])
        self._generations[pair] = generation


def _document(doc_id: str, now: str, state: dict) -> dict:
    return {"@timestamp": now,
            "event": {"id": doc_id, "kind": "state", "dataset": "watchkeeper.state"},
            "watchkeeper": {"state": state}}


def _checkpoint(state: dict) -> Checkpoint:
    if "positions" in state:
        origins = {int(p): at for p, at in state["positions"].items()}
    else:               # saved as offsets: every event of that offset was counted
        origins = {int(p): position(o, POSITION_SPAN - 1)
                   for p, o in state.get("origins", {}).items()}
    return Checkpoint(state["next_offset"], state["watermark"], state["snapshots"],
                      state.get("next_timer"), origins)


def encode_state(doc: dict) -> bytes:
    """JSON of a state document whose snapshots may hold dataclass records (int dict keys
    become strings, as `keyed.to_plain` makes them)."""
    return msgspec.json.encode(doc)
