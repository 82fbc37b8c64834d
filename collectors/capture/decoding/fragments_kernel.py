"""The compiled side of fragments.py: find, add, complete and drop datagrams in a
`FragmentStore`'s arrays (numba; no allocation, see kernels/jit.py)."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.decoding.fragments import (F_HEAD, F_LIVE, F_NFREE, F_SEEN, F_SEQ, F_TAIL,
                                                   FREE)
from collectors.capture.flows.compiled.index import hash_key
from collectors.capture.kernels.jit import PACKET_LOOP


@nb.njit(**PACKET_LOOP)
def _find(index, keys, key):
    """(slot or -1, index position where it is or would be inserted)."""
    mask = index.shape[0] - 1
    j = np.int64(hash_key(key) & np.uint64(mask))
    while True:
        s = index[j]
        if s == FREE:
            return -1, j
        k = keys[s]
        if (k[0] == key[0] and k[1] == key[1] and k[2] == key[2] and k[3] == key[3]
                and k[4] == key[4]):
            return s, j
        j = (j + 1) & mask


@nb.njit(**PACKET_LOOP)
def _unindex(index, keys, slot):
    # Backward-shift deletion keeps probe chains intact without tombstones.
    mask = index.shape[0] - 1
    s, j = _find(index, keys, keys[slot])
    index[j] = FREE
    k = (j + 1) & mask
    while index[k] != FREE:
        moving = index[k]
        home = np.int64(hash_key(keys[moving]) & np.uint64(mask))
        # move `moving` into the hole at j unless its home lies cyclically in (j, k]
        if (k > j and (home <= j or home > k)) or (k < j and (home <= j and home > k)):
            index[j] = moving
            index[k] = FREE
            j = k
        k = (k + 1) & mask


@nb.njit(**PACKET_LOOP)
def _drop(index, keys, live, free, meta, slot):
    _unindex(index, keys, slot)
    live[slot] = 0
    free[meta[F_NFREE]] = slot
    meta[F_NFREE] += 1
    meta[F_LIVE] -= 1


@nb.njit(**PACKET_LOOP)
def _push_fifo(fifo, live, seq, meta, slot):
    if meta[F_TAIL] == fifo.shape[0]:           # full of stale entries: compact in order
        n = 0
        for i in range(meta[F_HEAD], meta[F_TAIL]):
            s = fifo[i, 0]
            if live[s] and seq[s] == fifo[i, 1]:
                fifo[n, 0], fifo[n, 1] = s, fifo[i, 1]
                n += 1
        meta[F_HEAD], meta[F_TAIL] = 0, n
    fifo[meta[F_TAIL], 0], fifo[meta[F_TAIL], 1] = slot, seq[slot]
    meta[F_TAIL] += 1


@nb.njit(**PACKET_LOOP)
def _evict_oldest(index, keys, live, seq, free, fifo, meta):
    while meta[F_HEAD] < meta[F_TAIL]:
        s, q = fifo[meta[F_HEAD], 0], fifo[meta[F_HEAD], 1]
        meta[F_HEAD] += 1
        if live[s] and seq[s] == q:
            _drop(index, keys, live, free, meta, s)
            return


@nb.njit(**PACKET_LOOP)
def account(index, keys, first_seen, seq, live, received, total, hlen, header, npieces,
            pieces, free, fifo, meta, timeout, key, ts, offset, length, more, body, body_len,
            out_header):
    """Count one fragment (`body[:body_len]` is its payload). Returns (-1, 0) while the
    datagram is incomplete; once complete, (its length, bytes of kept header copied into
    `out_header`), and the entry is freed."""
    meta[F_SEEN] += 1
    s, j = _find(index, keys, key)
    if s < 0 or ts - first_seen[s] > timeout:
        if s < 0:
            if meta[F_NFREE] == 0:
                # The reference adds the new entry, then drops the oldest: same end state.
                _evict_oldest(index, keys, live, seq, free, fifo, meta)
                s, j = _find(index, keys, key)
            meta[F_NFREE] -= 1
            s = free[meta[F_NFREE]]
            index[j] = s
            for w in range(5):
                keys[s, w] = key[w]
            live[s] = 1
            meta[F_LIVE] += 1
            seq[s] = meta[F_SEQ]
            meta[F_SEQ] += 1
            _push_fifo(fifo, live, seq, meta, s)
        first_seen[s] = ts
        received[s] = 0
        total[s] = -1
        hlen[s] = -1
        npieces[s] = 0
    unit = offset >> 3
    for k in range(npieces[s]):
        if pieces[s, k] == unit:
            return -1, 0
    if npieces[s] >= pieces.shape[1]:
        return -1, 0
    pieces[s, npieces[s]] = unit
    npieces[s] += 1
    received[s] += length
    if offset == 0:
        n = min(body_len, header.shape[1])
        for k in range(n):
            header[s, k] = body[k]
        hlen[s] = n
    if not more:
        total[s] = offset + length
    if total[s] < 0 or hlen[s] < 0 or received[s] < total[s]:
        return -1, 0
    n = hlen[s]
    for k in range(n):
        out_header[k] = header[s, k]
    done = total[s]
    _drop(index, keys, live, free, meta, s)
    return done, n
