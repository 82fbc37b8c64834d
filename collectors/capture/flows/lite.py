"""Single-packet flows kept as numpy rows instead of `Flow` objects ("lite" flows).

Why: flood-heavy traffic (scans, spoofed SYNs, one-shot UDP) makes most flows a single
packet, and a full `Flow` (TcpState, two Endpoints, lists, set, timer lists, a heap entry)
costs ~10x a packet's decode in time and ~1.5 KB of memory. A new flow whose only packet in
its batch is a bare SYN or SYN-ACK (no payload) or a UDP datagram has a fully known
outcome: Zeek's state machine gives S0 "S" (SYN), OTH "^h" (SYN-ACK, flipped), S0 "D" /
SHR "^d" (UDP, flipped when from a likely server port), and it ends at a fixed offset
from its start (attempt delay, DNS session timeout or inactivity) unless another packet
arrives. So such flows are stored as one row per flow in
per-batch segments (the packet's decoded columns), their records are built in bulk when
they expire, and a later packet on the same key *materialises* the flow by replaying the
stored packet through the reference path (`ReferenceFlowTable.packet`) - so every subtle case
(retransmitted SYN, reuse, replies) stays in one place, tcpstate.py.
"""
from __future__ import annotations

import numpy as np

from watchkeeper.documents import FlowRecord

from collectors.capture.decoding import packets as D
from collectors.capture.flows import tcpstate as T
from collectors.capture.flows.flow import DNS_PORTS, SERVICES, FlowConfig, flow_uid, ip_text

# Narrow column types for stored rows (memory per lite flow; see bench/RESULTS.md).
_NARROW = {"status": np.uint8, "proto": np.uint8, "sport": np.uint16, "dport": np.uint16,
           "flags": np.uint8, "seq": np.uint32, "ack": np.uint32, "paylen": np.int32,
           "iplen": np.int32, "payoff": np.int32, "paycap": np.int32}


_CTL = T.SYN | T.ACK | T.FIN | T.RST


def _port_table(ports, proto: int) -> np.ndarray:
    table = np.zeros(65536, bool)
    table[[p for pr, p in ports if pr == proto]] = True
    return table


def eligible(q: D.Packets) -> np.ndarray:
    """Packets that would make a lite flow if they are the only packet of a new flow."""
    return (q.status == D.OK) & ((q.proto == 17) | _bare_syn(q) | _bare_syn_ack(q))


def _bare_syn(q: D.Packets) -> np.ndarray:
    return (q.proto == 6) & ((q.flags & _CTL) == T.SYN) & (q.paylen == 0)


def _bare_syn_ack(q: D.Packets) -> np.ndarray:
    # A lone SYN-ACK is flipped (Zeek's WantConnection) unless sent to a group address.
    return (q.proto == 6) & ((q.flags & _CTL) == (T.SYN | T.ACK)) & (q.paylen == 0) \
        & ~group_dst(q.dst)


def group_dst(dst: np.ndarray) -> np.ndarray:
    """Vector form of reference._group_addr (broadcast / multicast destination)."""
    mapped = (dst[:, :10] == 0).all(axis=1) & (dst[:, 10] == 0xFF) & (dst[:, 11] == 0xFF)
    v4_group = ((dst[:, 12] >= 224) & (dst[:, 12] <= 239)) | (dst[:, 12:] == 0xFF).all(axis=1)
    return np.where(mapped, v4_group, dst[:, 0] == 0xFF)


class Segment:
    """Lite flows created by one batch: packet columns, keys, deadlines, liveness."""

    def __init__(self, base: int, q: D.Packets, keys: np.ndarray, due: np.ndarray,
                 flip: np.ndarray, report: np.ndarray):
        self.base, self.q, self.keys, self.due, self.flip = base, q, keys, due, flip
        self.alive = np.ones(len(due), bool)
        self.order = np.argsort(due, kind="stable")     # expiry order
        self.pos = 0                                    # next index into `order`
        self.report = report                            # early report time (inf: none)
        self.report_order = np.argsort(report, kind="stable")
        self.report_pos = 0

    def head(self) -> int | None:
        """Row of the earliest alive flow, or None."""
        order, alive = self.order, self.alive
        while self.pos < len(order) and not alive[order[self.pos]]:
            self.pos += 1
        return int(order[self.pos]) if self.pos < len(order) else None


class LiteStore:
    def __init__(self, config: FlowConfig):
        self.config = config
        self.index: dict[bytes, int] = {}       # key -> global row id (segment base + row)
        self.segments: list[Segment] = []
        self.next_id = 0
        self.count = 0
        self._likely_udp = _port_table(config.likely_server_ports, 17)
        self._dns = _port_table([(17, p) for p in DNS_PORTS], 17)

    def __len__(self) -> int:
        return self.count

    def add(self, q: D.Packets, keys: np.ndarray, key_bytes: list[bytes]) -> None:
        """Store rows of `q` (each the only packet of a new eligible flow) as lite flows."""
        cfg = self.config
        udp = q.proto == 17
        likely = self._likely_udp
        synack = _bare_syn_ack(q)
        flip = (udp & likely[q.sport] & ~likely[q.dport] & ~group_dst(q.dst)) | synack
        resp_port = np.where(flip, q.sport, q.dport)
        udp_end = np.where(self._dns[resp_port],
                           min(cfg.udp_inactivity_timeout, cfg.dns_session_timeout),
                           cfg.udp_inactivity_timeout)
        syn_end = min(cfg.tcp_inactivity_timeout, cfg.tcp_attempt_delay)
        # SYN: the attempt timer ends it (S0). SYN-ACK: only inactivity does (the periodic
        # expire check cannot remove an ESTABLISHED responder). UDP: inactivity, or the DNS
        # analyzer's session timeout on DNS ports.
        tcp_end = np.where(synack, cfg.tcp_inactivity_timeout, syn_end)
        due = q.ts + np.where(udp, udp_end, tcp_end)
        # ReferenceFlowTable's early report, for lite flows that would otherwise stay silent for a
        # whole inactivity timeout (one-way UDP); not when the end is close anyway (DNS).
        early = cfg.early_report
        report = np.where((due - q.ts > 2 * early) & (early > 0), q.ts + early, np.inf)
        cols = {f: getattr(q, f) for f in D.Packets.__dataclass_fields__}
        cols.update({f: cols[f].astype(t) for f, t in _NARROW.items()})
        seg = Segment(self.next_id, D.Packets(**cols), keys, due, flip, report)
        self.index.update(zip(key_bytes, range(self.next_id, self.next_id + len(due))))
        self.segments.append(seg)
        self.next_id += len(due)
        self.count += len(due)

    def pop(self, key: bytes) -> tuple[D.Packets, int]:
        """Remove a lite flow (it got another packet): its stored packet, to replay."""
        gid = self.index.pop(key)
        for seg in self.segments:
            if seg.base <= gid < seg.base + len(seg.due):
                row = gid - seg.base
                seg.alive[row] = False
                self.count -= 1
                return seg.q, row
        raise KeyError(key)

    def expire(self, now: float) -> list[FlowRecord]:
        """Records of lite flows due at or before `now` (Zeek would have removed them)."""
        out: list[FlowRecord] = []
        for seg in self.segments:
            out += self._early_reports(seg, now)
            stop = int(np.searchsorted(seg.due[seg.order], now, side="right"))
            if stop > seg.pos:
                rows = seg.order[seg.pos:stop]
                out += self._finish(seg, rows[seg.alive[rows]])
                seg.pos = stop
        self.segments = [s for s in self.segments if s.head() is not None]
        return out

    def _early_reports(self, seg: Segment, now: float) -> list[FlowRecord]:
        stop = int(np.searchsorted(seg.report[seg.report_order], now, side="right"))
        if stop <= seg.report_pos:
            return []
        rows = seg.report_order[seg.report_pos:stop]
        seg.report_pos = stop
        rows = rows[seg.alive[rows]]
        return build_records(seg.q, seg.keys, seg.flip, rows, final=False) if len(rows) else []

    def earliest(self) -> float | None:
        heads = [(float(s.due[r]), s) for s in self.segments if (r := s.head()) is not None]
        return min(heads, key=lambda h: h[0])[0] if heads else None

    def evict_earliest(self) -> FlowRecord:
        due, seg = min(((float(s.due[r]), s) for s in self.segments
                        if (r := s.head()) is not None), key=lambda h: h[0])
        (rec,) = self._finish(seg, np.array([seg.head()]))
        rec.extra["evicted"] = True
        return rec

    def flush(self) -> list[FlowRecord]:
        out: list[FlowRecord] = []
        for seg in self.segments:
            out += self._finish(seg, np.flatnonzero(seg.alive))
        self.segments = []
        return out

    # --- records ------------------------------------------------------------------------------
    def _finish(self, seg: Segment, rows: np.ndarray) -> list[FlowRecord]:
        if not len(rows):
            return []
        seg.alive[rows] = False
        self.count -= len(rows)
        keys = seg.keys[rows].tobytes()
        index = self.index
        for k in range(0, len(keys), 40):
            del index[keys[k:k + 40]]
        return build_records(seg.q, seg.keys, seg.flip, rows)


def build_records(q: D.Packets, keys: np.ndarray, flip: np.ndarray,
                  rows: np.ndarray, final: bool = True) -> list[FlowRecord]:
    """FlowRecords of lite rows, columns computed with numpy (same values as Flow.record)."""
    f = flip[rows]
    ts, proto = q.ts[rows].tolist(), q.proto[rows].tolist()
    v6, tunnel = q.v6[rows].tolist(), q.tunnel[rows].tolist()
    src, dst = q.src[rows], q.dst[rows]
    o_ip = np.where(f[:, None], dst, src)
    r_ip = np.where(f[:, None], src, dst)
    o_port = np.where(f, q.dport[rows], q.sport[rows]).tolist()
    r_port = np.where(f, q.sport[rows], q.dport[rows]).tolist()
    iplen = q.iplen[rows].astype(np.int64)
    udp_pay = np.where(q.proto[rows] == 17, q.paylen[rows], 0).astype(np.int64)
    zero = np.zeros(len(rows), np.int64)
    o_pk, r_pk = np.where(f, 0, 1).tolist(), f.astype(np.int64).tolist()
    o_ipb, r_ipb = np.where(f, zero, iplen).tolist(), np.where(f, iplen, zero).tolist()
    o_b, r_b = np.where(f, zero, udp_pay).tolist(), np.where(f, udp_pay, zero).tolist()
    hexkeys = keys[rows].tobytes().hex()
    o_raw, r_raw = o_ip.tobytes(), r_ip.tobytes()
    out = []
    for j in range(len(rows)):
        pr, fl = proto[j], o_pk[j] == 0
        if pr == 6:      # bare SYN: S0 "S"; bare SYN-ACK (flipped): OTH "^h"
            state, hist, svc = ("OTH", "^h", None) if fl else ("S0", "S", None)
        else:
            state, hist = ("SHR", "^d") if fl else ("S0", "D")
            pay = o_b[j] + r_b[j]
            svc = SERVICES.get((17, r_port[j])) if pay > 0 else None
        t = ts[j]
        a, b = 16 * j, 16 * j + 16
        rec = FlowRecord(flow_uid(hexkeys[80 * j:80 * j + 80], t), t, t, pr,
                         ip_text(o_raw[a:b], v6[j]), o_port[j], ip_text(r_raw[a:b], v6[j]),
                         r_port[j], o_pk[j], r_pk[j], o_b[j], r_b[j], o_ipb[j], r_ipb[j],
                         state, hist, svc, final)
        if tunnel[j]:
            rec.extra["tunnelled"] = True
        out.append(rec)
    return out
