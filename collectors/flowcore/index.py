"""The key index of the compiled flow table: open addressing (linear probing) over row
numbers, keyed by the 40-byte canonical flow key held in the row itself."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.flowcore.layout import M_HIGH, M_TOMBSTONES

EMPTY, TOMB = -1, -2
_JIT = dict(cache=True, nogil=True)
_MIX = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(**_JIT)
def _hash(key):
    h = np.uint64(0)
    for w in range(5):
        h = (h ^ key[w]) * _MIX
        h ^= h >> np.uint64(29)
    return h


@nb.njit(**_JIT)
def lookup(S, htab, key):
    mask = htab.shape[0] - 1
    j = np.int64(_hash(key) & np.uint64(mask))
    while True:
        r = htab[j]
        if r == EMPTY:
            return -1
        if r >= 0:
            k = S[r].key
            if (k[0] == key[0] and k[1] == key[1] and k[2] == key[2] and k[3] == key[3]
                    and k[4] == key[4]):
                return r
        j = (j + 1) & mask


@nb.njit(**_JIT)
def insert(htab, key, row):
    mask = htab.shape[0] - 1
    j = np.int64(_hash(key) & np.uint64(mask))
    while htab[j] >= 0:
        j = (j + 1) & mask
    reused_tomb = htab[j] == TOMB
    htab[j] = row
    return reused_tomb


@nb.njit(**_JIT)
def delete(S, htab, row, meta):
    mask = htab.shape[0] - 1
    j = np.int64(_hash(S[row].key) & np.uint64(mask))
    while htab[j] != row:
        j = (j + 1) & mask
    htab[j] = TOMB
    meta[M_TOMBSTONES] += 1


@nb.njit(**_JIT)
def rebuild(S, htab, meta):
    """Re-insert every live row into a cleared `htab` (growth, or too many tombstones)."""
    htab[:] = EMPTY
    for r in range(meta[M_HIGH]):
        if S[r].alive:
            insert(htab, S[r].key, r)
    meta[M_TOMBSTONES] = 0
