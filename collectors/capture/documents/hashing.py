"""BLAKE2b and SHA-1 for the compiled flow-document writer (documents/kernel.py): the three
hashes of a flow document (uid, event id, community id) without a Python call each.

Both follow their specifications (RFC 7693 for BLAKE2b without a key, FIPS 180-4 for SHA-1)
and are tested against `hashlib` (tests/unit/collectors/test_flowjson.py). They work on
caller-owned scratch arrays: nothing here allocates.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import PACKET_LOOP

B2_IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B,
                  0xA54FF53A5F1D36F1, 0x510E527FADE682D1, 0x9B05688C2B3E6C1F,
                  0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], np.uint64)
B2_SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]], np.int64)
SHA1_H = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0], np.uint64)
M32 = np.uint64(0xFFFFFFFF)
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@nb.njit(**PACKET_LOOP)
def _rotr64(x, n):
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


@nb.njit(**PACKET_LOOP)
def _g(a, b, c, d, x, y):
    a = a + b + x
    d = _rotr64(d ^ a, 32)
    c = c + d
    b = _rotr64(b ^ c, 24)
    a = a + b + y
    d = _rotr64(d ^ a, 16)
    c = c + d
    b = _rotr64(b ^ c, 63)
    return a, b, c, d


@nb.njit(**PACKET_LOOP)
def _b2_compress(h, m, buf, at, count, last):
    """One 128-byte block of `buf` from `at` into state `h` (m: 16-word scratch). The
    working vector lives in locals, so it stays in registers (3x faster than an array)."""
    for i in range(16):
        w = np.uint64(0)
        for k in range(8):
            w |= np.uint64(buf[at + 8 * i + k]) << np.uint64(8 * k)
        m[i] = w
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = B2_IV[0], B2_IV[1], B2_IV[2], B2_IV[3]
    v12 = B2_IV[4] ^ np.uint64(count)
    v13 = B2_IV[5]
    v14 = B2_IV[6] ^ M64 if last else B2_IV[6]
    v15 = B2_IV[7]
    for r in range(12):
        s = B2_SIGMA[r % 10]
        v0, v4, v8, v12 = _g(v0, v4, v8, v12, m[s[0]], m[s[1]])
        v1, v5, v9, v13 = _g(v1, v5, v9, v13, m[s[2]], m[s[3]])
        v2, v6, v10, v14 = _g(v2, v6, v10, v14, m[s[4]], m[s[5]])
        v3, v7, v11, v15 = _g(v3, v7, v11, v15, m[s[6]], m[s[7]])
        v0, v5, v10, v15 = _g(v0, v5, v10, v15, m[s[8]], m[s[9]])
        v1, v6, v11, v12 = _g(v1, v6, v11, v12, m[s[10]], m[s[11]])
        v2, v7, v8, v13 = _g(v2, v7, v8, v13, m[s[12]], m[s[13]])
        v3, v4, v9, v14 = _g(v3, v4, v9, v14, m[s[14]], m[s[15]])
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@nb.njit(**PACKET_LOOP)
def blake2b_16(buf, length, words, digest):
    """BLAKE2b with a 16-byte digest of buf[:length] into digest[:16]. `buf` must have room
    for the zero padding up to the next multiple of 128; `words` is 24 uint64 of scratch."""
    h = words[0:8]
    for i in range(8):
        h[i] = B2_IV[i]
    h[0] ^= np.uint64(0x01010010)               # digest length 16, no key, fan-out 1, depth 1
    blocks = max(1, (length + 127) // 128)
    for i in range(length, blocks * 128):
        buf[i] = 0
    for b in range(blocks):
        last = b == blocks - 1
        count = length if last else (b + 1) * 128
        _b2_compress(h, words[8:24], buf, b * 128, count, last)
    for i in range(16):
        digest[i] = np.uint8((h[i // 8] >> np.uint64(8 * (i % 8))) & np.uint64(0xFF))


@nb.njit(**PACKET_LOOP)
def _rotl32(x, n):
    return ((x << np.uint64(n)) | (x >> np.uint64(32 - n))) & M32


@nb.njit(**PACKET_LOOP)
def sha1(buf, length, words, digest):
    """SHA-1 of buf[:length] into digest[:20]. `buf` must have room for the padding (up to
    the next multiple of 64 past length + 9); `words` is 85 uint64 of scratch."""
    blocks = (length + 9 + 63) // 64
    buf[length] = 0x80
    for i in range(length + 1, blocks * 64 - 8):
        buf[i] = 0
    bits = np.uint64(length) * np.uint64(8)
    for k in range(8):
        buf[blocks * 64 - 1 - k] = np.uint8((bits >> np.uint64(8 * k)) & np.uint64(0xFF))
    h = words[0:5]
    w = words[5:85]
    for i in range(5):
        h[i] = SHA1_H[i]
    for b in range(blocks):
        at = b * 64
        for i in range(16):
            w[i] = (np.uint64(buf[at + 4 * i]) << np.uint64(24)) \
                | (np.uint64(buf[at + 4 * i + 1]) << np.uint64(16)) \
                | (np.uint64(buf[at + 4 * i + 2]) << np.uint64(8)) | np.uint64(buf[at + 4 * i + 3])
        for i in range(16, 80):
            w[i] = _rotl32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
        a, b_, c, d, e = h[0], h[1], h[2], h[3], h[4]
        for i in range(80):
            if i < 20:
                f = (b_ & c) | ((~b_ & M32) & d)
                k = np.uint64(0x5A827999)
            elif i < 40:
                f = b_ ^ c ^ d
                k = np.uint64(0x6ED9EBA1)
            elif i < 60:
                f = (b_ & c) | (b_ & d) | (c & d)
                k = np.uint64(0x8F1BBCDC)
            else:
                f = b_ ^ c ^ d
                k = np.uint64(0xCA62C1D6)
            t = (_rotl32(a, 5) + f + e + k + w[i]) & M32
            e = d
            d = c
            c = _rotl32(b_, 30)
            b_ = a
            a = t
        h[0] = (h[0] + a) & M32
        h[1] = (h[1] + b_) & M32
        h[2] = (h[2] + c) & M32
        h[3] = (h[3] + d) & M32
        h[4] = (h[4] + e) & M32
    for i in range(20):
        digest[i] = np.uint8((h[i // 4] >> np.uint64(8 * (3 - i % 4))) & np.uint64(0xFF))
