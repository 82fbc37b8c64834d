"""Batched re-keyed copies (detectors/rekey.py): where each group goes, when a batch is sent."""
from __future__ import annotations

from detectors import rekey
from watchkeeper import codec
from watchkeeper.bus.partition import partition_for


class Recorder:
    def __init__(self):
        self.sent: list[tuple[str, bytes, str | None]] = []

    def send(self, topic, value, key=None):
        self.sent.append((topic, value, key))


def test_each_group_key_lands_in_its_own_partition():
    for partitions in (1, 2, 4, 12, 48):
        keys = rekey.group_keys(partitions)
        assert [partition_for(k, partitions) for k in keys] == list(range(partitions))


def test_copies_are_grouped_by_their_keys_partition_and_sent_as_json_arrays_in_order():
    producer, copies = Recorder(), rekey.BatchedCopies(4)
    events = [{"n": i, "key": f"10.0.0.{i % 7}"} for i in range(50)]
    for event in events:
        copies.add(producer, "t", event["key"], codec.encode(event))
    assert producer.sent == []                  # nothing leaves before the step's end
    copies.send_all(producer)
    assert 1 < len(producer.sent) <= 4
    received = []
    for topic, value, key in producer.sent:
        batch = codec.decode(value)
        assert topic == "t" and {partition_for(e["key"], 4) for e in batch} == {
            partition_for(key, 4)}
        assert [e["n"] for e in batch] == sorted(e["n"] for e in batch)
        received += batch
    assert sorted(received, key=lambda e: e["n"]) == events
    copies.send_all(producer)                       # sent once only
    assert len(received) == sum(len(codec.decode(v)) for _, v, _ in producer.sent)


def test_a_group_past_the_size_bound_is_sent_at_once():
    producer, copies = Recorder(), rekey.BatchedCopies(1)
    copy = codec.encode({"pad": "x" * 1000})
    per_batch = -(-rekey.MAX_BATCH_BYTES // (len(copy) + 1))
    for _ in range(per_batch * 2 + 3):
        copies.add(producer, "t", "k", copy)
    assert [len(codec.decode(v)) for _, v, _ in producer.sent] == [per_batch, per_batch]
    copies.clear()                              # a failed step's copies are not sent
    copies.send_all(producer)
    assert len(producer.sent) == 2
