"""IP fragment reassembly accounting for the compiled decoder: the `_fragment` rule of
reference.SlowDecoder (the reference) on fixed numpy arrays.

A datagram is keyed by (IP version, source, destination, identification, protocol). Its
fragments are counted until the last one has arrived and the bytes received cover the whole
datagram; the first 64 bytes of the offset-0 fragment (the transport header) are kept, the
rest of the payload is not. Entries older than the timeout start over; when the store is full
the oldest entry (by creation) is dropped, like the reference's OrderedDict.

State is one `FragmentStore` of arrays; the compiled functions (fragments_kernel.py) take it
field by field."""
from __future__ import annotations

import numpy as np

HEADER = 64          # bytes of the offset-0 fragment kept (transport header + a little)
MAX_PIECES = 128     # distinct fragments per datagram; more are ignored (an attack, not IP)
FREE = -1

# meta indices
F_LIVE, F_SEQ, F_HEAD, F_TAIL, F_SEEN, F_NFREE = range(6)


class FragmentStore:
    """Arrays of at most `capacity` datagrams being reassembled."""

    def __init__(self, capacity: int = 10000, timeout: float = 60.0):
        if capacity < 1:
            raise ValueError("fragment store capacity must be at least 1")
        self.capacity, self.timeout = capacity, float(timeout)
        size = 1
        while size < 2 * capacity:
            size *= 2
        self.index = np.full(size, FREE, np.int32)         # open addressing -> slot
        self.key = np.zeros((capacity, 5), np.uint64)
        self.first_seen = np.zeros(capacity)
        self.seq = np.zeros(capacity, np.int64)            # creation order, for eviction
        self.live = np.zeros(capacity, np.uint8)
        self.received = np.zeros(capacity, np.int64)
        self.total = np.zeros(capacity, np.int64)          # -1: last fragment not seen yet
        self.hlen = np.zeros(capacity, np.int32)           # -1: offset-0 fragment not seen
        self.header = np.zeros((capacity, HEADER), np.uint8)
        self.npieces = np.zeros(capacity, np.int32)
        self.pieces = np.zeros((capacity, MAX_PIECES), np.uint16)   # offsets / 8
        self.free = np.arange(capacity - 1, -1, -1, dtype=np.int32)
        self.fifo = np.zeros((2 * capacity, 2), np.int64)  # (slot, seq) in creation order
        self.meta = np.zeros(6, np.int64)
        self.meta[F_NFREE] = capacity

    @property
    def fragments_seen(self) -> int:
        return int(self.meta[F_SEEN])

    def __len__(self) -> int:
        return int(self.meta[F_LIVE])

    def arrays(self) -> tuple:
        return (self.index, self.key, self.first_seen, self.seq, self.live, self.received,
                self.total, self.hlen, self.header, self.npieces, self.pieces, self.free,
                self.fifo, self.meta, self.timeout)
