"""SyslogServer over real loopback sockets: UDP and TCP, malformed input, backpressure,
UDP drops, clean stop. Waits poll with deadlines; assertions are about counts, not time."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from collectors.syslog import SyslogServer
from watchkeeper import codec
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.publish import EventPublisher

SSH = b"<38>Nov 22 20:23:01 bastion sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2"


class GatedPublisher(EventPublisher):
    """Publishes only while the gate is open: a stand-in for a slow bus."""

    def __init__(self, producer):
        super().__init__(producer, "syslog")
        self.gate = threading.Event()

    def publish(self, doc, topic=None):
        self.gate.wait(timeout=60)
        return super().publish(doc, topic)


@pytest.fixture
def bus():
    return EmbeddedBus()


@pytest.fixture
def make_server(bus):
    servers: list[SyslogServer] = []

    def make(publisher=None, **options) -> SyslogServer:
        server = SyslogServer(publisher or EventPublisher(bus.producer(), "syslog"),
                              "127.0.0.1", 0, 0, **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.publisher.__class__ is GatedPublisher:
            server.publisher.gate.set()
        server.stop()


def wait_for(condition, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not reached before the deadline"
        time.sleep(0.01)


def drain(bus, topic: str, expected: int, deadline_s: float = 20) -> list[dict]:
    consumer = bus.consumer(f"t-{topic}", [topic])
    docs: list[dict] = []
    end = time.monotonic() + deadline_s
    while len(docs) < expected and time.monotonic() < end:
        docs += [codec.decode(m.value) for m in consumer.poll(1000, timeout=0.2)]
    return docs


def send_tcp(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)


def send_udp(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))


def test_ports_zero_report_the_real_ports(make_server):
    server = make_server()
    assert server.udp_port > 0 and server.tcp_port > 0


def test_udp_and_tcp_end_to_end(make_server, bus):
    server = make_server()
    send_udp(server.udp_port, SSH)
    send_tcp(server.tcp_port, b"%d %s" % (len(SSH), SSH) + b"<13>Nov 22 20:23:02 h app: hi\n")
    docs = drain(bus, "wk.events", 3)
    assert sorted(d["watchkeeper"]["syslog"]["transport"] for d in docs) == ["tcp", "tcp", "udp"]
    assert [d["user"]["name"] for d in docs if d["event"]["module"] == "sshd"] == ["root", "root"]
    wait_for(lambda: server.stats.parsed == 3)
    assert server.stats.received == 3 and server.stats.malformed == 0


def test_malformed_input_is_dead_lettered_with_position(make_server, bus):
    server = make_server(max_message=256)
    send_tcp(server.tcp_port, b"<999>bad pri\n" + b"600 <13>" + b"z" * 596 + SSH + b"\n")
    send_udp(server.udp_port, b"<13>1 nonsense")
    dead = drain(bus, "wk.deadletter", 3)
    reasons = sorted(d["watchkeeper"]["deadletter"]["reason"].split(":")[1].strip() for d in dead)
    assert reasons == ["PRI 999 is above 191 (facility 23, severity 7)",
                       "oversized", "rfc5424"]
    positions = [d["watchkeeper"]["deadletter"]["position"] for d in dead]
    assert all(p.startswith("127.0.0.1:") and p.rsplit(":", 1)[1].isdigit() for p in positions)
    assert len(drain(bus, "wk.events", 1)) == 1         # the line after the oversized frame
    wait_for(lambda: server.stats.malformed == 3 and server.stats.parsed == 1)


def test_reset_mid_frame_and_garbage_never_stop_the_server(make_server, bus):
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.tcp_port)) as sock:
        sock.sendall(b"500 <13>only part of it")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    send_tcp(server.tcp_port, bytes(range(256)) * 4 + b"\n" + SSH + b"\n")
    assert any(d["event"]["module"] == "sshd" for d in drain(bus, "wk.events", 2))


def test_tcp_retransmission_keeps_the_event_id(make_server, bus):
    server = make_server()
    send_tcp(server.tcp_port, SSH + b"\n")
    send_tcp(server.tcp_port, SSH + b"\n" + b"<13>app: no timestamp\n" * 2)
    docs = drain(bus, "wk.events", 4)
    assert len(docs) == 4 and len({d["event"]["id"] for d in docs}) == 3


def test_tcp_backpressure_loses_nothing(make_server, bus):
    publisher = GatedPublisher(bus.producer())
    server = make_server(publisher, queue_size=8, batch_size=4)
    count = 3000
    lines = b"".join(b"<13>Nov 22 20:23:01 h app: n=%d\n" % i for i in range(count))
    sender = threading.Thread(target=send_tcp, args=(server.tcp_port, lines))
    sender.start()
    wait_for(lambda: server.stats.received >= 8)
    # Parser blocked: at most a full queue, one batch in the parser and one frame waiting.
    assert server.stats.received <= 8 + 4 + 1
    publisher.gate.set()
    sender.join(timeout=60)
    docs = drain(bus, "wk.events", count, deadline_s=60)
    assert len({d["message"] for d in docs}) == count
    assert server.stats.dropped == 0


def test_udp_overflow_is_counted_as_dropped(make_server, bus):
    publisher = GatedPublisher(bus.producer())
    server = make_server(publisher, queue_size=8, batch_size=4)
    send_udp(server.udp_port, *(b"<13>app: n=%d" % i for i in range(100)))
    wait_for(lambda: server.stats.received == 100)
    assert server.stats.dropped >= 100 - 8 - 4
    publisher.gate.set()
    wait_for(lambda: server.stats.parsed + server.stats.dropped == 100)


def test_stop_publishes_everything_queued(bus):
    publisher = GatedPublisher(bus.producer())
    server = SyslogServer(publisher, "127.0.0.1", 0, 0, queue_size=1000)
    server.start()
    send_tcp(server.tcp_port, b"".join(b"<13>app: n=%d\n" % i for i in range(200)))
    wait_for(lambda: server.stats.received == 200)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    publisher.gate.set()
    stopper.join(timeout=60)
    assert not stopper.is_alive()
    assert server.stats.parsed == 200 and publisher.published == 200
    with pytest.raises(OSError):
        send_tcp(server.tcp_port, b"<13>late\n")


def test_port_in_use_raises_and_leaves_nothing_running(make_server, bus):
    first = make_server()
    second = SyslogServer(EventPublisher(bus.producer(), "syslog"), "127.0.0.1", None,
                          first.tcp_port)
    threads = threading.active_count()
    with pytest.raises(OSError):
        second.start()
    assert threading.active_count() <= threads
