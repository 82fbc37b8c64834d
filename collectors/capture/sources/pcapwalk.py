"""The compiled walk over classic pcap record headers (numba; see kernels/jit.py)."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import ALLOCATING


@nb.njit(**ALLOCATING)
def _u32(u8, p, big_endian):
    if big_endian:
        return (np.int64(u8[p]) << 24) | (np.int64(u8[p + 1]) << 16) | \
            (np.int64(u8[p + 2]) << 8) | np.int64(u8[p + 3])
    return np.int64(u8[p]) | (np.int64(u8[p + 1]) << 8) | (np.int64(u8[p + 2]) << 16) | \
        (np.int64(u8[p + 3]) << 24)


@nb.njit(**ALLOCATING)
def walk_pcap(u8, big_endian, max_record, tick):
    """Record headers of classic pcap: (header offsets, caplen, wirelen, time, end of the
    last complete record, offset of a corrupt header or -1)."""
    n = u8.shape[0]
    cap = 0                         # count first: arrays of exactly the records present
    off = 0
    while off + 16 <= n:
        caplen = _u32(u8, off + 8, big_endian)
        if caplen > max_record or off + 16 + caplen > n:
            break
        cap += 1
        off += 16 + caplen
    offs = np.empty(cap, np.int64)
    caplens = np.empty(cap, np.int64)
    wirelens = np.empty(cap, np.int64)
    ts = np.empty(cap, np.float64)
    k = 0
    off = 0
    bad = -1
    while off + 16 <= n:
        caplen = _u32(u8, off + 8, big_endian)
        if caplen > max_record:
            bad = off
            break
        if off + 16 + caplen > n:
            break
        offs[k] = off
        caplens[k] = caplen
        wirelens[k] = _u32(u8, off + 12, big_endian)
        ts[k] = np.float64(_u32(u8, off, big_endian)) + \
            np.float64(_u32(u8, off + 4, big_endian)) * tick
        k += 1
        off += 16 + caplen
    return offs, caplens, wirelens, ts, off, bad


@nb.njit(**ALLOCATING)
def walk_tpacket(block, first, count):
    """Frames of one TPACKET_V3 ring block (sources/live.py): (frame offsets in `block`,
    captured length, wire length, time). Stops early at the last frame (next offset 0) or at
    a header that would run past the block, whatever `count` claims (the kernel's count is
    right; a guard, not a case)."""
    offs = np.empty(count, np.int64)
    caplens = np.empty(count, np.int64)
    wirelens = np.empty(count, np.int64)
    ts = np.empty(count, np.float64)
    n = block.shape[0]
    p = first
    k = 0
    while k < count and p + 28 <= n:
        mac = np.int64(block[p + 24]) | (np.int64(block[p + 25]) << 8)
        snap = _u32(block, p + 12, False)
        if p + mac + snap > n:
            break
        offs[k] = p + mac
        caplens[k] = snap
        wirelens[k] = _u32(block, p + 16, False)
        ts[k] = np.float64(_u32(block, p + 4, False)) + \
            np.float64(_u32(block, p + 8, False)) / 1e9
        k += 1
        step = _u32(block, p, False)
        if step == 0:                   # the block's last frame
            break
        p += step
    return offs[:k].copy(), caplens[:k].copy(), wirelens[:k].copy(), ts[:k].copy()
