"""Live capture from a network interface into the same flow path as pcap files.

Frames come from a Linux AF_PACKET socket (both directions, kernel timestamps, an optional
BPF filter compiled by libpcap through scapy) and are handed to
`collectors.capture.Capture` as `RecordBatch`es, so live traffic and a replayed pcap give the
same flows. The socket reads a TPACKET_V3 ring shared with the kernel: one ring block (up to
1 MiB of frames, handed over when full or after `batch_seconds`) becomes one batch, with no
system call per packet. Where the ring cannot be set up, frames are read one `recvmsg` at a
time (SO_TIMESTAMPNS) and a batch is cut every `batch_packets` frames or `batch_seconds`.
Flows expire on packet time, as offline, and each batch also carries the wall clock at
which it was cut, so on a quiet link idle flows are still reported on time.
"""
from __future__ import annotations

import logging
import mmap
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from collectors.capture.kernels import native
from collectors.capture.sources.pcap import RecordBatch

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_RX_RING, PACKET_VERSION, TPACKET_V3 = 5, 10, 2
TP_STATUS_USER = 1
LINKTYPE_ETHERNET = 1
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


@dataclass
class LiveStats:
    packets: int = 0
    bytes: int = 0
    kernel_drops: int = 0        # frames the kernel dropped because we were too slow
    batches: int = 0
    ring_blocks: int = 0         # blocks of the TPACKET_V3 ring (0: no ring, recvmsg)
    ring_blocks_in_use: int = 0  # filled blocks waiting for us when the last one was read
    ring_peak_in_use: int = 0    # the most ever waiting (ring_blocks: the next frame drops)


class LiveSource:
    """Iterable of RecordBatch from one interface, until `stop` is set."""

    def __init__(self, interface: str, stop: threading.Event, bpf: str | None = None,
                 snaplen: int = 65535, batch_packets: int = 4096, batch_seconds: float = 0.5,
                 rcvbuf: int = 64 << 20, ring: bool = True, block_size: int = 1 << 20):
        self.interface = interface
        self.bpf = bpf
        self.stop = stop
        self.snaplen = snaplen
        self.batch_packets = batch_packets
        self.batch_seconds = batch_seconds
        self.stats = LiveStats()
        self._ring: _Ring | None = None
        self._sock = self._open(rcvbuf, bpf, ring, block_size)

    def _open(self, rcvbuf: int, bpf: str | None, ring: bool,
              block_size: int) -> socket.socket:
        # Protocol 0: the socket receives nothing until it is bound to the interface below
        # (with ETH_P_ALL there, which Python converts to network order). Opened with
        # ETH_P_ALL it would queue every interface's frames (loopback included) until then.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if ring:
                try:
                    # as many blocks as the socket buffer would have held
                    self._ring = _Ring(sock, block_size, max(4, rcvbuf // block_size),
                                       max(10, int(self.batch_seconds * 1000)))
                except OSError as exc:
                    log.warning("no TPACKET_V3 ring on %s (%s): reading packet by packet",
                                self.interface, exc)
            if self._ring is None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
                except PermissionError:   # unprivileged: the ordinary limit (rmem_max)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if bpf:
                from scapy.arch.linux import attach_filter
                attach_filter(sock, bpf, self.interface)
            sock.bind((self.interface, ETH_P_ALL))
            sock.settimeout(0.1)
        except BaseException:
            self._close(sock)
            raise
        return sock

    def __iter__(self) -> Iterator[RecordBatch]:
        try:
            while not self.stop.is_set():
                yield self._ring_batch() if self._ring else self._next_batch()
            if self._ring:
                # Frames received before the stop are not lost: the blocks already handed
                # over, and the partly filled one the kernel's timer retires (waited for one
                # retire period each). At most one ring's worth: a busy link would otherwise
                # never let us stop.
                for _ in range(self._ring.blocks + 1):
                    batch = self._ring_batch(self._ring.retire + 0.2, _NEVER)
                    if not len(batch):
                        break
                    yield batch
        finally:
            self._update_drops()
            self._close(self._sock)

    def _close(self, sock: socket.socket) -> None:
        if self._ring is not None:
            self._ring.close()
        sock.close()

    def _ring_batch(self, wait: float | None = None,
                    stop: threading.Event | None = None) -> RecordBatch:
        """The next ring block the kernel handed over, as a batch; an empty batch (with the
        clock) when none came within `wait` (default `batch_seconds`)."""
        block = self._ring.next_block(self.batch_seconds if wait is None else wait,
                                      stop or self.stop)
        self.stats.batches += 1
        self._update_drops()
        if block is None:
            return _batch([], [], [])
        data, first, count = block
        self._note_ring_use()
        offs, caplen, wirelen, ts = native.walk_tpacket(data, first, count)
        self.stats.packets += len(offs)
        self.stats.bytes += int(caplen.sum())
        return RecordBatch(data=data, offset=offs, caplen=np.minimum(caplen, self.snaplen),
                           wirelen=wirelen, ts=ts,
                           linktype=np.full(len(offs), LINKTYPE_ETHERNET, dtype=np.int32),
                           clock=time.time())

    def _note_ring_use(self) -> None:
        """How far behind the kernel we are, in ring blocks (ring use is a metric)."""
        waiting = self._ring.in_use()
        self.stats.ring_blocks = self._ring.blocks
        self.stats.ring_blocks_in_use = waiting
        self.stats.ring_peak_in_use = max(self.stats.ring_peak_in_use, waiting)

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


_NEVER = threading.Event()      # a stop that is never set (draining after the real one)


class _Ring:
    """A TPACKET_V3 receive ring: `blocks` blocks of `block_size` bytes mapped from the
    kernel; each block is copied out and handed back as soon as it is read."""

    def __init__(self, sock: socket.socket, block_size: int, blocks: int, retire_ms: int):
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frame_size = 1 << 11
        request = struct.pack("IIIIIII", block_size, blocks, frame_size,
                              block_size * blocks // frame_size, retire_ms, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        self.size, self.blocks = block_size, blocks
        self.map = mmap.mmap(sock.fileno(), block_size * blocks, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.poll = select.poll()
        self.poll.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self.current = 0
        self.retire = retire_ms / 1000

    def next_block(self, wait: float, stop: threading.Event):
        """(block bytes as a read-only array, offset of its first frame, frame count), or
        None when no block was handed over within `wait` seconds."""
        base = self.current * self.size
        deadline = time.monotonic() + wait
        while not struct.unpack_from("I", self.map, base + 8)[0] & TP_STATUS_USER:
            left = deadline - time.monotonic()
            if left <= 0 or stop.is_set():
                return None
            self.poll.poll(max(1, int(min(left, 0.1) * 1000)))
        count, first, length = struct.unpack_from("III", self.map, base + 12)
        data = np.frombuffer(self.map[base:base + min(length, self.size)], np.uint8)
        struct.pack_into("I", self.map, base + 8, 0)        # TP_STATUS_KERNEL: hand it back
        self.current = (self.current + 1) % self.blocks
        return data, first, count

    def in_use(self) -> int:
        """Blocks the kernel has handed over and we have not read yet (the one being read
        excluded)."""
        return sum(1 for i in range(self.blocks)
                   if struct.unpack_from("I", self.map, i * self.size + 8)[0] & TP_STATUS_USER)

    def close(self) -> None:
        self.map.close()
