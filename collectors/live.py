"""Live capture from a network interface into the same flow path as pcap files.

Frames come from a Linux AF_PACKET socket (both directions, kernel timestamps via
SO_TIMESTAMPNS, an optional BPF filter compiled by libpcap through scapy) and are handed to
`collectors.capture.Capture` as `RecordBatch`es, so live traffic and a replayed pcap give the
same flows. A batch is cut every `batch_packets` frames or `batch_seconds`, whichever first.
Flows expire on packet time, as offline, and each batch also carries the wall clock at
which it was cut, so on a quiet link idle flows are still reported on time.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from collectors.pcapio import RecordBatch

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
LINKTYPE_ETHERNET = 1
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


@dataclass
class LiveStats:
    packets: int = 0
    bytes: int = 0
    kernel_drops: int = 0        # frames the kernel dropped because we were too slow
    batches: int = 0


class LiveSource:
    """Iterable of RecordBatch from one interface, until `stop` is set."""

    def __init__(self, interface: str, stop: threading.Event, bpf: str | None = None,
                 snaplen: int = 65535, batch_packets: int = 4096, batch_seconds: float = 0.5,
                 rcvbuf: int = 64 << 20):
        self.interface = interface
        self.bpf = bpf
        self.stop = stop
        self.snaplen = snaplen
        self.batch_packets = batch_packets
        self.batch_seconds = batch_seconds
        self.stats = LiveStats()
        self._sock = self._open(rcvbuf, bpf)

    def _open(self, rcvbuf: int, bpf: str | None) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:   # unprivileged: the ordinary limit (net.core.rmem_max)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if bpf:
            from scapy.arch.linux import attach_filter
            attach_filter(sock, bpf, self.interface)
        sock.bind((self.interface, 0))
        sock.settimeout(0.1)
        return sock

    def __iter__(self) -> Iterator[RecordBatch]:
        try:
            while not self.stop.is_set():
                yield self._next_batch()
        finally:
            self._update_drops()
            self._sock.close()

    def _next_batch(self) -> RecordBatch:
        frames: list[bytes] = []
        stamps: list[float] = []
        wirelens: list[int] = []
        deadline = time.monotonic() + self.batch_seconds
        while len(frames) < self.batch_packets and time.monotonic() < deadline:
            received = self._receive()
            if received is not None:
                frames.append(received.frame)
                stamps.append(received.ts)
                wirelens.append(received.wirelen)
        self.stats.batches += 1
        self._update_drops()
        return _batch(frames, stamps, wirelens)

    def _receive(self) -> _Frame | None:
        try:
            data, ancdata, flags, _ = self._sock.recvmsg(self.snaplen, _ANCILLARY,
                                                         socket.MSG_TRUNC)
        except (TimeoutError, socket.timeout, BlockingIOError):
            return None
        ts = time.time()
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = _TIMESPEC.unpack(payload[:_TIMESPEC.size])
                ts = seconds + nanos / 1e9
        wirelen = len(data)
        if flags & socket.MSG_TRUNC:
            wirelen = self.snaplen + 1   # the kernel does not say how long; it was longer
        self.stats.packets += 1
        self.stats.bytes += len(data)
        return _Frame(data, ts, wirelen)

    def _update_drops(self) -> None:
        """PACKET_STATISTICS resets on read: accumulate."""
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return
        _received, dropped = struct.unpack("II", raw)
        self.stats.kernel_drops += dropped


@dataclass
class _Frame:
    frame: bytes
    ts: float
    wirelen: int


def _batch(frames: list[bytes], stamps: list[float], wirelens: list[int]) -> RecordBatch:
    lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    offsets = np.zeros(len(frames), dtype=np.int64)
    if len(frames) > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    data = np.frombuffer(b"".join(frames), dtype=np.uint8) if frames else np.zeros(0, np.uint8)
    return RecordBatch(data=data, offset=offsets, caplen=lengths,
                       wirelen=np.asarray(wirelens, dtype=np.int64),
                       ts=np.asarray(stamps, dtype=np.float64),
                       linktype=np.full(len(frames), LINKTYPE_ETHERNET, dtype=np.int32),
                       clock=time.time())
