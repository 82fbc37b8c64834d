"""BLAKE2b and SHA-1 for the compiled flow-document writer (documents/kernel.py): the three
hashes of a flow document (uid, event id, community id) without a Python call each.

Both follow their specifications (RFC 7693 for BLAKE2b without a key, FIPS 180-4 for SHA-1)
and are tested against `hashlib` (tests/unit/collectors/test_flowjson.py). They work on
caller-owned scratch arrays: nothing here allocates.
"""
from __future__ import annotations

import sys

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import PACKET_LOOP

B2_IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B,
                  0xA54FF53A5F1D36F1, 0x510E527FADE682D1, 0x9B05688C2B3E6C1F,
                  0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], np.uint64)
# The rounds of _b2_compress carry RFC 7693's SIGMA permutations as their argument orders.
if sys.byteorder != "little":       # _b2_compress reads the message as native uint64 words
    raise ImportError("collectors.capture.documents.hashing assumes a little-endian CPU")
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
def _round(v, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15):
    """One BLAKE2b round on the working vector `v` (a 16-tuple), its message words given in
    this round's SIGMA order."""
    v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15 = v
    v0, v4, v8, v12 = _g(v0, v4, v8, v12, x0, x1)
    v1, v5, v9, v13 = _g(v1, v5, v9, v13, x2, x3)
    v2, v6, v10, v14 = _g(v2, v6, v10, v14, x4, x5)
    v3, v7, v11, v15 = _g(v3, v7, v11, v15, x6, x7)
    v0, v5, v10, v15 = _g(v0, v5, v10, v15, x8, x9)
    v1, v6, v11, v12 = _g(v1, v6, v11, v12, x10, x11)
    v2, v7, v8, v13 = _g(v2, v7, v8, v13, x12, x13)
    v3, v4, v9, v14 = _g(v3, v4, v9, v14, x14, x15)
    return v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15


@nb.njit(**PACKET_LOOP)
def _b2_compress(h, buf, at, count, last):
    """One 128-byte block of `buf` from `at` into state `h`. The rounds are written out with
    the message words in locals: with SIGMA read from a table each round they could not stay
    in registers (303 -> 158 ns per block, measured)."""
    m = buf[at:at + 128].view(np.uint64)          # little-endian words (x86, arm64)
    m0, m1, m2, m3, m4, m5, m6, m7 = m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
    m8, m9, m10, m11, m12, m13, m14, m15 = m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
    v = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], B2_IV[0], B2_IV[1], B2_IV[2],
         B2_IV[3], B2_IV[4] ^ np.uint64(count), B2_IV[5], B2_IV[6] ^ M64 if last else B2_IV[6],
         B2_IV[7])
    v = _round(v, m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15)
    v = _round(v, m14, m10, m4, m8, m9, m15, m13, m6, m1, m12, m0, m2, m11, m7, m5, m3)
    v = _round(v, m11, m8, m12, m0, m5, m2, m15, m13, m10, m14, m3, m6, m7, m1, m9, m4)
    v = _round(v, m7, m9, m3, m1, m13, m12, m11, m14, m2, m6, m5, m10, m4, m0, m15, m8)
    v = _round(v, m9, m0, m5, m7, m2, m4, m10, m15, m14, m1, m11, m12, m6, m8, m3, m13)
    v = _round(v, m2, m12, m6, m10, m0, m11, m8, m3, m4, m13, m7, m5, m15, m14, m1, m9)
    v = _round(v, m12, m5, m1, m15, m14, m13, m4, m10, m0, m7, m6, m3, m9, m2, m8, m11)
    v = _round(v, m13, m11, m7, m14, m12, m1, m3, m9, m5, m0, m15, m4, m8, m6, m2, m10)
    v = _round(v, m6, m15, m14, m9, m11, m3, m0, m8, m12, m2, m13, m7, m1, m4, m10, m5)
    v = _round(v, m10, m2, m8, m4, m7, m6, m1, m5, m15, m11, m9, m14, m3, m12, m13, m0)
    v = _round(v, m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15)  # SIGMA[0]
    v = _round(v, m14, m10, m4, m8, m9, m15, m13, m6, m1, m12, m0, m2, m11, m7, m5, m3)  # SIGMA[1]
    for i in range(8):
        h[i] ^= v[i] ^ v[i + 8]


@nb.njit(**PACKET_LOOP)
def blake2b_16(buf, length, words, digest):
    """BLAKE2b with a 16-byte digest of buf[:length] into digest[:16]. `buf` must have room
    for the zero padding up to the next multiple of 128; `words` is 8 uint64 of scratch.
    Byte loops index unsigned (documents/textbytes.py says why)."""
    h = words[0:8]
    for i in range(8):
        h[i] = B2_IV[i]
    h[0] ^= np.uint64(0x01010010)               # digest length 16, no key, fan-out 1, depth 1
    blocks = max(1, (length + 127) // 128)
    for i in range(np.uint64(length), np.uint64(blocks * 128)):
        buf[i] = 0
    for b in range(blocks):
        last = b == blocks - 1
        count = length if last else (b + 1) * 128
        _b2_compress(h, buf, b * 128, count, last)
    for i in range(np.uint64(16)):
        digest[i] = np.uint8((h[i // np.uint64(8)] >> (np.uint64(8) * (i % np.uint64(8))))
                             & np.uint64(0xFF))


@nb.njit(**PACKET_LOOP)
def _rotl32(x, n):
    return ((x << np.uint64(n)) | (x >> np.uint64(32 - n))) & M32


@nb.njit(**PACKET_LOOP)
def _be32(buf, at):
    """The big-endian 32-bit word at buf[at] (`at` unsigned)."""
    one = np.uint64(1)
    return (np.uint64(buf[at]) << np.uint64(24)) | (np.uint64(buf[at + one]) << np.uint64(16)) \
        | (np.uint64(buf[at + np.uint64(2)]) << np.uint64(8)) | np.uint64(buf[at + np.uint64(3)])


@nb.njit(**PACKET_LOOP)
def sha1(buf, length, words, digest):
    """SHA-1 of buf[:length] into digest[:20]. `buf` must have room for the padding (up to
    the next multiple of 64 past length + 9); `words` is 85 uint64 of scratch."""
    blocks = (length + 9 + 63) // 64
    buf[length] = 0x80
    for i in range(np.uint64(length + 1), np.uint64(blocks * 64 - 8)):
        buf[i] = 0
    bits = np.uint64(length) * np.uint64(8)
    for k in range(8):
        buf[blocks * 64 - 1 - k] = np.uint8((bits >> np.uint64(8 * k)) & np.uint64(0xFF))
    h = words[0:5]
    w = words[5:85]
    for i in range(5):
        h[i] = SHA1_H[i]
    for b in range(blocks):
        at = np.uint64(b * 64)
        for i in range(np.uint64(16)):
            w[i] = _be32(buf, at + np.uint64(4) * i)
        for i in range(np.uint64(16), np.uint64(80)):
            w[i] = _rotl32(w[i - np.uint64(3)] ^ w[i - np.uint64(8)] ^ w[i - np.uint64(14)]
                           ^ w[i - np.uint64(16)], 1)
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
