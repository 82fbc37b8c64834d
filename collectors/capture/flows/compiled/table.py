"""`CompiledFlowTable`: the flow table of flows/reference.py (same interface, same
records) on the numba kernel in kernel.py, with records handed out in columns.

    table = CompiledFlowTable(config)
    table.process(packets)            # decoded batch (decoding/packets.Packets)
    cols = table.drain_columns()      # RecordColumns: numpy rows, no Python object per flow
    recs = cols.records()             # FlowRecords when a consumer wants them

The flow state lives in one numpy structured array (`layout.FLOW`), grown by doubling; the
key index is an open-addressing hash of row numbers, rebuilt when it grows or fills with
tombstones. Records leave the kernel as `layout.RECORD` rows through a fixed-size buffer.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from watchkeeper.documents import FlowRecord
from watchkeeper.networks import InternalNetworks

from collectors.capture.decoding import packets as D
from collectors.capture.flows.compiled.layout import (CONN_STATES, EMPTY, FLOW, HISTORY, M_EVICTED,
                                                      M_HIGH, M_HIST_OVERFLOW, M_LIVE, M_NEED_EVICT,
                                                      M_NFREE, M_OUT, M_TIMER_OVERFLOW,
                                                      M_TOMBSTONES, RECORD, config_vector,
                                                      port_tables)
from collectors.capture.flows.flow import SERVICES, FlowConfig, flow_uid, ip_text, merged_hints
from collectors.capture.kernels import native as K

OUT_ROWS = 1 << 15


@dataclass
class RecordColumns:
    """Flow records as `layout.RECORD` rows, plus payload hints (service, SSH banners) for
    the rows that have them."""
    rows: np.ndarray
    app: dict[int, dict] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def final_count(self) -> int:
        return int(np.count_nonzero(self.rows["final"]))

    def records(self) -> list[FlowRecord]:
        return to_records(self.rows, self.app)

    def documents(self, observer: str, networks: InternalNetworks,
                  site: str | None = None) -> Iterator[dict]:
        """Built from the rows in bulk, without a FlowRecord per flow."""
        from collectors.capture.documents.flows import flow_documents   # it imports layout
        return flow_documents(self.rows, self.app, observer, networks, site)

    def lines(self, observer: str, networks: InternalNetworks,
              site: str | None = None) -> Iterator[bytes]:
        """The documents' JSON lines, written by a compiled kernel without a dict per row."""
        from collectors.capture.documents.flowjson import flow_lines   # it imports layout
        return flow_lines(self.rows, self.app, observer, networks, site)


class CompiledFlowTable:
    def __init__(self, config: FlowConfig | None = None, capacity: int = 1 << 12):
        self.config = config or FlowConfig()
        self._cfg = config_vector(self.config)
        self._ports = port_tables(self.config)
        self._evict_k = max(1, self.config.max_flows >> 6)
        self._state = np.zeros(capacity, FLOW)
        self._due = np.full(capacity, np.inf)      # row's next deadline (inf: free row)
        self._free = np.zeros(capacity, np.int64)
        self._htab = np.full(4 * capacity, EMPTY, np.int32)
        self._meta = np.zeros(M_NEED_EVICT + 1, np.int64)
        # records collect here until drained; room for an eviction round at any time
        self._out = np.zeros(max(OUT_ROWS, 2 * self._evict_k + 1024), RECORD)
        self._key = np.zeros(5, np.uint64)
        self._pending: list[np.ndarray] = []
        self.hints: dict[bytes, dict] = {}     # flow key -> appmeta hint (set by Capture)
        self._app: dict[bytes, dict] = {}      # hints of flows still open
        self.now = 0.0

    # --- counters -----------------------------------------------------------------------------
    @property
    def evicted(self) -> int:
        return int(self._meta[M_EVICTED])

    def __len__(self) -> int:
        return int(self._meta[M_LIVE])

    @property
    def history_overflows(self) -> int:
        return int(self._meta[M_HIST_OVERFLOW])

    @property
    def timer_overflows(self) -> int:
        return int(self._meta[M_TIMER_OVERFLOW])

    def bytes_per_flow(self) -> float:
        """State bytes per row of capacity: flow row, its share of the key index, its deadline
        and free-list slot."""
        return FLOW.itemsize + self._htab.itemsize * len(self._htab) / len(self._state) + 16

    # --- batches ------------------------------------------------------------------------------
    def process(self, p: D.Packets) -> None:
        live = (p.status == D.OK) | (p.status == D.BADSUM)
        if not live.any():
            return
        self._merge_hints()
        args = packet_args(p)
        i = 0
        while i < len(p):
            i = K.process(self._state, self._due, self._htab, self._free, self._meta, self._out,
                          self._cfg, self._ports, self.config.max_flows, self._evict_k,
                          self._key, i, *args)
            self._take_out_if_full()
            if self._meta[M_NEED_EVICT]:
                K.evict(self._state, self._due, self._htab, self._free, self._out, self._meta,
                        self._evict_k)
            self._make_room()
        self.now = max(self.now, float(p.ts[live].max()))
        self._sweep(self.now)

    def advance(self, now: float) -> None:
        """Time passed with no packet (live capture's clock): expire what is due by `now`."""
        if now > self.now:
            self.now = now
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        while not K.sweep(self._state, self._due, self._htab, self._free, self._meta, self._out,
                          self._cfg, now):
            self._take_out_if_full()

    def drain_columns(self) -> RecordColumns:
        self._take_out()
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            return RecordColumns(pending[0], self._app_of(pending[0]))
        rows = np.concatenate(pending) if pending else np.zeros(0, RECORD)
        return RecordColumns(rows, self._app_of(rows))

    def drain(self) -> list[FlowRecord]:
        return self.drain_columns().records()

    def flush_columns(self) -> RecordColumns:
        """End of input: every remaining flow is reported (Zeek does the same at exit)."""
        self._merge_hints()
        self._take_out()
        before = len(self._pending)
        while not K.flush(self._state, self._due, self._htab, self._free, self._meta, self._out):
            self._take_out()
        self._take_out()
        tail = self._pending[before:]
        if tail:
            rows = np.concatenate(tail)
            self._pending[before:] = [rows[np.argsort(rows["start"], kind="stable")]]
        return self.drain_columns()

    def flush(self) -> list[FlowRecord]:
        return self.flush_columns().records()

    def kernel_args(self) -> dict[str, tuple]:
        """Example arguments of each flow-table kernel, of the types this table passes them
        (the ahead-of-time build compiles for exactly these: kernels/build.py)."""
        state = (self._state, self._due, self._htab, self._free, self._meta, self._out)
        return {
            "process": state + (self._cfg, self._ports, 1, 1, self._key, 0)
            + packet_args(D.empty_packets(1)),
            "sweep": state + (self._cfg, 0.0),
            "flush": state,
            "evict": (self._state, self._due, self._htab, self._free, self._out, self._meta, 1),
            "rebuild": (self._state, self._htab, self._meta),
        }

    # --- internals ----------------------------------------------------------------------------
    def _take_out_if_full(self) -> None:
        # Kernels stop when `out` is nearly full (over half: see the size chosen in __init__).
        if self._meta[M_OUT] > len(self._out) // 2:
            self._take_out()

    def _take_out(self) -> None:
        n = int(self._meta[M_OUT])
        if n:
            self._pending.append(self._out[:n].copy())
            self._meta[M_OUT] = 0

    def _make_room(self) -> None:
        """A free row for the next flow (capacity doubles when full) and a key index at most
        half full, tombstones counted."""
        high, cap = int(self._meta[M_HIGH]), len(self._state)
        if high >= cap and not self._meta[M_NFREE]:
            cap *= 2
            state = np.zeros(cap, FLOW)
            state[:high] = self._state[:high]
            free = np.zeros(cap, np.int64)
            free[:len(self._free)] = self._free
            due = np.full(cap, np.inf)
            due[:high] = self._due[:high]
            self._state, self._free, self._due = state, free, due
        size = len(self._htab)
        want = size
        while want < 2 * cap:
            want *= 2
        used = int(self._meta[M_LIVE]) + int(self._meta[M_TOMBSTONES]) + 1
        if want != size or 2 * used > size:
            self._htab = np.full(want, EMPTY, np.int32)
            K.rebuild(self._state, self._htab, self._meta)

    def _merge_hints(self) -> None:
        for key, hint in self.hints.items():
            self._app[key] = merged_hints(self._app.get(key), hint)
        self.hints.clear()

    def _app_of(self, rows: np.ndarray) -> dict[int, dict]:
        if not self._app or not len(rows):
            return {}
        found: dict[int, dict] = {}
        raw = rows["key"].tobytes()
        final = rows["final"]
        for j in range(len(rows)):
            key = raw[40 * j:40 * j + 40]
            hint = self._app.get(key)
            if hint is not None:
                found[j] = hint
                if final[j]:
                    del self._app[key]
        return found


def packet_args(p: D.Packets) -> tuple:
    """The packet columns as the `process` kernel's compiled signature takes them: contiguous,
    of these dtypes (no copy when they already are, always the case for decoder output)."""
    return tuple(np.ascontiguousarray(column, dtype) for column, dtype in (
        (p.ts, np.float64), (p.status, np.uint8), (p.proto, np.int64),
        (p.v6.view(np.uint8), np.uint8), (p.tunnel.view(np.uint8), np.uint8),
        (p.src, np.uint8), (p.dst, np.uint8), (p.sport, np.int64), (p.dport, np.int64),
        (p.flags, np.int64), (p.seq, np.int64), (p.ack, np.int64), (p.paylen, np.int64),
        (p.iplen, np.int64)))


def to_records(rows: np.ndarray, app: dict[int, dict] | None = None) -> list[FlowRecord]:
    """FlowRecords of RECORD rows (the same values Flow.record gives)."""
    app = app or {}
    n = len(rows)
    if not n:
        return []
    keyhex = rows["key"].tobytes().hex()
    ips = rows["ip"].tobytes()
    hist = rows["history"].tobytes()
    cols = {name: rows[name].tolist() for name in ("start", "last", "proto", "v6", "tunnel",
                                                     "state", "final", "evicted", "hlen")}
    port, pkts, ipb, nbytes = (rows[c].tolist() for c in ("port", "pkts", "ipb", "bytes"))
    start, last, proto, v6 = cols["start"], cols["last"], cols["proto"], cols["v6"]
    out = []
    for j in range(n):
        base = 32 * j
        pr, (op, rp), (ob, rb) = proto[j], port[j], nbytes[j]
        hint = app.get(j)
        service = None
        if ob + rb > 0 and pr in (6, 17):
            service = (hint or {}).get("service") or SERVICES.get((pr, rp))
        rec = FlowRecord(
            flow_uid(keyhex[80 * j:80 * j + 80], start[j]), start[j], last[j], pr,
            ip_text(ips[base:base + 16], v6[j]), op, ip_text(ips[base + 16:base + 32], v6[j]),
            rp, pkts[j][0], pkts[j][1], ob, rb, ipb[j][0], ipb[j][1],
            CONN_STATES[cols["state"][j]], hist[HISTORY * j:HISTORY * j + cols["hlen"][j]].decode(),
            service, bool(cols["final"][j]))
        if cols["tunnel"][j]:
            rec.extra["tunnelled"] = True
        if cols["evicted"][j]:
            rec.extra["evicted"] = True
        if hint:
            for (ip, p), banner in hint.get("banners", {}).items():
                side = "client" if (ip, p) == (ips[base:base + 16], op) else "server"
                rec.extra[f"ssh_{side}"] = banner
        out.append(rec)
    return out
