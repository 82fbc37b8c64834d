"""One netflume flow record (+ its message header) -> one ECS flow document (DESIGN.md §3).

NetFlow records are unidirectional: the counters belong to the source side, and
network.bytes/packets repeat them so queries over both record kinds (ours and the capture
collector's bidirectional flows) add up the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from watchkeeper import schema, timeutil
from watchkeeper.documents import community_id, transport_name
from watchkeeper.networks import InternalNetworks

_ICMP = (1, 58)
_WRAP = 1 << 32
# Some exporters stamp a record a little after the header's uptime; more than this "after
# the export" can only be the 32-bit uptime having wrapped since the flow was stamped.
_EXPORT_SKEW_MS = 60_000


@dataclass
class FlowTimes:
    start: float   # epoch seconds
    end: float


@dataclass
class ExportContext:
    """What a record needs from its message: who sent it and how to read its counters."""
    exporter: str
    header: dict
    sampling_rate: int = 1
    export_time: float = 0.0            # header time, with v5's nanoseconds
    system_init_ms: int | None = None   # IPFIX: from an options record, for fields 21/22


def _uptime_delta_ms(uptime: int, switched: int) -> int:
    """How long before the export (uptime) the flow was stamped, on 32-bit counters.

    A flow cannot be stamped after its export, so the difference is unsigned (a wrap between
    the two is harmless) except within a small skew. A signed (half-range) reading put
    softflowd's replayed flows 25 days in the future whenever the date made the wrapped
    difference land in the upper half, which nfdump reads the unsigned way.
    """
    delta = (uptime - switched) % _WRAP
    return delta - _WRAP if delta > _WRAP - _EXPORT_SKEW_MS else delta


def flow_times(rec: dict, ctx: ExportContext) -> FlowTimes:
    """Absolute start/end: IPFIX absolute fields first, else boot-relative ms converted."""
    for start_key, end_key, scale in (("flow_start_ms", "flow_end_ms", 1e-3),
                                      ("flow_start_s", "flow_end_s", 1.0),
                                      ("flow_start_us", "flow_end_us", 1.0),
                                      ("flow_start_ns", "flow_end_ns", 1.0)):
        if rec.get(start_key):
            start = rec[start_key] * scale
            return FlowTimes(start, (rec.get(end_key) or rec[start_key]) * scale)
    first, last = rec.get("first_switched"), rec.get("last_switched")
    if first is None:
        return FlowTimes(ctx.export_time, ctx.export_time)
    last = first if last is None else last
    uptime = ctx.header.get("sys_uptime")
    if uptime is not None:   # v5/v9: header carries uptime at export time
        return FlowTimes(ctx.export_time - _uptime_delta_ms(uptime, first) / 1000,
                         ctx.export_time - _uptime_delta_ms(uptime, last) / 1000)
    init = rec.get("system_init_time_ms") or ctx.system_init_ms
    if init:                 # IPFIX sysUpTime fields are relative to systemInitTime
        return FlowTimes(_since_init(init, first, ctx), _since_init(init, last, ctx))
    return FlowTimes(ctx.export_time, ctx.export_time)


def _since_init(init_ms: int, uptime_ms: int, ctx: ExportContext) -> float:
    """A flow cannot end after its export: past it, the 32-bit uptime field had wrapped
    (softflowd replaying a capture older than its own start does exactly that)."""
    moment = (init_ms + uptime_ms) / 1000
    if moment > ctx.export_time + 1 and moment - _WRAP / 1000 > 0:
        moment -= _WRAP / 1000
    return moment


@dataclass
class Ports:
    source: int
    destination: int


def _ports(rec: dict, proto: int) -> Ports:
    """ICMP: Community ID wants (type, code); exporters put type*256+code in dst port."""
    sport, dport = int(rec.get("src_port") or 0), int(rec.get("dst_port") or 0)
    if proto in _ICMP:
        code = int(rec.get("icmp_type_code") or rec.get("icmp_type_code_v6") or dport)
        return Ports(code >> 8 & 0xFF, code & 0xFF)
    return Ports(sport, dport)


def _counter(rec: dict, delta: str, total: str) -> int:
    value = rec.get(delta)
    return int(rec.get(total) or 0) if value is None else int(value)


def flow_document(rec: dict, ctx: ExportContext, networks: InternalNetworks) -> dict | None:
    """The ECS document, or None when the record names no addresses (caller dead-letters)."""
    src = rec.get("src_addr") or rec.get("post_nat_src_addr")
    dst = rec.get("dst_addr") or rec.get("post_nat_dst_addr")
    if not src or not dst:
        return None
    proto = int(rec.get("proto") or 0)
    ports = _ports(rec, proto)
    sport, dport = ports.source, ports.destination
    # Sampled exporters report 1 in N packets: scale so totals estimate the real traffic.
    packets = _counter(rec, "packets", "packets_total") * ctx.sampling_rate
    octets = _counter(rec, "octets", "octets_total") * ctx.sampling_rate
    times = flow_times(rec, ctx)
    domain = ctx.header.get("domain")
    version = ctx.header.get("version")
    event_id = schema.stable_id("netflow", ctx.exporter, domain, proto, src, sport, dst, dport,
                                times.start, times.end, packets, octets)
    return {
        "@timestamp": timeutil.format(times.start),
        "event": {
            "id": event_id, "kind": "event", "category": ["network"],
            "type": ["connection"], "dataset": schema.FLOW,
            "module": "ipfix" if version == 10 else "netflow",
            "start": timeutil.format(times.start), "end": timeutil.format(times.end),
            "duration": max(0, round((times.end - times.start) * 1e9)),
        },
        "observer": {"ip": ctx.exporter, "name": ctx.exporter, "type": "router"},
        "source": {"ip": src, "port": sport, "bytes": octets, "packets": packets},
        "destination": {"ip": dst, "port": dport},
        "network": {
            "transport": transport_name(proto), "iana_number": str(proto),
            "community_id": community_id(proto, src, dst, sport, dport),
            "bytes": octets, "packets": packets,
            "direction": networks.direction(src, dst),
        },
        "related": {"ip": sorted({src, dst})},
        "watchkeeper": {"netflow": {
            "version": version, "domain": domain, "sequence": ctx.header.get("sequence"),
            "sampling_rate": ctx.sampling_rate, "tcp_flags": rec.get("tcp_flags"),
            "in_if": rec.get("in_if"), "out_if": rec.get("out_if"),
        }},
    }
