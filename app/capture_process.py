"""Live capture in its own process inside `watchkeeper run` (docs/capture-process.md).

Packet capture must never wait for the interpreter lock that detection, indexing and the API
hold, or the kernel ring fills and frames are dropped. So `run --interface` starts the capture
as a child process (multiprocessing, *spawn*: the parent already runs threads, which a fork
would copy mid-lock). The child owns the socket and the whole capture path (ring -> decode ->
flows -> ECS documents -> validated JSON bytes) and hands the encoded messages to the parent in
batches through a bounded multiprocessing queue; a relay thread in the parent only puts those
bytes on the bus (`producer.send`), so the embedded bus works across the process boundary and
Kafka the same way. Live gauges (packets, kernel drops, ring use, queue depth) come through a
small shared-memory array that the parent exports at /metrics.

If the parent falls behind, the queue fills and the child blocks on it: the ring then fills and
the kernel drops, counted, never a silent loss in between. The child stops when the parent asks
(an event), when its parent dies, or on SIGTERM; SIGINT (Ctrl-C to the terminal's process
group) is left to the parent, which stops the child in order after the flush.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_module
import signal
import threading
import time
from dataclasses import dataclass, field

from prometheus_client import Gauge

from watchkeeper.bus import Producer

log = logging.getLogger(__name__)

BATCH = 2048                 # messages per queue item (one pickle, one pipe write)
BATCH_BYTES = 2 * 1024 * 1024   # ... or this many bytes: a message may be a batch of events
QUEUE_BATCHES = 256          # at most this many batches wait for the parent (backpressure)
START_TIMEOUT = 180.0        # spawn + imports + kernel warm-up on a loaded machine
# Shared-memory gauge slots the child writes and the parent reads (no lock: single writer).
SLOTS = ("packets", "kernel_drops", "ring_blocks", "ring_blocks_in_use", "ring_peak_in_use",
         "queue_depth", "queue_peak", "batches_sent")
CAPTURE_GAUGE = Gauge("watchkeeper_capture", "Live capture of `run --interface` (its own "
                      "process): packets, kernel_drops (cumulative), ring_blocks, "
                      "ring_blocks_in_use, ring_peak_in_use, queue_depth, queue_peak, "
                      "batches_sent; relayed (messages put on the bus)", ["interface", "measure"])


class QueueProducer(Producer):
    """The child's producer: messages go to the parent in batches, through the queue."""

    def __init__(self, out: mp.Queue, depth: callable, parent: int | None = None):
        self.out, self.depth, self.parent = out, depth, parent
        self._batch: list[tuple[str, bytes, str | None]] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self.batches_sent = 0

    def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        with self._lock:
            self._batch.append((topic, value, key))
            self._bytes += len(value)
            full = len(self._batch) >= BATCH or self._bytes >= BATCH_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._batch, self._bytes = self._batch, [], 0
            if batch:
                self.put(("batch", batch))       # blocks while QUEUE_BATCHES wait
                self.batches_sent += 1
                self.depth()

    def put(self, item) -> None:
        """Into the queue, waiting while it is full; given up (dropped) once the parent that
        should read it is gone, so an orphaned capture process still exits."""
        while True:
            try:
                self.out.put(item, timeout=0.5)
                return
            except queue_module.Full:
                if self.parent is not None and os.getppid() != self.parent:
                    return

    def close(self) -> None:
        self.flush()


class _QueueBus:
    """Just enough of a Bus for the collector code: every producer feeds the one queue."""

    def __init__(self, producer: QueueProducer, partitions: int):
        self._producer = producer
        self.partitions = partitions      # the real bus's: events are batched by partition

    def producer(self) -> QueueProducer:
        return self._producer


def _child(settings, interface: str, bpf: str | None, snaplen: int, out: mp.Queue,
           stop_request, gauges, parent: int, log_level: int) -> None:
    """The capture process: open the socket, say ready (or why not), capture until asked."""
    logging.basicConfig(level=log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app import collect
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _renice(getattr(settings, "capture_nice", 0))
    try:
        source = collect.open_capture(interface, stop, bpf, snaplen)
    except ValueError as exc:
        out.put(("error", str(exc)))
        return
    out.put(("ready", None))
    peak = [0]

    def depth() -> None:
        try:
            now = out.qsize()
        except NotImplementedError:
            now = 0
        peak[0] = max(peak[0], now)
        gauges[SLOTS.index("queue_depth")] = now
        gauges[SLOTS.index("queue_peak")] = peak[0]

    producer = QueueProducer(out, depth, parent)

    def watch() -> None:            # publish the gauges; stop with the parent
        while not stop.wait(0.25):
            if stop_request.is_set() or os.getppid() != parent:
                stop.set()
            _write_gauges(gauges, source.stats, producer)
            depth()
    threading.Thread(target=watch, name="wk-capture-gauges", daemon=True).start()
    collect.run_capture(settings, _QueueBus(producer, settings.partitions), stop, source,
                        extra=lambda: {"queue_depth": gauges[SLOTS.index("queue_depth")],
                                       "queue_peak": gauges[SLOTS.index("queue_peak")]})
    producer.flush()
    _write_gauges(gauges, source.stats, producer)
    producer.put(("done", None))
    out.close()
    if os.getppid() != parent:
        out.cancel_join_thread()        # nobody will read what is left
    else:
        out.join_thread()


def _renice(niceness: int) -> None:
    """Frames wait in a ring of fixed size, events on the bus in memory: under CPU pressure
    the capture should run first (a negative value needs CAP_SYS_NICE; refused: logged)."""
    if not niceness:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError as exc:
        log.warning("capture_nice %d not applied: %s", niceness, exc)


def _write_gauges(gauges, stats, producer: QueueProducer) -> None:
    for name in SLOTS:
        value = producer.batches_sent if name == "batches_sent" else getattr(stats, name, None)
        if value is not None:
            gauges[SLOTS.index(name)] = int(value)


@dataclass
class RelayStats:
    messages: int = 0
    batches: int = 0
    gauges: dict[str, int] = field(default_factory=dict)


class CaptureProcess:
    """The parent's side: start the child, relay its messages onto the bus, stop it."""

    def __init__(self, settings, interface: str, bpf: str | None = None,
                 snaplen: int = 65535):
        self.interface = interface
        ctx = mp.get_context("spawn")
        self.queue: mp.Queue = ctx.Queue(maxsize=QUEUE_BATCHES)
        self.stop_request = ctx.Event()
        self.gauges = ctx.Array("q", len(SLOTS), lock=False)
        self.stats = RelayStats()
        self.process = ctx.Process(
            target=_child, name=f"wk-capture-{interface}", daemon=True,
            args=(settings, interface, bpf, snaplen, self.queue, self.stop_request,
                  self.gauges, os.getpid(), logging.getLogger().getEffectiveLevel()))

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> CaptureProcess:
        """Start the child and wait until its socket is bound; a bad interface raises
        ValueError here, at start-up, like the in-process capture did."""
        self.process.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, payload = self.queue.get(timeout=0.5)
                break
            except queue_module.Empty:
                if not self.process.is_alive():
                    raise ValueError(f"capture process on {self.interface!r} exited with "
                                     f"status {self.process.exitcode} before it was ready")
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise ValueError(f"capture process on {self.interface!r} not ready "
                                     f"within {timeout:.0f} s")
        if kind == "error":
            self.process.join(timeout=10)
            raise ValueError(payload)
        log.info("capture on %s in its own process (pid %d)", self.interface, self.pid)
        return self

    def relay(self, producer: Producer, stop: threading.Event) -> None:
        """Put the child's messages on the bus until it has finished after `stop`."""
        last_gauges = 0.0
        while True:
            if stop.is_set():
                self.stop_request.set()
            try:
                kind, payload = self.queue.get(timeout=0.2)
            except queue_module.Empty:
                kind, payload = None, None
                if not self.process.is_alive():
                    log.error("capture process on %s exited (status %s)", self.interface,
                              self.process.exitcode)
                    break
            if kind == "batch":
                for topic, value, key in payload:
                    producer.send(topic, value, key=key)
                self.stats.messages += len(payload)
                self.stats.batches += 1
            if kind is None or kind == "done" or self.queue.empty():
                producer.flush()
            if time.monotonic() - last_gauges > 0.5 or kind == "done":
                self._export_gauges()
                last_gauges = time.monotonic()
            if kind == "done":
                break
        self.process.join(timeout=30)

    def _export_gauges(self) -> None:
        self.stats.gauges = {name: int(self.gauges[i]) for i, name in enumerate(SLOTS)}
        for name, value in self.stats.gauges.items():
            CAPTURE_GAUGE.labels(interface=self.interface, measure=name).set(value)
        CAPTURE_GAUGE.labels(interface=self.interface, measure="relayed").set(self.stats.messages)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
