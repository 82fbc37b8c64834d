"""Syslog over UDP and TCP: `SyslogServer(publisher, host, udp_port, tcp_port).start()`.

One asyncio loop on its own thread receives; one parser thread turns frames into documents.
Between them a queue bounded in frames and in bytes: when it is full a TCP connection stops
being read (the kernel's window then slows the sender: nothing is lost), and a UDP datagram
is dropped and counted (UDP has no way to push back). Senders outside
`collector_allowed_senders` are counted and never parsed (watchkeeper/senders.py). `stop()` stops receiving, closes the connections,
parses what is queued and flushes the publisher.
"""
from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from watchkeeper import metrics, ratelog
from watchkeeper.publish import EventPublisher
from watchkeeper.senders import ACCEPT_ALL, SenderPolicy

from collectors.syslog.document import Origin
from collectors.syslog.framing import MAX_MESSAGE, Frame, StreamFramer, datagram_frame
from collectors.syslog.pipeline import Processor, Received, SyslogStats

log = logging.getLogger(__name__)
ratelog.limit(log)
_STOP = object()            # queued last by stop(): the parser drains up to it
_READ_SIZE = 64 * 1024
_IDLE_S = 0.5               # at stop, a sender this quiet has nothing more in flight


class SyslogServer:
    def __init__(self, publisher: EventPublisher, host: str = "127.0.0.1",
                 udp_port: int | None = 5514, tcp_port: int | None = 5514, *,
                 queue_size: int = 10_000, max_message: int = MAX_MESSAGE,
                 queue_bytes: int = 32 << 20,
                 max_connections: int = 1024, batch_size: int = 500,
                 udp_buffer: int = 4 << 20, clock: Callable[[], float] = time.time,
                 senders: SenderPolicy = ACCEPT_ALL, drain_s: float = 5.0):
        """Ports may be 0 (the kernel picks; see .udp_port/.tcp_port after start) or None
        (that listener off). `drain_s`: at stop, how long a TCP sender is given to notice
        the half-close and stop sending (see _close)."""
        self.publisher = publisher
        self.host = host
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes   # 10 000 frames of 64 KiB would be 640 MiB
        self.max_message = max_message
        self.max_connections = max_connections
        self.batch_size = batch_size
        self.udp_buffer = udp_buffer
        self.clock = clock
        self.senders = senders
        self.drain_s = drain_s
        self._stats = SyslogStats()
        self._processor = Processor(publisher, self._stats)
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connections: dict[asyncio.Task, asyncio.StreamWriter] = {}

    @property
    def stats(self) -> SyslogStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Bind both listeners and return; raises OSError if a port cannot be bound."""
        self._loop = asyncio.new_event_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="syslog-parse")
        self._thread = threading.Thread(target=self._loop.run_forever, name="syslog-listen",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=30)
        except BaseException:
            self._halt_loop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving, parse and publish everything queued, flush the publisher."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout)
        finally:
            self._halt_loop()
            self.publisher.flush()

    def serve_until(self, stop: threading.Event) -> None:
        """For the CLI: start, block until `stop` is set (e.g. by a signal handler), stop."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def _halt_loop(self) -> None:
        loop, self._loop = self._loop, None
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        loop.close()
        self._executor.shutdown(wait=True)

    # -- inside the loop ----------------------------------------------------------------------
    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._queued_bytes = 0
        self._space = asyncio.Event()
        self._tcp = self._udp = None
        self._stopping = False
        if self.tcp_port is not None:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.tcp_port,
                                                   limit=_READ_SIZE, reuse_address=True)
            self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        if self.udp_port is not None:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.udp_port))
            sock = self._udp.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.udp_buffer)
            self.udp_port = sock.getsockname()[1]
        self._drainer = loop.create_task(self._drain())
        self.senders.announce("syslog", f"{self.host} udp/{self.udp_port} tcp/{self.tcp_port}")

    async def _close(self) -> None:
        """Stop without losing what a TCP sender already handed to its kernel.

        Closing a connection outright discards the bytes waiting in our receive buffer,
        which the sender counted as delivered (issue 9: 2,603 of 20,000 lines lost when
        rsyslog's stream was cut). So: no new connections; half-close each one (FIN: a
        sender like rsyslog sees it before its next send, closes, and re-sends on a new
        connection); keep reading until the sender closes or goes quiet for _IDLE_S,
        at most `drain_s`; only then close."""
        self._stopping = True
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._connections.values()):
            _half_close(writer)
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=self.drain_s)
        for writer in list(self._connections.values()):
            writer.transport.abort()    # still sending after drain_s: cut it
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=10)
        await self._queue.put(_STOP)
        await self._drainer

    async def _drain(self) -> None:
        """Hand batches to the parser thread; waiting for each keeps the queue the only buffer."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            done = batch[-1] is _STOP
            items = [item for item in batch if item is not _STOP]
            self._queued_bytes -= sum(len(item.frame.data) for item in items)
            self._space.set()
            await loop.run_in_executor(self._executor, self._processor.handle_batch, items)
            if done:
                return

    def _received(self, frame: Frame, peer: tuple, transport: str) -> Received:
        self._seq += 1
        self._stats.received += 1
        return Received(frame, Origin(_unmapped(peer[0]), peer[1], transport, self.clock()),
                        self._seq)

    def offer_datagram(self, data: bytes, peer: tuple) -> None:
        if not self.senders.admit(_unmapped(peer[0]), "syslog", "udp"):
            self._stats.refused += 1
            return
        item = self._received(datagram_frame(data, self.max_message), peer, "udp")
        try:
            if self._queued_bytes + len(item.frame.data) > self.queue_bytes:
                raise asyncio.QueueFull
            self._queue.put_nowait(item)
            self._queued_bytes += len(item.frame.data)
        except asyncio.QueueFull:
            self._stats.dropped += 1
            metrics.RECORDS.labels(stage=self.publisher.stage, outcome="dropped").inc()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername") or ("0.0.0.0", 0)
        if not self.senders.admit(_unmapped(peer[0]), "syslog", "tcp"):
            self._stats.refused += 1
            writer.close()
            return
        if len(self._connections) >= self.max_connections:
            log.warning("syslog: refusing a connection: %d already open", self.max_connections)
            writer.close()
            return
        self._connections[asyncio.current_task()] = writer
        self._stats.connections += 1
        framer = StreamFramer(self.max_message)
        try:
            while data := await self._read(reader):
                for frame in framer.feed(data):
                    # Blocks while the queue is full: this connection is not read meanwhile.
                    await self._put(self._received(frame, peer, "tcp"))
            for frame in framer.close():
                await self._put(self._received(frame, peer, "tcp"))
        finally:
            writer.close()
            self._connections.pop(asyncio.current_task(), None)

    async def _put(self, item: Received) -> None:
        """Queue a TCP frame, waiting while the queue is full in frames or in bytes."""
        while self._queued_bytes >= self.queue_bytes:
            self._space.clear()
            await self._space.wait()
        self._queued_bytes += len(item.frame.data)
        await self._queue.put(item)

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        """Next chunk, or b"" at end of stream (a reset is an end like any other); while
        stopping, also b"" once the sender has been quiet for _IDLE_S."""
        while True:
            try:
                return await asyncio.wait_for(reader.read(_READ_SIZE), _IDLE_S)
            except asyncio.TimeoutError:
                if self._stopping:
                    return b""
            except (ConnectionError, OSError):
                return b""


def _unmapped(ip: str) -> str:
    """'::ffff:192.0.2.1' (IPv4 on a dual-stack socket) -> '192.0.2.1', as the sender knows it."""
    try:
        mapped = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    v4 = getattr(mapped, "ipv4_mapped", None)
    return str(v4) if v4 is not None else ip


def _half_close(writer: asyncio.StreamWriter) -> None:
    try:
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, OSError, RuntimeError):
        writer.transport.abort()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SyslogServer):
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.server.offer_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("syslog udp: %s", exc)     # ICMP errors on a listening socket: harmless
