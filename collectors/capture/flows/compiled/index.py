"""The key index of the compiled flow table: open addressing (linear probing) over row
numbers, keyed by the 40-byte canonical flow key held in the row itself."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.flows.compiled.layout import EMPTY, M_HIGH, M_TOMBSTONES, TOMB
from collectors.capture.kernels.jit import PACKET_LOOP

_MIX = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(**PACKET_LOOP)
def hash_key(key):
    """Hash of a 5-word key (the flow index's and the fragment store's)."""
    h = np.uint64(0)
    for w in range(5):
        h = (h ^ key[w]) * _MIX
        h ^= h >> np.uint64(29)
    return h


@nb.njit(**PACKET_LOOP)
def canonical_key(proto, src, dst, sport, dport, key):
    """The 40-byte key of reference.canonical_keys (as five little-endian words) into `key`:
    equal for both directions of a flow."""
    first = -1
    for k in range(16):
        if src[k] != dst[k]:
            first = k
            break
    src_low = sport <= dport if first < 0 else src[first] < dst[first]
    lo, hi = (src, dst) if src_low else (dst, src)
    lo_port, hi_port = (sport, dport) if src_low else (dport, sport)
    # byte b of the key sits in word b // 8 at bit 8 * (b % 8) (little-endian words)
    w0 = np.uint64(proto & 0xFF)
    for k in range(7):
        w0 |= np.uint64(lo[k]) << np.uint64(8 * (k + 1))
    key[0] = w0
    key[1] = _bytes_word(lo, 7)                     # key bytes 8..15: lo[7..14]
    w2 = np.uint64(lo[15]) | (np.uint64(hi[0]) << np.uint64(8))
    for k in range(1, 7):
        w2 |= np.uint64(hi[k]) << np.uint64(8 * (k + 1))
    key[2] = w2
    key[3] = _bytes_word(hi, 7)                     # key bytes 24..31: hi[7..14]
    # bytes 32..39: hi[15], lo_port (big-endian), hi_port (big-endian), 0, 0, 0
    key[4] = (np.uint64(hi[15]) | (np.uint64((lo_port >> 8) & 0xFF) << np.uint64(8))
              | (np.uint64(lo_port & 0xFF) << np.uint64(16))
              | (np.uint64((hi_port >> 8) & 0xFF) << np.uint64(24))
              | (np.uint64(hi_port & 0xFF) << np.uint64(32)))


@nb.njit(**PACKET_LOOP)
def _bytes_word(b, at):
    w = np.uint64(0)
    for k in range(8):
        w |= np.uint64(b[at + k]) << np.uint64(8 * k)
    return w


@nb.njit(**PACKET_LOOP)
def lookup(S, htab, key):
    mask = htab.shape[0] - 1
    j = np.int64(hash_key(key) & np.uint64(mask))
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


@nb.njit(**PACKET_LOOP)
def insert(htab, key, row):
    mask = htab.shape[0] - 1
    j = np.int64(hash_key(key) & np.uint64(mask))
    while htab[j] >= 0:
        j = (j + 1) & mask
    reused_tomb = htab[j] == TOMB
    htab[j] = row
    return reused_tomb


@nb.njit(**PACKET_LOOP)
def delete(S, htab, row, meta):
    mask = htab.shape[0] - 1
    j = np.int64(hash_key(S[row].key) & np.uint64(mask))
    while htab[j] != row:
        j = (j + 1) & mask
    htab[j] = TOMB
    meta[M_TOMBSTONES] += 1


@nb.njit(**PACKET_LOOP)
def rebuild(S, htab, meta):
    """Re-insert every live row into a cleared `htab` (growth, or too many tombstones)."""
    htab[:] = EMPTY
    for r in range(meta[M_HIGH]):
        if S[r].alive:
            insert(htab, S[r].key, r)
    meta[M_TOMBSTONES] = 0
