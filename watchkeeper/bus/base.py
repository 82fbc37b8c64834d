"""Bus contract shared by the embedded and Kafka implementations.

Semantics (both backends, checked by tests/contract/test_bus.py):
- a topic has N partitions; a message's key picks its partition (Kafka's murmur2), so all
  messages about one entity are consumed in order by one member of a group;
- each consumer group sees every message; members of a group split the partitions;
- `commit()` stores the position after the last message returned by `poll()`; a member that
  joins later (or after a crash) resumes from the committed position: at-least-once.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlparse



@dataclass(frozen=True)
class Names:
    """Topic and consumer-group names. The default namespace gives wk.events, wk-detect...;
    another one keeps a tenant, a benchmark or a test run apart on a shared broker."""
    namespace: str = "wk"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def alerts(self) -> str:
        return f"{self.namespace}.alerts"

    @property
    def alerts_raw(self) -> str:
        """Alerts as raised (detectors, Suricata), before the alerting policy stage."""
        return f"{self.namespace}.alerts.raw"

    @property
    def deadletter(self) -> str:
        return f"{self.namespace}.deadletter"

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.events, self.alerts, self.deadletter, self.alerts_raw)

    def group(self, role: str) -> str:
        return f"{self.namespace}-{role}"

    def rekeyed(self, field: str) -> str:
        """Events again, keyed by another entity (e.g. destination.ip for flood targets)."""
        return f"{self.namespace}.events.by-{field.replace('.', '-')}"


DEFAULT_NAMES = Names()
EVENTS, ALERTS, DEADLETTER = DEFAULT_NAMES.topics[:3]
TOPICS = DEFAULT_NAMES.topics


class BusError(RuntimeError):
    """A send or commit failed; the caller must not commit what depended on it."""


class BusUnavailable(BusError):
    """The broker cannot be reached; the message names the address and what to do."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int


class Producer(ABC):
    @abstractmethod
    def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        """Queue one message; delivery is confirmed by `flush()`."""

    @abstractmethod
    def flush(self) -> None:
        """Block until every queued message is stored; raise BusError if any was not."""

    def close(self) -> None:
        self.flush()


class Consumer(ABC):
    # True when a `lag()` of 0 means nothing published is left to read, so `drain` need not
    # wait for more: the embedded bus (lag is what poll() would return) and kafka-python's
    # (a 0 is always the broker's answer). librdkafka's reads its fetcher's cached ends, so a
    # caller must still poll with a timeout to be sure.
    exact_lag: bool = False

    @abstractmethod
    def poll(self, max_records: int = 1000, timeout: float = 1.0) -> list[Message]:
        """Next messages of this member's partitions (empty after `timeout` seconds)."""

    @abstractmethod
    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Store the position after everything `poll()` returned so far; with `offsets`
        ((topic, partition) -> next offset to read), store exactly those instead: a stage
        with writes in flight commits only what is already stored."""

    @abstractmethod
    def lag(self) -> int | None:
        """Messages in this member's partitions not yet returned by `poll()`; None while the
        member has not been given its partitions yet (Kafka joins the group on first poll)."""

    @abstractmethod
    def rewind(self) -> None:
        """Forget what `poll()` returned since the last `commit()`: the next poll starts again
        at the committed positions. A stage calls it when a downstream write failed, so the
        uncommitted messages are read again instead of being skipped (at-least-once)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group without committing."""

    def assigned(self) -> set[tuple[str, int]] | None:
        """The (topic, partition) pairs this member holds now; None when the bus cannot say.
        A stateful stage forgets what a rebalance took away, so it never saves that state
        or commits those offsets again (they are the new owner's)."""
        return None

    def unowned(self) -> int | None:
        """Partitions of this member's topics that no member of its group holds now, as the
        group's coordinator sees a settled group (0 while a rebalance is under way: that is
        not a gap yet); None when the bus cannot say. The liveness watchdog asks it from its
        own thread, so it never touches the member's client: a group whose partitions nobody
        holds is stalled without any member owing work (no member has a lag)."""
        return None

    def left_out(self) -> bool | None:
        """True when this member holds no partition though its settled group has fewer
        members than one of its topics has partitions (so it is outside the group, or was
        given nothing: a rejoin brings it back); None when the bus cannot say. Asked from
        the watchdog's thread, like `unowned`."""
        return None

    def rejoin(self) -> None:
        """Leave the group and join it again as a new member, which resumes from the
        committed offsets (what the liveness watchdog does to a stalled stage). Raises
        BusError if the new member cannot be created; the next `poll()` tries again.
        The embedded bus has no membership that can expire: nothing to do."""


class Bus(ABC):
    url: str
    partitions: int
    # What offsets are relative to. Kafka's offsets outlive the process (""); an embedded bus's
    # start at 0 with every instance, so state saved with an offset of one instance (a detector
    # checkpoint) must never be read against another: each instance has its own epoch.
    epoch: str = ""

    @abstractmethod
    def producer(self) -> Producer: ...

    @abstractmethod
    def consumer(self, group: str, topics: list[str] | tuple[str, ...]) -> Consumer: ...

    @abstractmethod
    def ensure_topics(self, topics: tuple[str, ...] = TOPICS) -> None: ...

    def declare_readers(self, group: str, topics: list[str] | tuple[str, ...]) -> None:
        """Say up front that `group` will read `topics`, before any member of it exists.

        The embedded bus keeps a message until every reader group has committed past it, so
        a group that subscribes late (as `ingest`'s later stages do) still finds everything.
        Kafka keeps messages by time and size, not by reader: nothing to do there."""

    def close(self) -> None:
        pass


def open_bus(url: str, partitions: int = 4, memory_max_held: int = 0,
             memory_max_held_bytes: int = 0, fetch_wait_ms: int | None = None) -> Bus:
    """`memory://` (in-process), `kafka://HOST:PORT[,HOST:PORT]` (kafka-python) or
    `kafka+rdkafka://…` (confluent-kafka, optional). `memory_max_held` (`_bytes`) bounds
    the embedded bus's unread messages (bytes) per topic (0: unbounded); Kafka keeps them on
    disk. `fetch_wait_ms` (kafka-python only): how long a consumer's fetch waits at the
    broker for data. Its default, 500, suits long-running stages; a batch job that drains
    (`ingest`) asks for less: each of its lag questions queues behind that wait, and an idle
    drain cost ~1 s per stage with 500 (~0.2 s with 100). Not the default for all: an idle
    member fetching five times as often cost 2.5x the CPU (bench/RESULTS.md, session 35)."""
    scheme = urlparse(url).scheme
    if scheme == "memory":
        from watchkeeper.bus.embedded import EmbeddedBus
        return EmbeddedBus(partitions=partitions, max_held=memory_max_held,
                           max_held_bytes=memory_max_held_bytes)
    if scheme == "kafka":
        from watchkeeper.bus.kafka import KafkaBus
        return KafkaBus(url, partitions=partitions, fetch_wait_ms=fetch_wait_ms)
    if scheme == "kafka+rdkafka":       # the optional librdkafka client (bus/rdkafka.py)
        try:
            from watchkeeper.bus.rdkafka import RdKafkaBus
        except ImportError:
            raise ValueError(f"bus URL {url!r} needs the optional client: pip install "
                             "'watchkeeper[rdkafka]' (or use kafka://)") from None
        return RdKafkaBus(url, partitions=partitions)
    raise ValueError(f"bus URL {url!r}: use memory://, kafka://HOST:PORT or "
                     "kafka+rdkafka://HOST:PORT")
