"""The detector toolkit's parts on their own (the detectors' own tests and the contract suite
cover them in use)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from detectors.kit import Ewma, InterimDelta, KeyedState, SeededEwma, doubled
from detectors.kit.events import number, part, text
from detectors.kit.keyed import drop_oldest


@dataclass
class _Inner:
    total: float = 0.0


@dataclass
class _Record:
    last_seen: float
    buckets: dict[int, list[float]] = field(default_factory=dict)
    inner: _Inner = field(default_factory=_Inner)
    later: int = 0                      # a field "added after" old snapshots were written


def test_the_cap_evicts_the_least_recently_touched_key():
    dropped = []
    table = KeyedState(_Record, cap=2, on_drop=dropped.append)
    table.touch("a", lambda: _Record(1))
    table.touch("b", lambda: _Record(2))
    table.touch("a", lambda: _Record(3))          # a is now the most recent
    table.touch("c", lambda: _Record(4))
    assert list(table) == ["a", "c"] and table.evicted == 1 and dropped == ["b"]
    assert table.get("a").last_seen == 1          # touched, not replaced


def test_a_stale_record_restarts_and_expiry_drops():
    dropped = []
    table = KeyedState(_Record, on_drop=dropped.append)
    first = table.touch("a", lambda: _Record(1))
    again = table.touch("a", lambda: _Record(9), stale=lambda r: r.last_seen < 5)
    assert again is not first and again.last_seen == 9 and dropped == ["a"]
    table.touch("b", lambda: _Record(2))
    assert table.expire(lambda r: r.last_seen < 5) == ["b"] and list(table) == ["a"]
    assert table.evicted == 0 and dropped == ["a", "b"]


def test_a_big_table_at_its_cap_evicts_its_oldest_sixty_fourth_at_once():
    """One record at a time cost a walk over the dict's holes per eviction (3.5 µs)."""
    dropped = []
    table = KeyedState(_Record, cap=640, on_drop=dropped.append)
    for i in range(640):
        table.touch(f"k{i}", lambda: _Record(i))
    table.touch("k0", lambda: _Record(0))              # now the most recent
    table.touch("new", lambda: _Record(1000))
    assert dropped == [f"k{i}" for i in range(1, 11)] and table.evicted == 10
    assert len(table) == 631 and "k0" in table and list(table)[-1] == "new"
    for i in range(9):
        table.touch(f"more{i}", lambda: _Record(1000))
    assert table.evicted == 10 and len(table) == 640        # room for nine more first


def test_idle_expiry_walks_from_the_oldest_and_stops_at_the_first_live_record():
    """expire_idle costs what it expires: in touch order it stops at the first live record.
    A record touched late with an early time waits behind it until the periodic full pass."""
    from detectors.kit.keyed import FULL_SWEEP_EVERY, FULL_SWEEP_TOUCHES
    dropped = []
    table = KeyedState(_Record, on_drop=dropped.append)
    for key, seen in (("a", 1), ("b", 2), ("c", 10), ("late", 3), ("d", 11)):
        table.touch(key, lambda seen=seen: _Record(seen))
    for _ in range(3 * FULL_SWEEP_TOUCHES):              # touches enough for a full pass
        table.touch("d", lambda: _Record(11))
    assert table.expire_idle(5) == ["a", "b"]           # "c" is live: the walk stops there
    assert list(table) == ["c", "late", "d"] and dropped == ["a", "b"]
    calls = 1
    while calls % FULL_SWEEP_EVERY != FULL_SWEEP_EVERY - 1:
        assert table.expire_idle(5) == []              # "late" waits behind "c"
        calls += 1
    assert table.expire_idle(5) == ["late"]             # the full pass
    assert list(table) == ["c", "d"]


def test_the_full_pass_waits_for_touches_in_proportion_to_the_records():
    """The pass over every record costs one check per record: it waits until the table has
    been touched FULL_SWEEP_TOUCHES times per record it holds, so it costs a fraction of a
    check per touch."""
    from detectors.kit.keyed import FULL_SWEEP_EVERY, FULL_SWEEP_TOUCHES
    table = KeyedState(_Record)
    for i in range(101 * FULL_SWEEP_TOUCHES - 1):
        table.touch(f"live{i % 100}", lambda: _Record(10))
    table.touch("old", lambda: _Record(1))               # 101 records, enough touches
    for _ in range(FULL_SWEEP_EVERY - 1):
        assert table.expire_idle(5) == []
    assert table.expire_idle(5) == ["old"]             # the pass comes after 12 calls
    table.touch("late", lambda: _Record(3))             # behind 100 live records
    for _ in range(3 * FULL_SWEEP_EVERY):
        assert table.expire_idle(5) == []              # one touch since the last pass
    for i in range(101 * FULL_SWEEP_TOUCHES - 2):      # half of them: "late" stays behind
        table.touch(f"live{i % 50}", lambda: _Record(10))
    assert table.expire_idle(5) == []                   # one touch short
    table.touch("live0", lambda: _Record(10))
    assert table.expire_idle(5) == ["late"]


def test_snapshots_are_json_and_restore_typed_records():
    table = KeyedState(_Record, cap=10)
    record = table.touch("a", lambda: _Record(1.0))
    record.buckets[7] = [3, 2.5]
    record.inner.total = 4.0
    raw = json.loads(json.dumps(table.snapshot()))
    assert raw["a"]["buckets"] == {"7": [3, 2.5]}
    del raw["a"]["later"]                         # written before the field existed
    copy = KeyedState(_Record, cap=10)
    copy.restore(raw, evicted=3)
    restored = copy.get("a")
    assert restored.buckets == {7: [3.0, 2.5]} and restored.inner == _Inner(4.0)
    assert restored.later == 0 and copy.evicted == 3
    restored.buckets[7].append(1)                 # never shares lists with the snapshot
    assert raw["a"]["buckets"]["7"] == [3, 2.5]


def test_ewma_baselines():
    plain, seeded = Ewma(), SeededEwma()
    seeded.decay(5, 0.5, 100)                     # quiet before the first value: ignored
    for value in (10.0, 10.0):
        plain.update(value, 0.5)
        seeded.update(value, 0.5)
    assert seeded.mean == 10.0 and seeded.var == 0.0 and seeded.n == 2
    assert plain.mean == 7.5 and plain.var > 0
    seeded.decay(1000, 0.5, 3)                    # bounded number of empty windows
    assert seeded.n == 5 and seeded.threshold(2) == seeded.mean + 2 * seeded.var ** 0.5


@pytest.mark.parametrize("alpha,empty", [(0.1, 1), (0.1, 37), (0.3, 200), (0.05, 1500)])
def test_folding_empty_windows_is_what_updating_with_zeros_gives(alpha, empty):
    """decay() folds k quiet windows in closed form: the same baseline as k update(0)."""
    folded, stepped = Ewma(), Ewma()
    for value in (120.0, 80.0, 300.0, 95.0):
        folded.update(value, alpha)
        stepped.update(value, alpha)
    folded.decay(empty, alpha, 1000)
    for _ in range(min(empty, 1000)):
        stepped.update(0.0, alpha)
    assert folded.n == stepped.n
    assert folded.mean == pytest.approx(stepped.mean, rel=1e-9, abs=1e-300)
    assert folded.var == pytest.approx(stepped.var, rel=1e-9, abs=1e-300)
    folded.decay(0, alpha, 1000)                  # nothing to fold
    assert folded.n == stepped.n


def _flow(uid: str, final: bool) -> dict:
    return {"watchkeeper": {"flow": {"uid": uid, "final": final}}}


def test_interim_records_count_only_their_growth():
    delta = InterimDelta(cap=1)
    assert delta.advance(_flow("a", False), 100) is None      # a new flow
    assert delta.advance(_flow("a", False), 250) == 100
    assert delta.advance(_flow("b", False), 5) is None        # the cap drops a
    assert delta.evicted == 1 and delta.snapshot() == {"b": 5}
    assert delta.advance(_flow("b", True), 9) == 5 and delta.snapshot() == {}
    assert delta.advance(_flow("c", True), 9) is None         # a short flow: final only


def test_the_reraise_rule():
    assert doubled(1, 0) and doubled(20, 10) and not doubled(19, 10)


def test_defensive_field_reads():
    event = {"network": None, "watchkeeper": {"flow": "x"}, "source": {"ip": "10.0.0.1"}}
    assert part(event, "network") == {} and part(event, "watchkeeper", "flow") == {}
    assert part(event, "source") == {"ip": "10.0.0.1"} and part(event, "nope", "x") == {}
    assert number("7") == 0 and number(True) == 0 and number(2.5) == 2.5
    assert text(["S0"]) is None and text("S0") == "S0"
    assert drop_oldest({"a": 1, "b": 2, "c": 3}, 1) == 2
