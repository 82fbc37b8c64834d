"""Keyed state: one record per key (source, pair, target ...), least recently seen first.

Every detector keeps per-key state that must stay bounded: at most `cap` keys (the least
recently touched are evicted first, 1/64 of the cap at a time), and keys idle past a horizon
are expired on the timer.
A plain dict gives the order for free: `touch` pops and re-inserts, so iteration runs from
the least to the most recently seen key. Snapshots are the records as JSON builtins; restore
rebuilds the typed records (nested dataclasses, int dict keys) from the record class's own
annotations, so a snapshot written before a field was added still restores (the default).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Generic, TypeVar

import msgspec

S = TypeVar("S")
EVICT_SHARE = 64            # a table at its cap evicts cap // EVICT_SHARE records at once
FULL_SWEEP_EVERY = 12       # expire_idle calls at least between passes over every record (a
                            # minute of event time at the runner's 5 s timers)
FULL_SWEEP_TOUCHES = 4      # ... and touches per record at least between them


def to_plain(state):
    """Dataclasses (nested) -> JSON-ready dicts and lists (int keys as strings) for a
    snapshot: msgspec does it in C, ~20x faster than dataclasses.asdict, which dominated
    checkpoint time."""
    return msgspec.to_builtins(state, str_keys=True)


_live = threading.local()


@contextmanager
def live_snapshots():
    """Inside, `KeyedState.snapshot()` hands over the records themselves instead of copies as
    builtins, for a caller that encodes them at once (the checkpoint: msgspec writes the
    dataclasses straight to JSON, several times cheaper than building builtins first, which
    was most of a checkpoint's time). Nothing may change them before they are encoded."""
    _live.on = True
    try:
        yield
    finally:
        _live.on = False


def from_plain(kind: type[S], raw) -> S:
    """A record of type `kind` from its snapshot; JSON's string keys become the declared
    key type (e.g. dict[int, ...]), nested dataclasses are rebuilt."""
    return msgspec.convert(raw, kind, str_keys=True)


class KeyedState(Generic[S]):
    """Records of type `kind` by key, capped at `cap` (None: uncapped) in recency order.

    `on_drop(key)` is called for every record the table removes (eviction, restart, expiry),
    so a detector can drop what it keeps beside the record (e.g. a lookup set)."""

    def __init__(self, kind: type[S], cap: int | None = None,
                 on_drop: Callable[[str], None] | None = None):
        self.kind, self.cap, self.on_drop = kind, cap, on_drop
        self.states: dict[str, S] = {}
        self.evicted = 0                  # records dropped because the cap was reached
        self._idle_calls = 0              # expire_idle calls since the last full pass
        self._touches = 0                 # touches since the last full pass

    def touch(self, key: str, make: Callable[[], S],
              stale: Callable[[S], bool] | None = None) -> S:
        """The record of `key`, now the most recently seen; a new one from `make()` when
        there is none or `stale(record)` says its episode is over (the cap evicts first)."""
        self._touches += 1
        state = self.states.pop(key, None)
        if state is not None and stale is not None and stale(state):
            state = None
            self._dropped(key)
        if state is None:
            if self.cap is not None and len(self.states) >= self.cap:
                self._evict()
            state = make()
        self.states[key] = state
        return state

    def _evict(self) -> None:
        """Make room: the least recently touched 1/64 of the cap go at once (one record for
        a cap under 128). Every record taken from a dict's front leaves a hole there that
        `next(iter())` walks over until the next resize: one at a time, a table at its cap
        (the beaconing detector's pairs on a busy network) paid 3.5 µs a record for that."""
        count = max(1, self.cap // EVICT_SHARE)
        oldest = list(islice(self.states, count))
        for key in oldest:
            del self.states[key]
            self._dropped(key)
        self.evicted += len(oldest)

    def get(self, key: str) -> S | None:
        return self.states.get(key)

    def setdefault(self, key: str, make: Callable[[], S]) -> S:
        """The record of `key`, created if missing, without changing the recency order."""
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = make()
        return state

    def discard(self, key: str) -> None:
        if self.states.pop(key, None) is not None:
            self._dropped(key)

    def expire(self, done: Callable[[S], bool]) -> list[str]:
        """Drop every record `done(record)` says is over (e.g. idle past the horizon)."""
        gone = [key for key, state in self.states.items() if done(state)]
        for key in gone:
            del self.states[key]
            self._dropped(key)
        return gone

    def expire_idle(self, horizon: float) -> list[str]:
        """Drop the records whose `last_seen` is before `horizon`, for records that take their
        event's time at every touch. Records are kept in touch order, which is event-time
        order but for the disorder of the input, so the walk starts at the least recently
        touched and stops at the first record still live: a timer costs what it expires, not
        a pass over every key (at 100 events per event-time second that pass was 40 % of the
        source-keyed detection stage). A record touched late with an early time can wait
        behind a live one (no longer than its event was late: every record ahead of it was
        touched before it, so their times are at most the newest time seen then). A full pass
        frees those: after FULL_SWEEP_EVERY calls *and* FULL_SWEEP_TOUCHES times as many
        touches as there are records, so it costs at most a quarter of a check per touch (a
        pass every minute of event time over ~70k hosts was 15 % of the source-keyed stage
        at 100 events per second)."""
        self._idle_calls += 1
        if (self._idle_calls >= FULL_SWEEP_EVERY
                and self._touches >= FULL_SWEEP_TOUCHES * len(self.states)):
            self._idle_calls = self._touches = 0
            return self.expire(lambda state: state.last_seen < horizon)
        gone = []
        for key, state in self.states.items():
            if state.last_seen >= horizon:
                break
            gone.append(key)
        for key in gone:
            del self.states[key]
            self._dropped(key)
        return gone

    def _dropped(self, key: str) -> None:
        if self.on_drop is not None:
            self.on_drop(key)

    def __len__(self) -> int:
        return len(self.states)

    def __contains__(self, key: str) -> bool:
        return key in self.states

    def __iter__(self) -> Iterator[str]:
        return iter(self.states)

    def values(self):
        return self.states.values()

    def items(self):
        return self.states.items()

    def snapshot(self) -> dict:
        if getattr(_live, "on", False):
            return dict(self.states)        # the records; encoded before anything changes
        return {key: to_plain(state) for key, state in self.states.items()}

    def restore(self, raw: dict, evicted: int = 0) -> None:
        self.states = {key: from_plain(self.kind, state) for key, state in raw.items()}
        self.evicted = evicted


def drop_oldest(table: dict, cap: int) -> int:
    """Trim a per-record insertion-ordered dict to `cap` entries, oldest first; how many went."""
    gone = 0
    while len(table) > cap:
        del table[next(iter(table))]
        gone += 1
    return gone
