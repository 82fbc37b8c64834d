"""Zeek's connection history letters on a flow row (Flow.add_history / check_history)."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import PACKET_LOOP

S, HH, F, R, D, A, I, Q, C = (ord(c) for c in "SHFRDAIQC")
T_RXMIT, CARET = ord("T"), ord("^")


# One bit per (letter, direction) for CheckHistory's "first time only"; C and any other
# letter share the last slot.
_SLOT = np.full(128, 8, np.int64)
for _k, _c in enumerate("SHFRDAIQ"):
    _SLOT[ord(_c)] = _k


@nb.njit(**PACKET_LOOP)
def _bit(code, is_orig):
    return 1 << (2 * _SLOT[code] + (0 if is_orig else 1))


@nb.njit(**PACKET_LOOP)
def append(f, code, is_orig):
    n = f.hlen
    if n >= f.history.shape[0]:
        f.hist_over = 1             # counted by the table when the flow ends
        return
    f.history[n] = code if (is_orig or code == CARET) else code + 32
    f.hlen = n + 1


@nb.njit(**PACKET_LOOP)
def check(f, code, is_orig, mask):
    """Record `code` the first time only; True if (mask or code, direction) was seen."""
    bit = _bit(mask if mask >= 0 else code, is_orig)
    if f.seen & bit:
        return True
    f.seen |= bit
    append(f, code, is_orig)
    return False


@nb.njit(**PACKET_LOOP)
def rstos0(f):
    # /\^?S[^HAFGIQ]*R.*/ : orig sent a SYN then a RST, the responder never answered.
    i = 0
    n = f.hlen
    if n > 0 and f.history[0] == CARET:
        i = 1
    if i >= n or f.history[i] != S:
        return False
    for k in range(i + 1, n):
        ch = f.history[k]
        if ch == R:
            return True
        if ch == HH or ch == A or ch == F or ch == ord("G") or ch == I or ch == Q:
            return False
    return False

