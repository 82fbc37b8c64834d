"""Bidirectional flow table with Zeek conn.log semantics, fed with decoded packet batches.

Per batch the work is: build a canonical (direction-free) key per packet with numpy, group
packets by key, then walk each flow's packets in time order. Each flow is independent of
the others, so processing flow by flow inside a batch gives the same result as strict time
order (Zeek's timers only touch their own connection). A bulk path aggregates the long
"boring" stretches of TCP packets (no SYN/FIN/RST, same direction pattern) with numpy so
that Python only runs per interesting packet; see `bulk.py`.

Flows end on Zeek's timers (attempt, close/reset linger, inactivity), when the table is
full (oldest deadline evicted, counted), or at `flush()`. A flow still open
`early_report` seconds after it started is reported once (`final=False`), then every
`active_timeout` seconds, so what is running is visible before it ends. `advance(now)` moves
time on without packets (a live source's wall clock), so a quiet link still expires flows.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from watchkeeper import codec
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

from collectors.capture.decoding import packets as D
from collectors.capture.flows import tcpstate as T
from collectors.capture.flows.flow import Flow, FlowConfig, merged_hints
from collectors.capture.flows.lite import LiteStore

__all__ = ["FlowConfig", "RecordList", "ReferenceFlowTable", "canonical_keys"]


def canonical_keys(p: D.Packets) -> tuple[np.ndarray, np.ndarray]:
    """(n, 40) uint8 keys equal for both directions of a flow, and the 'src is low' mask."""
    n = len(p)
    diff = p.src != p.dst
    first = diff.argmax(axis=1)
    rows = np.arange(n)
    ip_lt = p.src[rows, first] < p.dst[rows, first]
    same_ip = ~diff.any(axis=1)
    src_low = np.where(same_ip, p.sport <= p.dport, ip_lt)
    keys = np.zeros((n, 40), np.uint8)
    keys[:, 0] = p.proto
    lo_ip = np.where(src_low[:, None], p.src, p.dst)
    hi_ip = np.where(src_low[:, None], p.dst, p.src)
    keys[:, 1:17], keys[:, 17:33] = lo_ip, hi_ip
    lo_port = np.where(src_low, p.sport, p.dport).astype(">u2")
    hi_port = np.where(src_low, p.dport, p.sport).astype(">u2")
    keys[:, 33:35] = lo_port.view(np.uint8).reshape(n, 2)
    keys[:, 35:37] = hi_port.view(np.uint8).reshape(n, 2)
    return keys, src_low


def _group_addr(ip16: bytes) -> bool:
    # A packet sent to broadcast / multicast is never a reply, so Zeek does not flip it.
    if ip16[:12] == b"\x00" * 10 + b"\xff\xff":
        return 224 <= ip16[12] <= 239 or ip16[12:] == b"\xff\xff\xff\xff"
    return ip16[0] == 0xFF


@dataclass
class RecordList:
    """The reference table's `FlowBatch` (flows/protocol.py): FlowRecord objects."""
    items: list[FlowRecord]

    def __len__(self) -> int:
        return len(self.items)

    def final_count(self) -> int:
        return sum(1 for rec in self.items if rec.final)

    def records(self) -> list[FlowRecord]:
        return self.items

    def documents(self, observer: str, networks: InternalNetworks,
                  site: str | None = None) -> Iterator[dict]:
        for rec in self.items:
            yield flow_document(rec, observer, networks, site)

    def lines(self, observer: str, networks: InternalNetworks,
              site: str | None = None) -> Iterator[bytes]:
        yield b"".join(codec.encode(doc) + b"\n"
                       for doc in self.documents(observer, networks, site))


class ReferenceFlowTable:
    """The Python flow table (the test oracle of compiled/): a `FlowTable` (protocol.py)."""

    def __init__(self, config: FlowConfig | None = None):
        self.config = config or FlowConfig()
        self.flows: dict[bytes, Flow] = {}
        self.lite = LiteStore(self.config)      # single-packet flows, as numpy rows
        self.out: list[FlowRecord] = []
        self.evicted = 0
        self._heap: list = []
        self._tick = itertools.count()
        self.now = 0.0
        self.hints: dict[bytes, dict] = {}     # flow key -> appmeta hint for this batch

    # --- batches ------------------------------------------------------------------------------
    def process(self, p: D.Packets) -> None:
        live = np.flatnonzero((p.status == D.OK) | (p.status == D.BADSUM))
        if live.size == 0:
            return
        from collectors.capture.flows.bulk import process_groups   # bulk imports this module
        q = D.take(p, live)
        keys, _ = canonical_keys(q)
        _, inverse = np.unique(keys.view(np.dtype((np.void, 40))).ravel(), return_inverse=True)
        order = np.lexsort((np.arange(len(q)), inverse))
        process_groups(self, q, keys, inverse, order)
        self._apply_hints()
        self.now = max(self.now, float(q.ts.max()))
        self._sweep(self.now)

    def advance(self, now: float) -> None:
        """Time passed with no packet (live capture's clock): expire what is due by `now`."""
        if now > self.now:
            self.now = now
            self._sweep(now)

    def _apply_hints(self) -> None:
        # Hints of flows that ended inside the batch were taken by `_record`; the rest stay
        # with their flow. Keys without a flow (a lite flow, a flow already gone) are dropped.
        for key, hint in self.hints.items():
            flow = self.flows.get(key)
            if flow is not None:
                flow.app = merged_hints(flow.app, hint)
        self.hints.clear()

    def _record(self, flow: Flow, final: bool = True) -> FlowRecord:
        if self.hints:
            hint = self.hints.pop(flow.key, None)
            if hint:
                flow.app = merged_hints(flow.app, hint)
        return flow.record(final)

    def drain(self) -> list[FlowRecord]:
        out, self.out = self.out, []
        return out

    def drain_columns(self) -> RecordList:
        return RecordList(self.drain())

    def flush_columns(self) -> RecordList:
        return RecordList(self.flush())

    def flush(self) -> list[FlowRecord]:
        """End of input: every remaining flow is reported (Zeek does the same at exit)."""
        records = [self._record(flow) for flow in self.flows.values()] + self.lite.flush()
        records.sort(key=lambda r: r.start)
        self.out += records
        for flow in self.flows.values():
            flow.alive = False
        self.flows.clear()
        self._heap.clear()
        return self.drain()

    # --- one packet ---------------------------------------------------------------------------
    def packet(self, key: bytes, q: D.Packets, i: int) -> Flow:
        """Apply packet row `i` of `q` to its flow (reference path, also used by bulk)."""
        t = float(q.ts[i])
        flags, seq = int(q.flags[i]), int(q.seq[i])
        flow = self.flows.get(key)
        if flow is not None and (flow.expired_by(t) or (
                flow.tcp is not None and q.status[i] == D.OK and flow.tcp.is_reuse(flags, seq))):
            self.finish(flow)
            flow = None
        if flow is None:
            flow = self._new_flow(key, q, i, t)
        src, sport = q.src[i].tobytes(), int(q.sport[i])
        is_orig = src == flow.ips[0] and sport == flow.ports[0]
        if q.status[i] == D.BADSUM:      # Zeek notes it in the history, counts nothing else
            flow.check_history("C", is_orig)
            return flow
        if flow.tcp is not None:
            if T.process(flow, is_orig, t, flags, seq, int(q.ack[i]), int(q.paylen[i])):
                is_orig = not is_orig
        else:
            flow.last = t
            if flow.proto == 17:
                flow.check_history("D", is_orig)
        d = 0 if is_orig else 1
        flow.pkts[d] += 1
        flow.ipb[d] += int(q.iplen[i])
        flow.payload[d] += int(q.paylen[i])
        if t >= flow.interim_at:
            self.interim(flow, t)
        elif flags & T.RST and not is_orig and flow.tcp is not None \
                and self._first_report_pending(flow):
            # The responder's reset decides the outcome (REJ: a refused probe), but Zeek
            # keeps the flow for late packets: report what is known now, the final record
            # follows. (Not the originator's own reset, as after every SYN-flood packet.)
            self.out.append(self._record(flow, final=False))
            flow.interim_at = t + self.config.active_timeout
        return flow

    def _first_report_pending(self, flow: Flow) -> bool:
        early = self.config.early_report
        return early > 0 and flow.interim_at <= flow.start + early

    def interim(self, flow: Flow, t: float) -> None:
        # A connection already over (both sides closed or reset) is not reported early: its
        # final record only waits for the linger.
        if not (flow.tcp is not None and flow.tcp.over() and self._first_report_pending(flow)):
            self.out.append(self._record(flow, final=False))
        # The next report is due an active timeout after this one, not after the one that
        # was due: a late sweep (a quiet stretch, small batches) must not send the same
        # unchanged record twice in a row.
        flow.interim_at = t + self.config.active_timeout

    def _new_flow(self, key: bytes, q: D.Packets, i: int, t: float) -> Flow:
        if len(self.flows) + len(self.lite) >= self.config.max_flows:
            self._evict_one()
        proto = int(q.proto[i])
        sport, dport = int(q.sport[i]), int(q.dport[i])
        ips = [q.src[i].tobytes(), q.dst[i].tobytes()]
        flow = Flow(key, proto, bool(q.v6[i]), ips, [sport, dport], t, self.config,
                    bool(q.tunnel[i]))
        if self._want_flip(proto, int(q.flags[i]), sport, dport) and not _group_addr(ips[1]):
            flow.flip()
        flow.arm_dns_timer()
        self.flows[key] = flow
        return flow

    def _want_flip(self, proto: int, flags: int, sport: int, dport: int) -> bool:
        # Zeek's WantConnection: a first packet that is a SYN-ACK, or that comes from a
        # likely server port (and not to one), was sent by the responder.
        likely = self.config.likely_server_ports
        if proto == 6:
            if flags & T.SYN and flags & T.ACK and not flags & T.RST:
                return True
            if flags & T.SYN:
                return False
            if (6, sport) in likely:
                return (6, dport) not in likely or sport < dport
            return False
        if proto == 17:
            return (17, sport) in likely and (17, dport) not in likely
        return False

    # --- expiry -------------------------------------------------------------------------------
    def finish(self, flow: Flow, **extra) -> None:
        rec = self._record(flow)
        rec.extra.update(extra)
        self.out.append(rec)
        flow.alive = False
        if self.flows.get(flow.key) is flow:
            del self.flows[flow.key]

    def schedule(self, flow: Flow) -> None:
        due = flow.next_deadline()
        if due < flow.heap_at:
            flow.heap_at = due
            heapq.heappush(self._heap, (due, next(self._tick), flow))

    def _sweep(self, now: float) -> None:
        self.out += self.lite.expire(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, flow = heapq.heappop(heap)
            if not flow.alive or flow.heap_at != due:
                continue
            flow.heap_at = float("inf")
            if flow.expired_by(now):
                self.finish(flow)
            else:
                if flow.interim_at <= now:
                    self.interim(flow, now)
                self.schedule(flow)

    def _evict_one(self) -> None:
        heap = self._heap
        while heap and not (heap[0][2].alive and heap[0][2].heap_at == heap[0][0]):
            heapq.heappop(heap)                 # stale entries
        lite_due = self.lite.earliest()
        if lite_due is not None and (not heap or lite_due < heap[0][0]):
            self.out.append(self.lite.evict_earliest())
            self.evicted += 1
            return
        while self._heap:
            due, _, flow = heapq.heappop(self._heap)
            if flow.alive and flow.heap_at == due:
                self.finish(flow, evicted=True)
                self.evicted += 1
                return
        if self.flows:      # nothing scheduled (should not happen): drop the oldest insert
            flow = next(iter(self.flows.values()))
            self.finish(flow, evicted=True)
            self.evicted += 1
