"""`CompiledDecoder`: record batches -> `packets.Packets` through the compiled decoder
(kernel.py, via kernels/native.py), with the Python slow path (reference.py) for the records
it leaves, merged back into record order."""
from __future__ import annotations

import numpy as np

from collectors.capture.decoding import packets as D
from collectors.capture.decoding.fragments import HEADER, FragmentStore
from collectors.capture.decoding.reference import SlowDecoder
from collectors.capture.kernels import native
from collectors.capture.sources.pcap import RecordBatch


def packet_columns(p: D.Packets) -> tuple:
    """The columns the compiled decoder fills, in its argument order."""
    return (p.ts, p.status, p.proto, p.v6, p.src, p.dst, p.sport, p.dport, p.flags, p.seq,
            p.ack, p.paylen, p.iplen, p.tunnel, p.payoff, p.paycap)


class CompiledDecoder:
    """Record batches -> `Packets` (record order), fragments reassembled across batches."""

    def __init__(self, verify_checksums: bool = False, max_fragments: int = 10000,
                 fragment_timeout: float = 60.0):
        self.verify_checksums = verify_checksums
        self.slow = SlowDecoder(verify_checksums, max_fragments, fragment_timeout)
        self.store = FragmentStore(max_fragments, fragment_timeout)
        self._scratch = (np.empty(HEADER, np.uint8), np.empty(5, np.uint64))

    @property
    def fragments_seen(self) -> int:
        return self.slow.fragments_seen + self.store.fragments_seen

    def decode(self, batch: RecordBatch) -> tuple[D.Packets, int]:
        """(decoded rows, how many records the Python slow path decoded)."""
        n = len(batch)
        if self.verify_checksums:       # the slow path checks sums; Zeek's -C off case
            rows, _ = self.slow.decode(batch, np.arange(n))
            return rows, n
        p = D.empty_packets(n)
        slow = np.zeros(n, np.uint8)
        # contiguous arrays of the compiled signature's dtypes (no copy when they already are)
        n_slow = native.decode_records(
            _c(batch.data, np.uint8), _c(batch.offset, np.int64),
            _c(batch.caplen, np.int64), _c(batch.linktype, np.int32), _c(batch.ts, np.float64),
            self.store.arrays(), packet_columns(p), slow, D.ICMP4_PAIRS, D.ICMP6_PAIRS,
            *self._scratch)
        if not n_slow:
            return p, 0
        index = np.flatnonzero(slow)
        rows, owners = self.slow.decode(batch, index)
        if len(owners) == len(index):           # one row each: drop them in place
            for name, column in zip(D.Packets.__dataclass_fields__, packet_columns(rows)):
                getattr(p, name)[index] = column
            return p, int(n_slow)
        keep = np.flatnonzero(slow == 0)
        return D.merge(D.take(p, keep), keep, rows, owners), int(n_slow)


def _c(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype)
