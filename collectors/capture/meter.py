"""Packet capture -> Zeek-grade bidirectional flows (DESIGN.md §1: `capture`, `flows FILE…`).

    for rec in iter_flows(["a.pcap", "b.pcapng"]): ...
    flows = iter_flows(paths); docs = list(flows); flows.stats.malformed

Pipeline per chunk of records: sources (record batch) -> decoding (numpy fast path, Python slow
path for the rest) -> flows (grouped per flow). Memory is bounded by the chunk size and
`FlowConfig.max_flows`, not by the file size.

Live capture seam: `Capture` consumes any iterable of `RecordBatch`; a live source
(`--interface`) only has to produce batches of frames with their link type and time.
With `app=True` it also yields `AppRecord`s (DNS, HTTP, TLS from payloads, appmeta/) and
lets payload evidence (an SSH banner) set the flow's service.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Iterable, Iterator

import numpy as np

from watchkeeper import codec
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

from collectors.capture.appmeta.tracker import AppConfig, AppRecord, AppTracker
from collectors.capture.arp import arp_requests
from collectors.capture.decoding import packets as D
from collectors.capture.decoding.reference import ReferenceDecoder
from collectors.capture.documents.app import app_document
from collectors.capture.documents.flowjson import slice_encoders
from collectors.capture.flows.compiled.table import RecordColumns
from collectors.capture.flows.protocol import FlowBatch, FlowTable
from collectors.capture.flows.reference import FlowConfig, ReferenceFlowTable
from collectors.capture.prefetch import ahead, in_order
from collectors.capture.sources.pcap import CHUNK, CaptureFormatError, RecordBatch, open_records

__all__ = ["CaptureStats", "Capture", "FlowConfig", "iter_flows", "iter_flow_documents",
           "iter_flow_lines"]


@dataclass
class CaptureStats:
    """Counters of one run; complete once iteration has finished."""
    packets: int = 0            # records read
    malformed: int = 0          # undecodable / truncated / corrupt packets (never raised)
    non_ip: int = 0             # ARP, LLDP, STP, ... (not flows)
    arp_requests: int = 0       # broadcast ARP requests reported (with app metadata; arp.py)
    fragments: int = 0          # IP fragments seen (reassembled datagrams count once)
    bad_checksum: int = 0       # only with FlowConfig.verify_checksums
    evicted_flows: int = 0      # flows pushed out because the table was full
    flows: int = 0              # final flow records emitted
    interim_records: int = 0    # final=False updates emitted
    files: int = 0
    file_errors: int = 0        # unreadable / not a capture / corrupt record header
    slow_path: int = 0          # records decoded by the per-packet Python path


def file_batches(paths: Iterable[str], stats: CaptureStats,
                 chunk_size: int = CHUNK) -> Iterator[RecordBatch]:
    """Record batches of every file in turn; a bad file is counted and skipped."""
    for path in paths:
        stats.files += 1
        try:
            yield from open_records(str(path), chunk_size)
        except (CaptureFormatError, OSError):
            stats.file_errors += 1


class Capture:
    """Iterator of FlowRecords (and AppRecords) over a batch source, with `stats` filled as
    it goes; or, through `documents()` instead, of their ECS documents."""

    def __init__(self, batches: Iterable[RecordBatch], config: FlowConfig | None = None,
                 stats: CaptureStats | None = None, app: bool | AppConfig = False):
        self.config = config or FlowConfig()
        self.stats = stats or CaptureStats()
        self.app = AppTracker(app if isinstance(app, AppConfig) else AppConfig()) \
            if app else None
        self._batches = batches
        self._it = self._run()

    def __iter__(self) -> Capture:
        return self

    def __next__(self) -> FlowRecord | AppRecord:
        return next(self._it)

    def _run(self) -> Iterator[FlowRecord | AppRecord]:
        for flows, apps in self._chunks():
            yield from flows.records()
            yield from apps

    def documents(self, observer: str, networks: InternalNetworks,
                  site: str | None = None) -> Iterator[dict]:
        """ECS documents instead of records: the compiled table's are built from its rows in
        bulk (documents/flows.py), without a FlowRecord per flow."""
        for flows, apps in self._chunks():
            yield from flows.documents(observer, networks, site)
            for rec in apps:
                yield app_document(rec, observer, networks, site)

    def lines(self, observer: str, networks: InternalNetworks, site: str | None = None,
              prefetch: bool = False) -> Iterator[bytes | memoryview]:
        """The same documents as JSON lines (`codec.encode(doc) + b"\\n"` each), a batch's
        worth per item, for consumers that only want bytes: the compiled table's flow lines
        are written from its rows without a dict (documents/flowjson.py). With `prefetch`
        (a capture file, where no one waits for the next batch) the next batches are read
        and metered on a thread while two workers write the lines of the last ones
        (prefetch.py); `stats` are then those of the batches metered so far, and items may
        be memoryviews of the writers' buffers (bytes-like: written out or joined)."""
        if not prefetch:
            for flows, apps in self._chunks():
                if len(flows):
                    yield from flows.lines(observer, networks, site)
                if apps:
                    yield self._app_lines(apps, observer, networks, site)
            return
        # Three stages on their own threads, all in compiled code for most of their time:
        # reading and walking the records, decoding and metering, writing the lines.
        read = ahead(self._batches, name="capture-reader")
        jobs = (job for flows, apps in ahead(self._chunks(read), name="flow-meter")
                for job in self._line_jobs(flows, apps, observer, networks, site))
        yield from in_order(jobs, workers=2)

    def _line_jobs(self, flows: FlowBatch, apps: list[AppRecord], observer: str,
                   networks: InternalNetworks, site: str | None) -> list:
        jobs = []
        if isinstance(flows, RecordColumns):
            jobs += slice_encoders(flows.rows, flows.app, observer, networks, site, view=True)
        elif len(flows):
            jobs.append(lambda: b"".join(flows.lines(observer, networks, site)))
        if apps:
            jobs.append(partial(self._app_lines, apps, observer, networks, site))
        return jobs

    @staticmethod
    def _app_lines(apps: list[AppRecord], observer: str, networks: InternalNetworks,
                   site: str | None) -> bytes:
        return b"".join(codec.encode(app_document(rec, observer, networks, site)) + b"\n"
                        for rec in apps)

    def _chunks(self, batches: Iterable[RecordBatch] | None = None
                ) -> Iterator[tuple[FlowBatch, list[AppRecord]]]:
        """Per batch: its flow records (a FlowBatch, whichever the table) and app records."""
        table: FlowTable = make_table(self.config)
        decoder = make_decoder(self.config)
        app = self.app
        for batch in self._batches if batches is None else batches:
            self.stats.malformed += 1 if batch.truncated_tail else 0
            arps = []
            if len(batch):
                packets = self.decode(batch, decoder)
                if app is not None:
                    app.process(batch.data, packets)
                    table.hints.update(app.take_hints())
                    arps = arp_requests(batch)
                    self.stats.arp_requests += len(arps)
                table.process(packets)
            if batch.clock is not None:
                table.advance(batch.clock)
            self.stats.fragments = decoder.fragments_seen
            self.stats.evicted_flows = table.evicted
            flows = self._count(table.drain_columns())
            apps = []
            if app is not None:
                app.expire(table.now)
                apps = app.drain() + arps
            yield flows, apps
        flows = self._count(table.flush_columns())
        yield flows, app.flush() if app is not None else []

    def decode(self, batch: RecordBatch, decoder) -> D.Packets:
        rows, n_slow = decoder.decode(batch)
        self.stats.packets += len(batch)
        self.stats.slow_path += n_slow
        status = np.bincount(rows.status, minlength=D.BADSUM + 1)
        self.stats.malformed += int(status[D.MALFORMED])
        self.stats.non_ip += int(status[D.NON_IP])
        self.stats.bad_checksum += int(status[D.BADSUM])
        return rows

    def _count(self, flows: FlowBatch) -> FlowBatch:
        finals = flows.final_count()
        self.stats.flows += finals
        self.stats.interim_records += len(flows) - finals
        return flows


def make_table(config: FlowConfig) -> FlowTable:
    """The flow table `config.engine` names: the compiled one, or the Python reference."""
    if config.engine == "reference":
        return ReferenceFlowTable(config)
    if config.engine == "compiled":
        from collectors.capture.flows.compiled import CompiledFlowTable
        return CompiledFlowTable(config)
    raise ValueError(f"flow table engine must be 'compiled' or 'reference', not "
                     f"{config.engine!r}")


def make_decoder(config: FlowConfig):
    """The header decoder that goes with `config.engine`: compiled, or the Python reference
    (numpy fast path + per-packet slow path)."""
    if config.engine == "compiled":
        from collectors.capture.decoding.compiled import CompiledDecoder
        return CompiledDecoder(config.verify_checksums)
    return ReferenceDecoder(config.verify_checksums)


def iter_flow_columns(paths: list[str], config: FlowConfig | None = None,
                      stats: CaptureStats | None = None) -> Iterator[RecordColumns]:
    """Flow records of the given captures as `RecordColumns` batches (numpy rows, no Python
    object per flow) from the compiled table: the flow meter alone, for consumers that stay
    columnar."""
    config = replace(config or FlowConfig(), engine="compiled")
    stats = stats or CaptureStats()
    for flows, _ in Capture(file_batches(paths, stats), config, stats)._chunks():
        if len(flows):
            yield flows


def iter_flows(paths: list[str], config: FlowConfig | None = None) -> Capture:
    """Flow records of the given pcap/pcapng files, read in order as one capture."""
    stats = CaptureStats()
    return Capture(file_batches(paths, stats), config, stats)


def iter_flow_documents(paths: list[str], observer: str, networks: InternalNetworks,
                        config: FlowConfig | None = None, app: bool = False,
                        site: str | None = None) -> Iterator[dict]:
    """ECS documents of the given captures: flows, and with `app` DNS/HTTP/TLS events."""
    stats = CaptureStats()
    return Capture(file_batches(paths, stats), config, stats, app).documents(observer, networks,
                                                                           site)


def iter_flow_lines(paths: list[str], observer: str, networks: InternalNetworks,
                    config: FlowConfig | None = None, app: bool = False,
                    site: str | None = None,
                    prefetch: bool = False) -> Iterator[bytes | memoryview]:
    """`iter_flow_documents` as JSON lines (bytes-like, several documents per item)."""
    stats = CaptureStats()
    return Capture(file_batches(paths, stats), config, stats, app).lines(observer, networks, site,
                                                                       prefetch)


def capture_document(rec: FlowRecord | AppRecord, observer: str, networks: InternalNetworks,
                     site: str | None = None) -> dict:
    if isinstance(rec, AppRecord):
        return app_document(rec, observer, networks, site)
    return flow_document(rec, observer, networks, site)
