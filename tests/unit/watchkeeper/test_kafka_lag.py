"""KafkaBusConsumer.lag() without a broker: the ends it caches (the last fetch's, the last
asked) save a round trip per step, but never turn messages published since into a lag of 0,
on which `worker.drain` ends a stage's round."""
from __future__ import annotations

from kafka.structs import TopicPartition

from watchkeeper.bus.kafka import KafkaBusConsumer

TP = TopicPartition("t", 0)


class FakeKafkaConsumer:
    """What lag() asks of kafka-python's consumer; `end` is the broker's log end."""

    def __init__(self, fetched_end: int, end: int, position: int):
        self.fetched_end, self.end, self.at, self.asked = fetched_end, end, position, 0

    def assignment(self):
        return {TP}

    def highwater(self, tp):
        return self.fetched_end

    def position(self, tp, timeout_ms=None):
        return self.at

    def end_offsets(self, tps, timeout_ms=None):
        self.asked += 1
        return {tp: self.end for tp in tps}


def _member(fake: FakeKafkaConsumer) -> KafkaBusConsumer:
    member = KafkaBusConsumer.__new__(KafkaBusConsumer)     # no broker: no KafkaConsumer
    member._servers, member._group, member._topics = ["127.0.0.1:1"], "g", ["t"]
    member._ends_asked_at, member._asked_ends, member._consumer = 0.0, {}, fake
    return member


def test_messages_published_since_the_last_fetch_are_never_a_lag_of_0():
    fake = FakeKafkaConsumer(fetched_end=0, end=0, position=0)
    member = _member(fake)
    assert member.lag() == 0
    fake.end = 25                       # published since; the member has not polled
    assert member.lag() == 25           # well within ASK_ENDS_S of the last ask


def test_a_lag_above_0_comes_from_the_cached_ends_without_a_round_trip():
    fake = FakeKafkaConsumer(fetched_end=100, end=100, position=40)
    member = _member(fake)
    assert member.lag() == 60 and fake.asked == 1
    fake.at = 70
    assert member.lag() == 30 and fake.asked == 1
