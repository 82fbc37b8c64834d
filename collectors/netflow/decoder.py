"""Datagram -> flow documents, with the state a collector keeps between datagrams.

Parsing is netflume's (v5, v9, IPFIX; options templates; sampling; sequence watch, all keyed
by exporter and observation domain; it never raises). This layer adds what a security
collector needs on top: template expiry and IPFIX withdrawal (templates.py), malformed
datagrams detected and explained (wire.py) so they can be dead-lettered, sampling from the
v5 header of *each* datagram, and ECS documents (records.py).

Data sets whose template has not arrived are counted and dropped, not buffered: exporters
resend templates every few minutes, and replaying buffered sets later would emit flows
long after their neighbours, out of order, for little gain.
"""
from __future__ import annotations

import ipaddress
import logging
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from netflume import Decoder
from netflume.sampling import SamplingWatch
from netflume.sequence import SequenceWatch

from collectors.netflow import wire
from collectors.netflow.exporters import ExporterStates, forget_netflume
from collectors.netflow.records import ExportContext, flow_document
from collectors.netflow.templates import DEFAULT_TEMPLATE_TIMEOUT, ExpiringTemplateStore
from watchkeeper import ratelog
from watchkeeper.networks import InternalNetworks

log = logging.getLogger(__name__)
# Every line these log is caused by a datagram: rate-limited and summarised.
ratelog.limit(log, *(f"netflume.{m}" for m in ("decoder", "parse", "sampling", "sequence")))
_MAX_INIT_TIMES = 10_000   # bounded: exporter addresses are forgeable
_UNITS = {5: "flow records", 9: "export packets", 10: "data records"}


@dataclass
class DecodeResult:
    """Everything one datagram produced; `problem` set means dead-letter the datagram."""
    exporter: str
    version: int | None = None
    sequence: int | None = None
    documents: list[dict] = field(default_factory=list)
    unusable: list[dict] = field(default_factory=list)  # flow records without addresses
    problem: str | None = None
    option_records: int = 0
    sets_without_template: int = 0
    lost_exports: int = 0

    @property
    def position(self) -> str:
        return f"{self.exporter}:{'?' if self.sequence is None else self.sequence}"


class NetflowDecoder:
    """Not thread safe (neither is netflume's Decoder): one per parser thread."""

    def __init__(self, template_timeout: float = DEFAULT_TEMPLATE_TIMEOUT,
                 networks: InternalNetworks | None = None,
                 clock: Callable[[], float] = time.monotonic, max_exporters: int = 1024,
                 exporter_idle_s: float = 3600.0):
        self.networks = networks or InternalNetworks()
        self.templates = ExpiringTemplateStore(template_timeout, clock)
        self._decoder = Decoder()
        self._decoder.templates = self.templates   # netflume reads it per datagram
        # netflume's own ceilings stay as a backstop, no larger than ours.
        self._decoder.sequence = SequenceWatch(max_streams=max_exporters * 3)
        self._decoder.sampling = SamplingWatch(max_streams=max_exporters)
        self._init_times: OrderedDict[tuple, int] = OrderedDict()
        self.exporters = ExporterStates(self._forget, max_exporters, exporter_idle_s, clock)

    def _forget(self, exporter, domain) -> None:
        self.templates.forget_stream(exporter, domain)
        forget_netflume(self._decoder, exporter, domain)
        self._init_times.pop((exporter, domain), None)

    @property
    def stats(self):
        """netflume's counters (collections.Counter): deferred, truncated, missed_exports…"""
        return self._decoder.stats

    def export_gaps(self):
        """Cumulative lost exports per (exporter, domain, version), worst first."""
        return self._decoder.sequence.gaps()

    def decode(self, data: bytes, exporter: str) -> DecodeResult:
        result = DecodeResult(exporter)
        version = struct.unpack_from("!H", data)[0] if len(data) >= 2 else None
        result.version = version
        problem = self._structure_problem(data, version, exporter)
        before = self.stats["deferred"]
        message = self._decoder.decode(data, exporter)
        self._decoder.take_events()   # logged by netflume already; we keep counters
        domain = _domain(data, version, message)
        if domain is not _NONE:
            # After the decode: a template set may have stored state even if it then failed.
            self.exporters.seen(message.exporter if message else _netflume_key(exporter), domain)
        if message is None:
            result.problem = problem or (f"unparsable datagram (v{version})"
                                         if version in _UNITS else f"unsupported version {version}")
            return result
        result.problem = problem
        result.sequence = message.sequence
        result.option_records = len(message.options)
        result.sets_without_template = self.stats["deferred"] - before
        result.lost_exports = message.gap
        if message.gap:
            self._log_gap(message)
        self._build(message, data, result)
        return result

    def _structure_problem(self, data: bytes, version: int | None, exporter: str) -> str | None:
        if version == 5:
            return wire.check_v5(data)
        if version not in (9, 10):
            return None
        scan = wire.scan_sets(data, version)
        if scan.withdrawals and not scan.problem:
            domain = struct.unpack_from("!I", data, 12)[0]
            for withdrawal in scan.withdrawals:
                self.templates.withdraw(exporter, domain, withdrawal)
        return scan.problem

    def _build(self, message, data: bytes, result: DecodeResult) -> None:
        ctx = self._context(message, data)
        for rec in message.flows:
            doc = flow_document(rec, ctx, self.networks)
            if doc is None:
                result.unusable.append(rec)
            else:
                result.documents.append(doc)

    def _context(self, message, data: bytes) -> ExportContext:
        header = message.header
        export_time = float(header.get("unix_secs") or 0)
        rate = message.sampling_rate
        if header["version"] == 5:
            # v5 states its sampling in every header: use this one, never a stale rate.
            export_time += struct.unpack_from("!I", data, 12)[0] / 1e9  # unix_nsecs
            rate = max(1, struct.unpack_from("!H", data, 22)[0] & 0x3FFF)
        key = (message.exporter, header.get("domain"))
        for opt in message.options:
            if opt.get("system_init_time_ms"):
                self._init_times[key] = opt["system_init_time_ms"]
                self._init_times.move_to_end(key)
                while len(self._init_times) > _MAX_INIT_TIMES:
                    self._init_times.popitem(last=False)
        return ExportContext(message.exporter, dict(header), rate, export_time,
                             self._init_times.get(key))

    def _log_gap(self, message) -> None:
        # netflume learns per stream whether the counter counts packets or records (many v9
        # exporters count records, against the RFC); name the unit it settled on.
        stream = (message.exporter, message.header.get("domain"), message.version)
        unit = self._decoder.sequence.units.get(stream) or _UNITS.get(message.version, "exports")
        log.warning("netflow: exporter %s domain %s (v%s) lost %d %s before sequence %s",
                    message.exporter, stream[1], message.version, message.gap, unit,
                    message.sequence)


_NONE = object()


def _netflume_key(exporter: str) -> str:
    """The spelling netflume files an exporter under: IPv4-mapped IPv6 folded to IPv4."""
    if ":" not in exporter:
        return exporter
    try:
        mapped = ipaddress.IPv6Address(exporter).ipv4_mapped
    except ValueError:
        return exporter
    return exporter if mapped is None else str(mapped)


def _domain(data: bytes, version: int | None, message) -> object:
    """The observation domain a datagram may have stored state under, or _NONE."""
    if message is not None:
        return message.header.get("domain")
    if version == 9 and len(data) >= 20:
        return struct.unpack_from("!I", data, 16)[0]
    if version == 10 and len(data) >= 16:
        return struct.unpack_from("!I", data, 12)[0]
    return _NONE
