"""Detection stage: events from the bus through the detectors; alerts onto wk.alerts.raw
(the alerting stage applies asset context, allowlists, suppression and incident ids).

Detectors run per partition (one instance set per partition this worker reads), so the
alerts are the same whether one worker reads every partition or several share them, and a
partition's state can move between workers through checkpoints (detectors/checkpoint.py).
Offsets are committed only at checkpoints, right after the state they match is stored. A
running stage saves its partitions one at a time (a round over the dirty ones), each encoded
at once and written in the background (detectors/checkpoint_writes.py): detection stops for
one partition's encoding, not for every partition's encoding and write.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from detectors.base import Detector
from detectors.checkpoint import Checkpoint, CheckpointStore
from detectors.checkpoint_writes import BackgroundWrites
from detectors.kit.keyed import live_snapshots
from detectors.rekey import BatchedCopies
from watchkeeper import batches, codec, metrics, schema, timeutil
from watchkeeper.bus import Bus, Message, Names
from watchkeeper.deadletter import send_deadletter
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.store import Store
from watchkeeper.worker import StepResult

TIMER_EVERY_S = 5.0   # event-time seconds between on_timer calls
# At most this share of a stage's time goes to saving its state: a checkpoint that took
# 1.7 s (tens of thousands of keys) is next taken ~32 s later, not 5 s, where it would eat a
# third of the stage and stall every event behind it. The cost counts the store's part too
# (the background write): a source partition's state of ~20 MB written every ~1.5 s sent the
# store more bytes than the events did. The price: a restart re-reads more. A partition whose
# stream stopped is saved once without waiting (DetectionWorker._quiet_dirty).
MAX_CHECKPOINT_SHARE = 0.05
# What one event can raise without failing the step: AttributeError/IndexError too, since a
# detector's bug on one shape of input would otherwise fail the step, which is retried from
# the commit, i.e. for ever (a poison pill).
EVENT_ERRORS = (codec.DecodeError, schema.ValidationError, KeyError, ValueError, TypeError,
                AttributeError, IndexError)


class PartitionDetectors:
    """The detectors of one partition, with that partition's event-time clock."""

    def __init__(self, detectors: list[Detector], next_offset: int = 0, watermark: float = 0.0,
                 next_timer: float | None = None, origins: dict[int, int] | None = None):
        self.detectors = detectors
        self.next_offset = next_offset
        self.watermark = watermark
        # kept in the checkpoint: a restored partition fires its timers at the same event
        # times as one that never stopped
        self._next_timer = watermark + TIMER_EVERY_S if next_timer is None else next_timer
        self.origins = origins if origins is not None else {}
        self._by_dataset: dict[str, list[Detector]] = {}
        for det in detectors:
            for dataset in det.datasets:
                self._by_dataset.setdefault(dataset, []).append(det)

    def on_event(self, event: dict) -> list[AlertSpec]:
        event_time = timeutil.parse(event["@timestamp"])
        self.watermark = max(self.watermark, event_time)
        specs = [spec for det in self._by_dataset.get(event["event"]["dataset"], ())
                 for spec in det.on_event(event, event_time)]
        if self.watermark >= self._next_timer:
            self._next_timer = self.watermark + TIMER_EVERY_S
            specs += [spec for det in self.detectors for spec in det.on_timer(self.watermark)]
        return specs

    def counted_before(self, origin: tuple[int, int]) -> bool:
        """A re-keyed copy already counted: its source position (batches.position) is not
        past the last one seen from that source partition (copies from one source partition
        arrive in order)."""
        partition, at = origin
        if at <= self.origins.get(partition, -1):
            return True
        self.origins[partition] = at
        return False

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.next_offset, self.watermark,
                          {det.name: det.snapshot() for det in self.detectors},
                          self._next_timer, dict(self.origins))


class DetectionWorker:
    name = "detect"

    def __init__(self, bus: Bus, make_detectors: Callable[[], list[Detector]], store: Store,
                 names: Names = Names(), alert_window_seconds: int = 3600,
                 checkpoint_every_s: float = 5.0, input_topic: str | None = None,
                 group: str | None = None, rekey: dict[str, str] | None = None,
                 rekey_datasets: dict[str, frozenset[str]] | None = None):
        self.make_detectors = make_detectors
        self.names = names
        self.alert_window_seconds = alert_window_seconds
        self.checkpoint_every_s = checkpoint_every_s
        self.rekey = rekey or {}          # entity field -> topic for detectors keyed on it
        # entity field -> the datasets its detectors read (None: every event is re-published)
        self.rekey_datasets = rekey_datasets or {}
        group = self.group = group or names.group(self.name)
        # Checkpoints hold offsets: scoped to the bus epoch, so a new embedded bus (a second
        # `ingest`, a restarted `run`) never skips its first messages as "already seen".
        self.checkpoints = CheckpointStore(store, f"{group}@{bus.epoch}" if bus.epoch else group)
        self.consumer = bus.consumer(group, [input_topic or names.events])
        self.producer = bus.producer()
        # a re-keyed topic carries batches of copies (detectors/rekey.py, a JSON array), the
        # events topic single events or JSON-lines batches (watchkeeper/batches.py); either
        # way a stage polls for about as many events per step
        self.batched_input = input_topic is not None and input_topic != names.events
        self._poll_size = batches.PollSize(2000)
        self._copies = BatchedCopies(bus.partitions)
        self._partitions: dict[tuple[str, int], PartitionDetectors] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._last_checkpoint = time.monotonic()
        self._checkpoint_cost = 0.0        # seconds the last checkpoint held the stage up
        self._write_cost = 0.0             # seconds the store took to write the last one
        self._writes = BackgroundWrites(group)
        self._round: list[tuple[str, int]] = []     # partitions still to save this round
        self._last_read: dict[tuple[str, int], float] = {}   # partition -> when last read

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(self._poll_size.records(max_records), timeout)
        if messages:
            now = time.monotonic()
            for pair in {(msg.topic, msg.partition) for msg in messages}:
                self._last_read[pair] = now
        raised = bad = events = 0
        for msg in messages:
            for value, specs_or_error in self._detect(msg):
                events += 1
                if isinstance(specs_or_error, Exception):
                    bad += 1
                    raw = value if isinstance(value, bytes) else codec.encode(value)
                    send_deadletter(self.producer, self.names, self.name,
                                    f"{type(specs_or_error).__name__}: {specs_or_error}",
                                    raw, msg.topic, f"{msg.topic}:{msg.partition}:{msg.offset}")
                elif specs_or_error:
                    # Sent as raised, not after the rest of the batch: an alert's latency is
                    # its own event's, not the batch's (the send is asynchronous; flushed below).
                    self._publish(specs_or_error)
                    raised += len(specs_or_error)
        self._poll_size.saw(len(messages), events)
        self._copies.send_all(self.producer)
        self.producer.flush()          # alerts and copies are on the bus before any checkpoint
        self._collect_writes()
        quiet = None if messages else self._quiet_dirty()
        if quiet is not None:
            self._save([quiet])
        elif self._checkpoint_due(idle=not messages):
            self._save_next()
        metrics.RECORDS.labels(stage=self.name, outcome="accepted").inc(events - bad)
        return StepResult(consumed=len(messages), alerts=raised, deadlettered=bad)

    def _detect(self, msg: Message) -> Iterator[tuple[object, list[AlertSpec] | Exception]]:
        """Each event of the message (one, or a batch of re-keyed copies: then the decoded
        event) with its alerts, or with the error that sends it to the dead letters."""
        try:
            part = self._partition(msg)
        except EVENT_ERRORS as exc:
            yield msg.value, exc
            return
        self._dirty.add((msg.topic, msg.partition))
        if msg.offset < part.next_offset:
            # Already inside the state (restored, or kept across a rejoin that sent the
            # consumer back to the last commit). Dirty all the same: that state may never
            # have been committed (a rebalance between a write and its commit), and a quiet
            # partition would keep the lag for good.
            return
        part.next_offset = msg.offset + 1
        if not self.batched_input:
            for index, value in enumerate(batches.split(msg.value)):
                try:
                    decoded = codec.decode(value)
                except codec.DecodeError as exc:
                    yield value, exc
                    continue
                yield value, self._detect_event(decoded, msg, part, raw=value, index=index)
            return
        try:
            decoded = codec.decode(msg.value)
        except codec.DecodeError as exc:
            yield msg.value, exc
            return
        if not isinstance(decoded, list):
            yield msg.value, self._detect_event(decoded, msg, part)
            return
        for element in decoded:
            try:
                event, origin = _unpack_copy(element)
            except schema.ValidationError as exc:
                yield element, exc
                continue
            yield event, self._detect_event(event, msg, part, origin)

    def _detect_event(self, event: object, msg: Message, part: PartitionDetectors,
                      origin: tuple[int, int] | None = None, raw: bytes | None = None,
                      index: int = 0) -> list[AlertSpec] | Exception:
        """`origin`: a copy's (source partition, source position); `raw`, `index`: an event
        of the events topic, its bytes and its place in its message's batch."""
        try:
            if not isinstance(event, dict):
                raise schema.ValidationError("event is not a JSON object")
            if origin is None and self.batched_input:
                origin = _pop_origin(event)    # an older copy (origins exist only on copies)
            if origin is not None and part.counted_before(origin):
                return []              # a copy re-published after its source worker restarted
            copy = None
            for field, topic in self.rekey.items():
                wanted = self.rekey_datasets.get(field)
                if wanted is not None and schema.get(event, "event.dataset") not in wanted:
                    continue          # no detector on that topic reads this kind of event
                key = schema.get(event, field)
                if key is not None:
                    copy = copy or self._copy(event, msg, raw, index)
                    self._copies.add(self.producer, topic, str(key), copy)
            return part.on_event(event)
        except EVENT_ERRORS as exc:
            return exc

    def _copy(self, event: dict, msg: Message, raw: bytes | None, index: int) -> bytes:
        """A re-keyed copy: [source partition, source offset, (index in the batch,) event],
        the event as it was read (its bytes, not encoded again: that and a dict copy were ~7 %
        of the stage)."""
        if raw is None:
            raw = codec.encode(event)
        if index:
            return b"[%d,%d,%d,%s]" % (msg.partition, msg.offset, index, raw)
        return b"[%d,%d,%s]" % (msg.partition, msg.offset, raw)

    def _partition(self, msg: Message) -> PartitionDetectors:
        """This partition's detectors: restored from its checkpoint when new to this worker,
        or when another worker moved the partition on while this one did not own it."""
        pair = (msg.topic, msg.partition)
        part = self._partitions.get(pair)
        if part is None or (msg.offset > part.next_offset and self._moved_on(pair, part)):
            part = self._partitions[pair] = self._restore(*pair)
        return part

    def _moved_on(self, pair: tuple[str, int], part: PartitionDetectors) -> bool:
        saved = self.checkpoints.load_offset(*pair)      # the head only, not the state
        return saved is not None and saved > part.next_offset

    def _restore(self, topic: str, partition: int) -> PartitionDetectors:
        detectors = self.make_detectors()
        saved = self.checkpoints.load(topic, partition)
        if saved is None:
            return PartitionDetectors(detectors)
        for det in detectors:
            if det.name in saved.snapshots:
                det.restore(saved.snapshots[det.name])
        return PartitionDetectors(detectors, saved.next_offset, saved.watermark,
                                  saved.next_timer, saved.origins)

    def _checkpoint_due(self, idle: bool) -> bool:
        """Every `checkpoint_every_s`, or as soon as the stage has caught up, but never more
        often than MAX_CHECKPOINT_SHARE of the time allows given what the last one cost (its
        encoding on the stage's path plus its write to the store), and never while the last
        one is still being written; the partitions of a round follow one another as that
        spacing allows."""
        if not self._dirty or self._writes:
            return False               # the store is still writing the last one: none queued
        since = time.monotonic() - self._last_checkpoint
        cost = self._checkpoint_cost + self._write_cost
        if since < cost * (1 / MAX_CHECKPOINT_SHARE - 1):
            return False
        return bool(self._round) or idle or since >= self.checkpoint_every_s

    def _quiet_dirty(self) -> tuple[str, int] | None:
        """A dirty partition nothing was read from for `checkpoint_every_s` (the stream
        stopped), to save now whatever the spacing says: each is saved once and is then clean,
        so the store's load stays bounded, and its offsets are committed seconds after the
        stream stops, not minutes (up to 211 s with two source processes)."""
        if self._writes or not self._dirty:
            return None
        self._forget_revoked()
        now = time.monotonic()
        return next((pair for pair in sorted(self._dirty)
                     if now - self._last_read.get(pair, now) >= self.checkpoint_every_s), None)

    def settle(self) -> None:
        """Drained (`worker.drain`: an `ingest` round, a stop): the checkpoint the spacing put
        off is taken now, so what was read is saved and committed."""
        self.checkpoint()

    def checkpoint(self) -> None:
        """Store every touched partition's state now, then commit the offsets it reflects."""
        self._round = []
        self._forget_revoked()
        if self._dirty:
            self._save(sorted(self._dirty))
        self._collect_writes(block=True)

    def _forget_revoked(self) -> None:
        """Partitions a rebalance took away are the new owner's: saved or committed from
        here, this worker's older state and offsets would overwrite the owner's (a commit
        from any member of the group's generation is accepted). Read again later, they are
        restored from the store."""
        held = self.consumer.assigned()
        if held is None:
            return
        for pair in [p for p in self._partitions if p not in held]:
            del self._partitions[pair]
            self._dirty.discard(pair)
            self._last_read.pop(pair, None)

    def _commit_held(self, offsets: dict[tuple[str, int], int]) -> None:
        held = self.consumer.assigned()
        mine = offsets if held is None else {p: o for p, o in offsets.items() if p in held}
        if mine:
            self.consumer.commit(mine)

    def _save_next(self) -> None:
        """The next partition of the round (a new round: the partitions dirty now)."""
        self._forget_revoked()
        if not self._round:
            self._round = sorted(self._dirty)
        while self._round:
            pair = self._round.pop(0)
            if pair in self._dirty:
                self._save([pair])
                return

    def _save(self, pairs: list[tuple[str, int]]) -> None:
        started = time.monotonic()
        with live_snapshots():          # encoded here, before any event moves them
            saved = {pair: self._partitions[pair].checkpoint() for pair in pairs}
            docs = self.checkpoints.encode(saved)
        self._dirty.difference_update(pairs)
        self._last_checkpoint = time.monotonic()
        self._checkpoint_cost = self._last_checkpoint - started

        def write() -> None:
            begun = time.monotonic()
            self.checkpoints.write(docs)
            self._write_cost = time.monotonic() - begun
        self._writes.submit(write,
                            {pair: cp.next_offset for pair, cp in saved.items()}, started)

    def _collect_writes(self, block: bool = False) -> None:
        took = self._writes.collect(self._commit_held, block)
        if took is not None:
            metrics.CHECKPOINT_SECONDS.labels(group=self.group).set(took)

    def _publish(self, specs: list[AlertSpec]) -> None:
        created = time.time()
        for spec in specs:
            doc = alert_document(spec, created, self.alert_window_seconds)
            self.producer.send(self.names.alerts_raw, codec.encode(doc), key=spec.entity)
        metrics.RECORDS.labels(stage=self.name, outcome="alerted").inc(len(specs))

    def reset(self) -> None:
        """Back to the last checkpoint: its offsets and the detector state that matches them
        (state built from messages after it would count them twice when they are re-read)."""
        self._writes.abandon()
        self._copies.clear()
        self.consumer.rewind()
        self._partitions.clear()
        self._dirty.clear()
        self._last_read.clear()
        self._round = []

    def close(self) -> None:
        try:
            self._collect_writes(block=True)
        finally:
            self._writes.close()
            self.producer.close()
            self.consumer.close()


# Copies written before 2026-12-05 carry their origin inside: watchkeeper.rekeyed_from.
_ORIGIN = "rekeyed_from"


def _unpack_copy(element: object) -> tuple[object, tuple[int, int] | None]:
    """(event, (source partition, source position)) of one element of a batch of copies:
    [source partition, source offset, (index in its batch,) event], or an event that carries
    its origin inside (an older copy)."""
    if not isinstance(element, list):
        return element, None
    numbers = element[:-1]
    if len(element) not in (3, 4) or not all(type(n) is int and n >= 0 for n in numbers):
        raise schema.ValidationError("a re-keyed copy is [source partition, source offset, "
                                     "(index,) event]")
    index = numbers[2] if len(numbers) == 3 else 0
    if index >= batches.POSITION_SPAN:
        raise schema.ValidationError(f"a copy's index in its batch is below "
                                     f"{batches.POSITION_SPAN}")
    return element[-1], (numbers[0], batches.position(numbers[1], index))


def _pop_origin(event: dict) -> tuple[int, int] | None:
    extra = event.get("watchkeeper")
    if not isinstance(extra, dict) or _ORIGIN not in extra:
        return None
    partition, offset = extra.pop(_ORIGIN)
    return int(partition), batches.position(int(offset))
