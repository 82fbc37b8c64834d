"""Text into byte buffers from compiled code (documents/kernel.py writes flow documents with
these): copies, single bytes, decimal and hexadecimal digits, ISO 8601 times, byte-order
comparison. Each takes the buffer and a position and returns the position after what it wrote;
the caller makes sure there is room.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import PACKET_LOOP

HEX = np.frombuffer(b"0123456789abcdef", np.uint8)

# Indexing: the byte loops index with unsigned integers (np.uint64). numba treats a signed
# index as possibly negative and wraps it (a compare and an add on every byte); an unsigned
# one it uses as is. Measured on the replay's rows: the non-hash part of a line 950 -> 610 ns.
# Never mix them in arithmetic: int64 with uint64 gives float64 in numba, as in numpy.


@nb.njit(**PACKET_LOOP)
def copy_bytes(out, pos, src, a, b):
    """out[pos:pos + b - a] = src[a:b]; returns the end. Four bytes per step while it can
    (most copies are 2-60 bytes: a plain loop spent more on its branch than on the bytes)."""
    n = np.uint64(b - a)
    to, at = np.uint64(pos), np.uint64(a)
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    i = np.uint64(0)
    while i + four <= n:
        out[to + i] = src[at + i]
        out[to + i + one] = src[at + i + one]
        out[to + i + two] = src[at + i + two]
        out[to + i + three] = src[at + i + three]
        i += four
    if i + two <= n:
        out[to + i] = src[at + i]
        out[to + i + one] = src[at + i + one]
        i += two
    if i < n:
        out[to + i] = src[at + i]
    return pos + b - a


@nb.njit(**PACKET_LOOP)
def put_byte(out, pos, byte):
    out[np.uint64(pos)] = byte
    return pos + 1


@nb.njit(**PACKET_LOOP)
def digits(out, pos, value, width):
    """`value` (>= 0) as exactly `width` decimal digits (leading zeros); returns the end."""
    v, at = np.uint64(value), np.uint64(pos + width)
    for _ in range(width):
        at -= np.uint64(1)
        out[at] = np.uint8(np.uint64(48) + v % np.uint64(10))
        v //= np.uint64(10)
    return pos + width


@nb.njit(**PACKET_LOOP)
def integer(out, pos, value):
    """`value` (as unsigned) in decimal, no leading zeros."""
    v = np.uint64(value)
    width = 1
    t = v
    while t >= np.uint64(10):
        t //= np.uint64(10)
        width += 1
    return digits(out, pos, v, width)


@nb.njit(**PACKET_LOOP)
def iso_time(out, pos, micros):
    """YYYY-MM-DDTHH:MM:SS.ffffff of epoch microseconds (UTC; the civil-from-days algorithm
    of H. Hinnant's date library), as numpy's datetime_as_string writes it."""
    days, rest = micros // 86_400_000_000, micros % 86_400_000_000
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    pos = put_byte(out, digits(out, pos, year, 4), 45)                              # "-"
    pos = put_byte(out, digits(out, pos, month, 2), 45)
    pos = put_byte(out, digits(out, pos, doy - (153 * mp + 2) // 5 + 1, 2), 84)     # "T"
    seconds = rest // 1_000_000
    pos = put_byte(out, digits(out, pos, seconds // 3600, 2), 58)                   # ":"
    pos = put_byte(out, digits(out, pos, seconds // 60 % 60, 2), 58)
    pos = put_byte(out, digits(out, pos, seconds % 60, 2), 46)                      # "."
    return digits(out, pos, rest % 1_000_000, 6)


@nb.njit(**PACKET_LOOP)
def hex_digits(out, pos, digest, count):
    at = np.uint64(pos)
    for i in range(np.uint64(count)):
        out[at + np.uint64(2) * i] = HEX[digest[i] >> 4]
        out[at + np.uint64(2) * i + np.uint64(1)] = HEX[digest[i] & 15]
    return pos + 2 * count


@nb.njit(**PACKET_LOOP)
def less(out, a0, a1, b0, b1):
    """Is out[a0:a1] < out[b0:b1] (byte order, as Python orders ASCII strings)?"""
    a, b = np.uint64(a0), np.uint64(b0)
    for i in range(np.uint64(min(a1 - a0, b1 - b0))):
        if out[a + i] != out[b + i]:
            return out[a + i] < out[b + i]
    return a1 - a0 < b1 - b0
