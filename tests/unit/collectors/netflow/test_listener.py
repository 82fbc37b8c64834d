"""NetflowServer: malformed input dead-lettered (table-driven), random bytes never raise,
the UDP path end to end on the embedded bus, and queue overflow counted."""
from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.netflow import NetflowServer
from collectors.netflow import fields as ie
from watchkeeper import schema
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.publish import EventPublisher

EXPORTER = "198.51.100.7"


class RecordingPublisher:
    """Stands in for EventPublisher: validates like it, remembers what it got."""

    def __init__(self) -> None:
        self.published: list[dict] = []
        self.rejected: list[tuple[str, str | None]] = []

    def publish(self, doc: dict) -> bool:
        schema.validate(doc)
        self.published.append(doc)
        return True

    def reject(self, reason: str, raw, position: str | None = None) -> None:
        self.rejected.append((reason, position))

    def flush(self) -> None:
        pass


def _ipfix_bad_set(pk) -> bytes:
    good = pk.ipfix([pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.template_record(256, pk.IPFIX_FIELDS))])
    return good[:16] + struct.pack("!HH", 256, 2) + good[20:]


MALFORMED = {
    "empty": lambda pk: b"",
    "one byte": lambda pk: b"\x00",
    "unknown version": lambda pk: struct.pack("!H", 7) + bytes(40),
    "sflow on the port": lambda pk: struct.pack("!I", 5) + bytes(60),
    "v5 header cut": lambda pk: pk.v5([{}])[:20],
    "v5 records cut": lambda pk: pk.v5([{}, {}])[:24 + 48 + 10],
    "v5 zero records": lambda pk: pk.v5([]),
    "v5 too many records": lambda pk: pk.v5([{}] * 31),
    "v9 header cut": lambda pk: pk.v9([])[:12],
    "v9 set overruns": lambda pk: pk.v9([pk.flowset(300, pk.v4_data())])[:-6],
    "v9 set length 0": lambda pk: pk.v9([]) + struct.pack("!HH", 300, 0) + bytes(8),
    "ipfix length lies": lambda pk: pk.ipfix([pk.flowset(256, pk.ipfix_data())]) + b"\x01",
    "ipfix set length 2": _ipfix_bad_set,
    "garbage": lambda pk: bytes(range(256)) * 3,
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_datagrams_are_dead_lettered_and_counted(name, pk):
    publisher = RecordingPublisher()
    server = NetflowServer(publisher)
    result = server.handle(MALFORMED[name](pk), EXPORTER)
    assert result.problem, name
    assert server.stats.malformed_packets == 1
    (reason, position) = publisher.rejected[0]
    assert reason == result.problem and position.startswith(f"{EXPORTER}:")


def test_truncated_v5_still_publishes_the_whole_records_it_carried(pk):
    publisher = RecordingPublisher()
    server = NetflowServer(publisher)
    server.handle(pk.v5([{}, {}], seq=42)[:24 + 48 + 10], EXPORTER)
    assert len(publisher.published) == 1
    assert publisher.rejected[0][1] == f"{EXPORTER}:42"


def test_record_without_addresses_is_dead_lettered(pk):
    publisher = RecordingPublisher()
    server = NetflowServer(publisher)
    spec = [(ie.PACKET_DELTA_COUNT, 4), (ie.OCTET_DELTA_COUNT, 4)]
    datagram = pk.v9([pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, spec)),
                      pk.flowset(300, struct.pack("!II", 1, 60))])
    server.handle(datagram, EXPORTER)
    assert publisher.published == [] and server.stats.records_unusable == 1
    assert "without addresses" in publisher.rejected[0][0]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b"\x00\x05", b"\x00\x09", b"\x00\x0a"]),
       body=st.binary(max_size=600))
def test_random_bytes_never_raise(prefix, body):
    server = NetflowServer(RecordingPublisher())
    server.handle(prefix + body, EXPORTER)
    server.handle(prefix + body, EXPORTER)   # again, with whatever state the first left


def test_udp_end_to_end_on_the_embedded_bus(pk):
    bus = EmbeddedBus()
    consumer = bus.consumer("t", ["wk.events"])
    server = NetflowServer(EventPublisher(bus.producer(), "netflow"), "127.0.0.1", 0)
    with server:
        assert server.port != 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(pk.v5([{}, {"sport": 40001}]), ("127.0.0.1", server.port))
        docs: list[dict] = []
        deadline = time.monotonic() + 10
        while len(docs) < 2 and time.monotonic() < deadline:
            docs += [json.loads(m.value) for m in consumer.poll(100, timeout=0.2)]
    assert sorted(d["source"]["port"] for d in docs) == [40000, 40001]
    assert {d["observer"]["ip"] for d in docs} == {"127.0.0.1"}
    stats = server.stats
    assert (stats.packets_received, stats.records_parsed, stats.records_published) == (1, 2, 2)


class BlockingPublisher(RecordingPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def publish(self, doc: dict) -> bool:
        self.release.wait(10)
        return super().publish(doc)


def test_full_queue_drops_are_counted(pk):
    publisher = BlockingPublisher()
    server = NetflowServer(publisher, "127.0.0.1", 0, queue_size=2)
    server.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for seq in range(20):
                sock.sendto(pk.v5([{}], seq=seq), ("127.0.0.1", server.port))
        deadline = time.monotonic() + 10
        while server.stats.packets_received < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        publisher.release.set()
        server.stop()
    stats = server.stats
    assert stats.packets_received == 20 and stats.dropped > 0
    assert stats.records_published + stats.dropped == 20
