"""NetFlow v5/v9/IPFIX UDP collector: socket reader -> bounded queue -> parser -> publisher.

The reader thread does nothing but recvfrom and enqueue, so a slow bus never makes the
kernel drop datagrams unseen: when the queue is full we drop and count instead, which an
operator can see and size for. Entry point for the CLI: NetflowServer(publisher, host, port).
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass, replace

from prometheus_client import Counter

from collectors.netflow.decoder import DecodeResult, NetflowDecoder
from collectors.netflow.templates import DEFAULT_TEMPLATE_TIMEOUT
from watchkeeper import ratelog
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.senders import ACCEPT_ALL, SenderPolicy

log = logging.getLogger(__name__)
ratelog.limit(log)
PACKETS = Counter("watchkeeper_netflow_packets_total", "Export datagrams by outcome",
                  ["outcome"])  # received | malformed | dropped | refused
for _outcome in ("received", "malformed", "dropped", "refused"):
    PACKETS.labels(outcome=_outcome)      # fixed series from the start
LOST_EXPORTS = Counter("watchkeeper_netflow_lost_exports_total",
                       "Exports the sequence numbers say never arrived", ["version"])
for _version in ("5", "9", "10", "other"):
    LOST_EXPORTS.labels(version=_version)
_MAX_DATAGRAM = 65535


@dataclass
class NetflowStats:
    packets_received: int = 0
    bytes_received: int = 0
    dropped: int = 0                  # queue full: the parser fell behind
    malformed_packets: int = 0        # dead-lettered
    records_parsed: int = 0           # flow records decoded
    records_published: int = 0        # accepted by the publisher (valid ECS)
    records_unusable: int = 0         # flow records without addresses, dead-lettered
    option_records: int = 0
    records_without_template: int = 0  # data sets dropped: their template was unknown/expired
    sequence_gaps: int = 0            # datagrams that revealed a gap
    lost_exports: int = 0             # units: v5 flows, v9 packets (or records), IPFIX records
    templates_expired: int = 0
    templates_withdrawn: int = 0
    refused: int = 0                  # datagrams from senders outside the allowed networks
    exporter_states: int = 0          # (exporter, domain) pairs with state held now
    exporter_states_evicted: int = 0  # pairs evicted (cap or idle)


class NetflowServer:
    def __init__(self, publisher: EventPublisher, host: str = "127.0.0.1", port: int = 2055,
                 template_timeout: float = DEFAULT_TEMPLATE_TIMEOUT, queue_size: int = 10_000,
                 networks: InternalNetworks | None = None, rcvbuf: int = 4 << 20,
                 senders: SenderPolicy = ACCEPT_ALL, max_exporters: int = 1024,
                 exporter_idle_s: float = 3600.0, queue_bytes: int = 32 << 20):
        self.publisher = publisher
        self.host = host
        self.port = port
        self.rcvbuf = rcvbuf
        self.senders = senders
        self.decoder = NetflowDecoder(template_timeout, networks, max_exporters=max_exporters,
                                      exporter_idle_s=exporter_idle_s)
        self._stats = NetflowStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # Bounded in bytes too: 10 000 datagrams of 64 KiB would be 640 MiB. Each counter
        # has one writer (reader thread, parser thread); their difference is what is queued.
        self.queue_bytes = queue_bytes
        self._bytes_in = self._bytes_out = 0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Bind (port 0 picks a free port, reported in .port) and start both threads."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        except OSError:
            log.debug("netflow: SO_RCVBUF %d refused, keeping the default", self.rcvbuf)
        sock.bind((self.host, self.port))
        sock.settimeout(0.2)   # how soon stop() is noticed, not a receive deadline
        self._sock, self.port = sock, sock.getsockname()[1]
        self._stop.clear()
        self._threads = [threading.Thread(target=self._read, name="netflow-reader", daemon=True),
                         threading.Thread(target=self._parse, name="netflow-parser", daemon=True)]
        for thread in self._threads:
            thread.start()
        log.info("netflow: listening on udp %s:%d", self.host, self.port)
        self.senders.announce("netflow", f"udp {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop reading, parse what is already queued, then close the socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.publisher.flush()

    def __enter__(self) -> NetflowServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def stats(self) -> NetflowStats:
        """A consistent-enough copy: counters only grow, each owned by one thread."""
        exporters = self.decoder.exporters
        return replace(self._stats, templates_expired=self.decoder.templates.expired,
                       templates_withdrawn=self.decoder.templates.withdrawn,
                       exporter_states=len(exporters),
                       exporter_states_evicted=sum(exporters.evicted.values()))

    def export_gaps(self):
        """Lost exports per (exporter, domain, version) with their unit, worst first."""
        return self.decoder.export_gaps()

    # -- threads ----------------------------------------------------------------------------
    def _read(self) -> None:
        # recvfrom(65535) allocates 64 KiB per datagram and shrinks it; with thousands queued
        # that fragments the heap (+200 MiB RSS under a flood). One reused buffer, and an
        # exact-size copy per datagram, does not.
        buffer = bytearray(_MAX_DATAGRAM)
        view = memoryview(buffer)
        while not self._stop.is_set():
            try:
                size, addr = self._sock.recvfrom_into(buffer)
                data = bytes(view[:size])
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("netflow: socket error")
                continue
            self._stats.packets_received += 1
            self._stats.bytes_received += len(data)
            PACKETS.labels(outcome="received").inc()
            if not self.senders.admit(addr[0], "netflow", "udp"):
                self._stats.refused += 1
                PACKETS.labels(outcome="refused").inc()
                continue
            try:
                if self._bytes_in - self._bytes_out + len(data) > self.queue_bytes:
                    raise queue.Full
                self._queue.put_nowait((data, addr[0]))
                self._bytes_in += len(data)
            except queue.Full:
                self._stats.dropped += 1
                PACKETS.labels(outcome="dropped").inc()

    def _parse(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                data, exporter = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._bytes_out += len(data)
            self.handle(data, exporter)

    def handle(self, data: bytes, exporter: str) -> DecodeResult:
        """Decode one datagram and publish what it held (the parser thread's whole job)."""
        result = self.decoder.decode(data, exporter)
        self._count(result)
        if result.problem:
            self._stats.malformed_packets += 1
            PACKETS.labels(outcome="malformed").inc()
            self.publisher.reject(result.problem, data.hex(), position=result.position)
        for rec in result.unusable:
            self.publisher.reject("netflow: flow record without addresses", repr(rec),
                                  position=result.position)
        for doc in result.documents:
            if self.publisher.publish(doc):
                self._stats.records_published += 1
        return result

    def _count(self, result: DecodeResult) -> None:
        stats = self._stats
        stats.records_parsed += len(result.documents) + len(result.unusable)
        stats.records_unusable += len(result.unusable)
        stats.option_records += result.option_records
        stats.records_without_template += result.sets_without_template
        if result.lost_exports:
            stats.sequence_gaps += 1
            stats.lost_exports += result.lost_exports
            version = str(result.version) if result.version in (5, 9, 10) else "other"
            LOST_EXPORTS.labels(version=version).inc(result.lost_exports)
