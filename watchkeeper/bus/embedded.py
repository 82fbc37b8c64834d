"""In-process bus with Kafka's semantics: keyed partitions, offsets, consumer groups.

Used by `watchkeeper run` and `ingest` on one machine. Messages live in memory: a message is
dropped once every group that reads its topic has committed past it, so memory tracks the
slowest group. "Reads its topic" means declared with `declare_readers` or subscribed: a stage
created later than the producer (as in `ingest`) must be declared first, or the messages it
owes could be trimmed before it exists. A group that was neither starts at the oldest message
still held.

With `max_held` (and `max_held_bytes`), a topic holds at most that many unread messages
(bytes) for its slowest reader group: a producer then waits for room (as Kafka's producer
waits when its buffer is full), so a flood at a listener turns into TCP back-pressure and
counted kernel drops instead of unbounded memory.
`run` sets it; `ingest` (one thread publishing a round, then draining it) must not.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from watchkeeper.bus.base import TOPICS, Bus, Consumer, Message, Producer
from watchkeeper.bus.partition import partition_for

# A partition's read prefix is trimmed in chunks, not per commit: at _TRIM_BATCH messages, or
# earlier once it is at least _TRIM_MIN and as long as what stays (so `del` moves no more than it
# frees: amortised O(1) per message). Counting messages alone kept up to 10 000 read messages
# per partition, which for 64 KiB dead letters (one partition: keyed by stage) is 1.3 GB.
_TRIM_BATCH = 10_000
_TRIM_MIN = 256
_WAIT_WARN_S = 30.0   # a producer waiting this long for room says which group is behind

log = logging.getLogger(__name__)


@dataclass
class _Partition:
    base: int = 0                       # offset of messages[0]
    messages: list[Message] = field(default_factory=list)
    # bytes of every message up to and including messages[i] (since the partition began):
    # the bytes between two offsets are a subtraction, whatever was trimmed
    through: list[int] = field(default_factory=list)
    before: int = 0                     # bytes of the messages trimmed off

    @property
    def end(self) -> int:
        return self.base + len(self.messages)

    def bytes_before(self, offset: int) -> int:
        """Bytes of every message before `offset` (clamped to what the partition holds)."""
        held = min(offset, self.end) - self.base
        return self.through[held - 1] if held > 0 else self.before

    @property
    def size(self) -> int:
        """Bytes of the messages held, read or not."""
        return self.bytes_before(self.end) - self.before

    def append(self, message: Message) -> None:
        self.through.append(self.bytes_before(self.end) + len(message.value))
        self.messages.append(message)

    def trim(self, offset: int) -> None:
        """Drop the messages before `offset`."""
        done = offset - self.base
        self.before = self.bytes_before(offset)
        del self.messages[:done]
        del self.through[:done]
        self.base = offset


class EmbeddedBus(Bus):
    def __init__(self, partitions: int = 4, max_held: int = 0, max_held_bytes: int = 0):
        self.url = "memory://"
        self.partitions = partitions
        self.max_held = max_held            # unread messages per topic; 0: unbounded
        # unread bytes per topic (0: unbounded): a message may be a batch of events (the
        # detectors' re-keyed copies) or a 128 KiB dead letter, so counting messages alone
        # does not bound memory
        self.max_held_bytes = max_held_bytes
        self.waited_seconds = 0.0           # producers' total wait for room (back-pressure)
        self._closed = False
        self.epoch = uuid.uuid4().hex
        self._cond = threading.Condition()
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._members: dict[str, list[EmbeddedConsumer]] = {}
        self._generation: dict[str, int] = {}
        self._readers: dict[str, set[str]] = {}   # topic -> groups declared or subscribed

    # -- Bus --------------------------------------------------------------------------------
    def producer(self) -> Producer:
        return EmbeddedProducer(self)

    def declare_readers(self, group: str, topics) -> None:
        with self._cond:
            self.ensure_topics(tuple(topics))
            for topic in topics:
                self._readers.setdefault(topic, set()).add(group)

    def consumer(self, group: str, topics) -> Consumer:
        member = EmbeddedConsumer(self, group, tuple(topics))
        with self._cond:
            self.declare_readers(group, topics)
            self._members.setdefault(group, []).append(member)
            self._generation[group] = self._generation.get(group, 0) + 1
        return member

    def ensure_topics(self, topics: tuple[str, ...] = TOPICS) -> None:
        with self._cond:
            for topic in topics:
                self._topics.setdefault(topic, [_Partition() for _ in range(self.partitions)])

    # -- used by producer and consumers (callers hold self._cond) ---------------------------
    def _append(self, topic: str, key: str | None, value: bytes) -> None:
        with self._cond:
            parts = self._topics.get(topic)
            if parts is None:
                self.ensure_topics((topic,))
                parts = self._topics[topic]
            if self._bounded and self._full(parts):
                self._wait_for_room(topic, parts)
            part_no = partition_for(key, self.partitions)
            part = parts[part_no]
            part.append(Message(topic, part_no, part.end, key, value, int(time.time() * 1000)))
            self._cond.notify_all()

    @property
    def _bounded(self) -> bool:
        return bool(self.max_held or self.max_held_bytes)

    def _full(self, parts: list[_Partition]) -> bool:
        """Whether the topic holds its bound, read or not (cheap; `_unread` says if it is
        really unread)."""
        return ((self.max_held and sum(len(p.messages) for p in parts) >= self.max_held)
                or (self.max_held_bytes
                    and sum(p.size for p in parts) >= self.max_held_bytes))

    def _unread(self, topic: str, parts: list[_Partition]) -> tuple[int, int, str | None]:
        """Messages and bytes of `topic` its slowest reader group has not committed (the
        group furthest behind either bound), and that group."""
        groups = self._readers.get(topic)
        if not groups:
            return 0, 0, None   # nobody will ever read them: bounding would only block
        behind = {}
        for group in groups:
            read = [max(p.base, self._committed.get((group, topic, i), 0))
                    for i, p in enumerate(parts)]
            behind[group] = (sum(p.end - r for p, r in zip(parts, read)),
                             sum(p.bytes_before(p.end) - p.bytes_before(r)
                                 for p, r in zip(parts, read)))
        slowest = max(behind, key=lambda g: self._share(*behind[g]))
        return (*behind[slowest], slowest)

    def _share(self, messages: int, size: int) -> float:
        """How full a topic is, as the larger share of its two bounds."""
        return max(messages / self.max_held if self.max_held else 0.0,
                   size / self.max_held_bytes if self.max_held_bytes else 0.0)

    def _wait_for_room(self, topic: str, parts: list[_Partition]) -> None:
        started = warned = time.monotonic()
        while not self._closed:
            held, size, slowest = self._unread(topic, parts)
            if self._share(held, size) < 1.0:
                break
            self._cond.wait(1.0)
            now = time.monotonic()
            if now - warned >= _WAIT_WARN_S:
                warned = now
                log.warning("bus: %s holds %d unread messages (%d bytes) for group %s; "
                            "producers have waited %.0f s for it", topic, held, size, slowest,
                            now - started)
        self.waited_seconds += time.monotonic() - started

    def close(self) -> None:
        with self._cond:
            self._closed = True     # a producer waiting for room appends and returns
            self._cond.notify_all()

    def _assignment(self, member: EmbeddedConsumer) -> list[tuple[str, int]]:
        members = self._members.get(member.group, [])
        topics = sorted({t for m in members for t in m.topics})
        pairs = [(t, p) for t in topics for p in range(self.partitions)]
        index = members.index(member)
        return [pair for i, pair in enumerate(pairs) if i % len(members) == index]

    def _leave(self, member: EmbeddedConsumer) -> None:
        with self._cond:
            members = self._members.get(member.group, [])
            if member in members:
                members.remove(member)
                self._generation[member.group] += 1

    def _commit(self, group: str, positions: dict[tuple[str, int], int]) -> None:
        with self._cond:
            for (topic, part_no), offset in positions.items():
                self._committed[(group, topic, part_no)] = offset
                self._trim(topic, part_no)
            if self._bounded:
                self._cond.notify_all()     # a producer may be waiting for room

    def _trim(self, topic: str, part_no: int) -> None:
        groups = self._readers.get(topic, set())
        safe = min((self._committed.get((g, topic, part_no), 0) for g in groups), default=0)
        part = self._topics[topic][part_no]
        done = safe - part.base
        if done >= _TRIM_BATCH or (done >= _TRIM_MIN and done >= len(part.messages) - done):
            part.trim(safe)


class EmbeddedProducer(Producer):
    def __init__(self, bus: EmbeddedBus):
        self._bus = bus

    def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        self._bus._append(topic, key, value)

    def flush(self) -> None:
        pass  # appends are synchronous: nothing is ever in flight


class EmbeddedConsumer(Consumer):
    exact_lag = True      # everything is in this process: lag() is what poll() would return

    def __init__(self, bus: EmbeddedBus, group: str, topics: tuple[str, ...]):
        self._bus = bus
        self.group = group
        self.topics = topics
        self._generation = -1
        self._positions: dict[tuple[str, int], int] = {}
        self._closed = False
        self._turn = 0  # rotates the first partition read, so a busy one starves none

    def _sync(self) -> None:
        """Follow a rebalance: keep retained partitions, resume new ones from the commit."""
        bus = self._bus
        if self._generation == bus._generation[self.group]:
            return
        self._generation = bus._generation[self.group]
        assigned = bus._assignment(self)
        self._positions = {
            pair: self._positions.get(pair, bus._committed.get((self.group, *pair), 0))
            for pair in assigned}

    def poll(self, max_records: int = 1000, timeout: float = 1.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._bus._cond:
            while True:
                self._sync()
                batch = self._take(max_records)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._closed:
                    return batch
                self._bus._cond.wait(remaining)

    def _take(self, max_records: int) -> list[Message]:
        batch: list[Message] = []
        pairs = list(self._positions.items())
        self._turn = (self._turn + 1) % max(1, len(pairs))
        for (topic, part_no), position in pairs[self._turn:] + pairs[:self._turn]:
            part = self._bus._topics[topic][part_no]
            start = max(position, part.base) - part.base
            chunk = part.messages[start:start + max_records - len(batch)]
            if chunk:
                batch.extend(chunk)
                self._positions[(topic, part_no)] = chunk[-1].offset + 1
            if len(batch) >= max_records:
                break
        return batch

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        self._bus._commit(self.group, dict(self._positions if offsets is None else offsets))

    def rewind(self) -> None:
        with self._bus._cond:
            self._sync()
            committed = self._bus._committed
            self._positions = {pair: committed.get((self.group, *pair), 0)
                               for pair in self._positions}

    def lag(self) -> int:
        """Messages still held and not yet read: a trimmed message is never owed."""
        with self._bus._cond:
            self._sync()
            parts = self._bus._topics
            return sum(parts[t][p].end - max(pos, parts[t][p].base)
                       for (t, p), pos in self._positions.items())

    def assigned(self) -> set[tuple[str, int]]:
        with self._bus._cond:
            self._sync()
            return set(self._positions)

    def unowned(self) -> int:
        """Members share every partition of their topics as soon as they are created."""
        return 0

    def left_out(self) -> bool:
        return False

    def close(self) -> None:
        self._closed = True
        self._bus._leave(self)
