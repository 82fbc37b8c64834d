"""collector_allowed_senders on the syslog listener: a refused sender's datagrams and
connections are counted and never parsed; an allowed one is served as before."""
from __future__ import annotations

import socket
import time

import pytest

from collectors.syslog import SyslogServer
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.publish import EventPublisher
from watchkeeper.senders import SenderPolicy

LINE = b"<38>Nov 22 20:23:01 bastion sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2"


def wait_for(condition, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not reached before the deadline"
        time.sleep(0.01)


@pytest.fixture
def serve():
    servers = []

    def start(networks):
        bus = EmbeddedBus()
        server = SyslogServer(EventPublisher(bus.producer(), "syslog"), "127.0.0.1", 0, 0,
                              senders=SenderPolicy(networks))
        server.start()
        servers.append(server)
        return server, bus.consumer("t", ["wk.events", "wk.deadletter"])

    yield start
    for server in servers:
        server.stop()


def test_refused_sender_is_counted_and_never_parsed(serve):
    server, consumer = serve(["10.0.0.0/8"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(5):
            sock.sendto(LINE, ("127.0.0.1", server.udp_port))
    with socket.create_connection(("127.0.0.1", server.tcp_port)) as sock:
        sock.sendall(LINE + b"\n")
        sock.settimeout(10)
        try:
            assert sock.recv(1) == b""             # closed by the collector at accept
        except ConnectionResetError:
            pass                                   # closed with our line unread: a reset
    wait_for(lambda: server.stats.refused == 6)
    stats = server.stats
    assert (stats.received, stats.connections, stats.parsed, stats.malformed) == (0, 0, 0, 0)
    assert consumer.poll(100, timeout=0.2) == []


def test_allowed_sender_is_served(serve):
    server, consumer = serve(["127.0.0.0/8"])
    with socket.create_connection(("127.0.0.1", server.tcp_port)) as sock:
        sock.sendall(LINE + b"\n")
    wait_for(lambda: server.stats.parsed == 1)
    assert server.stats.refused == 0
