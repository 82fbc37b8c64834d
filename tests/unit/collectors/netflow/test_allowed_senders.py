"""collector_allowed_senders on the NetFlow listener: datagrams from elsewhere are counted as
refused and never decoded."""
from __future__ import annotations

import socket
import time

from collectors.netflow import NetflowServer
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.publish import EventPublisher
from watchkeeper.senders import SenderPolicy


def wait_for(condition, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not reached before the deadline"
        time.sleep(0.01)


def run(networks, pk) -> NetflowServer:
    bus = EmbeddedBus()
    server = NetflowServer(EventPublisher(bus.producer(), "netflow"), port=0,
                           senders=SenderPolicy(networks))
    with server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(4):
                sock.sendto(pk.v5([{}]), ("127.0.0.1", server.port))
                sock.sendto(b"\x47\x11 garbage", ("127.0.0.1", server.port))
        wait_for(lambda: server.stats.packets_received == 8)
        wait_for(lambda: server.stats.refused + server.stats.records_published
                 + server.stats.malformed_packets == 8)
    return server


def test_refused_exporter_is_never_decoded(pk):
    stats = run(["192.0.2.0/24"], pk).stats
    assert (stats.refused, stats.records_published, stats.malformed_packets) == (8, 0, 0)


def test_allowed_exporter_is_decoded(pk):
    stats = run(["127.0.0.1/32"], pk).stats
    assert (stats.refused, stats.records_published, stats.malformed_packets) == (0, 4, 4)
