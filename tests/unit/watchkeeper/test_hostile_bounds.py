"""Spine pieces that bound hostile input: fixed metric label vocabularies, rate-limited logs,
allowed senders, and publishers that flush on a timer."""
from __future__ import annotations

import logging
import random
import threading
import time

import pytest
from prometheus_client import REGISTRY

from watchkeeper import metrics, ratelog
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus, EmbeddedProducer
from watchkeeper.deadletter import REASON_KINDS, reason_kind, send_deadletter
from watchkeeper.publish import EventPublisher
from watchkeeper.senders import SenderPolicy


def series(family: str) -> int:
    return sum(len(m.samples) for m in REGISTRY.collect() if m.name == family)


@pytest.mark.parametrize("reason, kind", [
    ("unsupported version 4711", "unsupported_version"),
    ("unparsable datagram (v9)", "decode_error"),
    ("v5: record count 0 outside 1..30", "decode_error"),
    ("v5: truncated: header promises 3 records, 30 bytes arrived", "truncated"),
    ("ipfix: message length 9 but 40 bytes arrived", "decode_error"),
    ("SyslogError: no PRI", "decode_error"),
    ("oversized: line longer than 65536 bytes", "oversize"),
    ("ValidationError: source.ip: not an address", "validation_error"),
    ("netflow: flow record without addresses", "missing_fields"),
    ("internal: KeyError: 'x'", "internal"),
    ("\x00\xff random words", "other"),
])
def test_reason_kinds(reason, kind):
    assert reason_kind(reason) == kind


def test_dead_letters_with_random_reasons_add_no_series():
    bus, rng = EmbeddedBus(), random.Random(5)
    send_deadletter(bus.producer(), Names(), "fuzzstage", "first", b"x")
    before = series("watchkeeper_deadletters")
    for _ in range(2000):
        reason = rng.randbytes(rng.randrange(1, 60)).decode("latin-1")
        send_deadletter(bus.producer(), Names(), "fuzzstage", reason, b"x")
    assert series("watchkeeper_deadletters") == before
    assert {s.labels["reason_kind"] for m in REGISTRY.collect() for s in m.samples
            if m.name == "watchkeeper_deadletters"
            and s.labels.get("stage") == "fuzzstage"} == set(REASON_KINDS)


def test_a_stage_creates_all_its_record_series_at_once():
    metrics.RECORDS.labels(stage="newstage", outcome="accepted").inc()
    names = {s.labels["outcome"] for m in REGISTRY.collect() for s in m.samples
             if m.name == "watchkeeper_records" and s.labels.get("stage") == "newstage"}
    assert names == set(metrics.OUTCOMES)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_rate_limit_filter_passes_a_burst_then_summarises(caplog):
    clock = Clock()
    limiter = ratelog.RateLimitFilter(burst=3, interval=60, clock=clock)
    log = logging.getLogger("wk.test.ratelog")
    log.addFilter(limiter)
    try:
        with caplog.at_level(logging.WARNING, logger="wk.test.ratelog"):
            for i in range(100):
                log.warning("bad datagram from %s", f"10.0.0.{i}")   # values vary, class doesn't
            log.warning("another kind %d", 1)
            clock.now = 61
            log.warning("bad datagram from %s", "10.9.9.9")
    finally:
        log.removeFilter(limiter)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:3] == [f"bad datagram from 10.0.0.{i}" for i in range(3)]
    assert "another kind 1" in messages
    summary = [m for m in messages if m.startswith("suppressed")]
    assert summary == ["suppressed 97 similar messages in the last 61 s "
                       "(first: bad datagram from 10.0.0.0)"]
    assert messages[-1] == "bad datagram from 10.9.9.9"      # a new window
    assert len(messages) == 6


@pytest.mark.parametrize("ip, allowed", [
    ("10.1.2.3", True), ("192.0.2.7", False), ("::ffff:10.9.9.9", True),
    ("2001:db8::5", True), ("2001:db9::5", False), ("not an address", False), ("", False)])
def test_sender_policy(ip, allowed):
    policy = SenderPolicy(["10.0.0.0/8", "2001:db8::/32"])
    assert policy.allows(ip) is allowed


def test_sender_policy_counts_refusals_with_fixed_labels():
    policy = SenderPolicy(["10.0.0.0/8"])
    refused = metrics.REFUSED.labels(collector="netflow", transport="udp")
    before = refused._value.get()
    for i in range(300):
        assert not policy.admit(f"192.0.2.{i % 250}", "netflow", "udp")
    assert refused._value.get() - before == 300
    assert SenderPolicy([]).accept_all and SenderPolicy([]).allows("203.0.113.1")


def test_empty_policy_warns_at_start(caplog):
    with caplog.at_level(logging.WARNING, logger="watchkeeper.senders"):
        SenderPolicy().announce("syslog", "0.0.0.0 udp/5514")
    assert "accepts input from any sender" in caplog.text


class CountingProducer(EmbeddedProducer):
    """The real embedded producer, counting flushes."""

    def __init__(self, bus):
        super().__init__(bus)
        self.flushes = 0
        self.flushed = threading.Event()

    def flush(self):
        self.flushes += 1
        self.flushed.set()
        super().flush()


def event(i: int) -> dict:
    return {"@timestamp": "2026-01-01T00:00:00.000000Z",
            "event": {"id": f"e{i}", "kind": "event", "dataset": "watchkeeper.test"},
            "source": {"ip": "10.0.0.1"}}


def test_publisher_flushes_on_a_timer_and_every_n_sends():
    producer = CountingProducer(EmbeddedBus())
    publisher = EventPublisher(producer, "timertest", flush_every_s=0.05, flush_every_n=10)
    try:
        publisher.reject("bad", b"x")                 # one send, then silence
        assert producer.flushed.wait(timeout=10)      # the timer confirmed it
        producer.flushes = 0
        for i in range(30):
            publisher.reject("bad", str(i))
        assert producer.flushes >= 3                  # every 10 sends at least
    finally:
        publisher.close()
    after_close = producer.flushes
    time.sleep(0.2)                                   # the timer thread has stopped
    assert producer.flushes == after_close
