"""Zeek's TCP state machine on a flow row: a line-by-line translation of
flows/tcpstate.py (the reference, which the tests compare this with) for numba.

`e` is the index of the endpoint that sent the packet (0 originator, 1 responder)."""
from __future__ import annotations

import numba as nb

from collectors.capture.flows.compiled import history as H
from collectors.capture.flows.compiled.layout import (C_ATTEMPT, C_CLOSE, C_LINGER, C_PARTIAL,
                                                      C_RESET, C_SESSION)
from collectors.capture.kernels.jit import PACKET_LOOP

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
TOO_LARGE_SEQ_DELTA = 1048576
ATTEMPT, EXPIRE, CONN_DELETE, RESET_T, PARTIAL_CLOSE, DNS_EXPIRE = 0, 1, 2, 3, 4, 100


@nb.njit(**PACKET_LOOP)
def seq_delta(a, b):
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@nb.njit(**PACKET_LOOP)
def set_state(f, e, new):
    if new != f.e_state[e]:
        f.e_prev[e] = f.e_state[e]
        f.e_state[e] = new


@nb.njit(**PACKET_LOOP)
def init_seq(f, e, start, last):
    f.e_start[e] = start
    f.e_ack[e] = start
    f.e_last[e] = last


@nb.njit(**PACKET_LOOP)
def full(f, e, seq32):
    last = f.e_last[e]
    return last + seq_delta(seq32, last & 0xFFFFFFFF)


@nb.njit(**PACKET_LOOP)
def size(f, e):
    if f.e_state[e] == INACTIVE:
        return 0
    top = max(f.e_last[e], f.e_ack[e])
    n = top - f.e_start[e] - 1 - (1 if f.e_finseen[e] else 0)
    return max(n, 0)


@nb.njit(**PACKET_LOOP)
def add_timer(f, when, kind, meta, m_overflow):
    n = f.n_timers
    if n >= f.t_when.shape[0]:
        meta[m_overflow] += 1
        return
    f.t_when[n] = when
    f.t_kind[n] = kind
    f.n_timers = n + 1


@nb.njit(**PACKET_LOOP)
def _swap(pair):
    pair[0], pair[1] = pair[1], pair[0]


@nb.njit(**PACKET_LOOP)
def flip(f):
    for k in range(16):
        a = f.ip[0, k]
        f.ip[0, k] = f.ip[1, k]
        f.ip[1, k] = a
    _swap(f.port)
    _swap(f.pkts)
    for octets in (f.ipb, f.pay):       # tuples of one dtype: numba iterates only those
        _swap(octets)
    if f.proto == 6:
        for seq in (f.e_start, f.e_last, f.e_ack, f.h_syn, f.h_fin, f.h_rst):
            _swap(seq)
        for count in (f.rxmit, f.rxnext):
            _swap(count)
        for flag in (f.e_state, f.e_prev, f.e_closed, f.e_finseen):
            _swap(flag)
    H.append(f, H.CARET, True)


@nb.njit(**PACKET_LOOP)
def is_reuse(f, flags, seq):
    if not flags & SYN:
        return False
    o = 0
    if flags & ACK:
        if f.e_state[0] != INACTIVE:
            return False
        o = 1
    if not (f.e_closed[0] or f.e_closed[1]):
        if seq == f.e_start[o] & 0xFFFFFFFF:
            return False
        if (not flags & ACK and f.e_state[o] == SYN_ACK_SENT and f.e_state[1] == INACTIVE
                and seq == f.e_start[1] & 0xFFFFFFFF):
            return False
    return True


@nb.njit(**PACKET_LOOP)
def process(f, e, t, flags, seq, ack, length, cfg, meta, m_hist, m_timer):
    """One packet through the state machine; True if the roles flipped."""
    p = 1 - e
    seg_len = length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if flags & RST:
        seg_len -= length
    # _init_endpoint
    st = f.e_state[e]
    if st == INACTIVE:
        if flags & SYN:
            init_seq(f, e, seq, seq + seg_len)
        else:
            init_seq(f, e, seq - 1, seq)
    elif flags & SYN and (((st == SYN_SENT or st == SYN_ACK_SENT)
                           and seq != f.e_start[e] & 0xFFFFFFFF)
                          or st == ESTABLISHED or st == PARTIAL
                          or (st == RESET and f.e_prev[e] == INACTIVE)):
        init_seq(f, e, seq, seq + seg_len)
    rel_seq = seq_delta(seq, f.e_start[e] & 0xFFFFFFFF)
    _update_history(f, e, flags, rel_seq, length, meta, m_hist)
    if not (f.e_closed[0] and f.e_closed[1]):
        f.last = t
    if flags & ACK:
        if f.e_state[p] == INACTIVE:
            init_seq(f, p, ack - 1, ack - 1)
        elif not flags & RST:
            full_ack = full(f, p, ack)
            broken = ack == 0 and full_ack - f.e_ack[p] > TOO_LARGE_SEQ_DELTA
            if full_ack > f.e_ack[p] and not broken:
                f.e_ack[p] = full_ack
    # _update_last_seq
    new_last = full(f, e, (seq + seg_len) & 0xFFFFFFFF)
    delta = new_last - f.e_last[e]
    if flags & (SYN | RST) and abs(delta) > TOO_LARGE_SEQ_DELTA:
        pass
    elif flags & FIN and f.e_last[e] == f.e_start[e] + 1:
        f.e_last[e] = new_last
    elif f.e_state[e] == RESET:
        pass
    elif delta > 0:
        f.e_last[e] = new_last
    elif length > 0:
        f.rxmit[e] += 1
        if f.rxmit[e] == f.rxnext[e]:
            H.append(f, H.T_RXMIT, e == 0)
            f.rxnext[e] = f.rxnext[e] * 10
    if flags & FIN:
        f.e_finseen[e] = 1
    # _state_machine
    flipped = False
    do_close = False
    gen_event = False
    st = f.e_state[e]
    if st == INACTIVE:
        if flags & SYN:
            if e == 0:
                set_state(f, e, SYN_ACK_SENT if flags & ACK else SYN_SENT)
                add_timer(f, t + cfg[C_ATTEMPT], ATTEMPT, meta, m_timer)
            else:
                if (not flags & ACK and f.e_state[p] == SYN_ACK_SENT
                        and seq == f.e_start[e] & 0xFFFFFFFF):
                    flip(f)
                    flipped = True
                    e, p = p, e
                    set_state(f, p, ESTABLISHED)
                if f.e_state[p] == SYN_SENT:
                    set_state(f, p, ESTABLISHED)
                set_state(f, e, ESTABLISHED)
        if flags & FIN:
            set_state(f, e, CLOSED)
            do_close = True
            gen_event = True
        if flags & RST:
            set_state(f, e, RESET)
            do_close = True
        if f.e_state[e] == INACTIVE:
            # (is_orig is the sender's role before any flip, as in the reference)
            sent_by_orig = (e == 0) != flipped
            if not sent_by_orig and length == 0 and f.e_state[0] == SYN_SENT:
                pass
            elif flags & ACK and f.e_state[p] == ESTABLISHED:
                set_state(f, e, ESTABLISHED)
            else:
                set_state(f, e, PARTIAL)
    elif st == SYN_SENT or st == SYN_ACK_SENT:
        if flags & FIN:
            set_state(f, e, CLOSED)
            do_close = True
            gen_event = True
        if flags & RST:
            set_state(f, e, RESET)
            f.active = 0
            do_close = True
    elif st == ESTABLISHED or st == PARTIAL:
        if flags & SYN and st == PARTIAL and f.e_state[p] == INACTIVE and not flags & ACK:
            set_state(f, e, SYN_SENT)
        if flags & FIN and not flags & RST:
            set_state(f, e, CLOSED)
            if f.e_state[p] == RESET and f.e_prev[p] == CLOSED:
                set_state(f, p, CLOSED)
            do_close = True
            gen_event = True
        if flags & RST:
            set_state(f, e, RESET)
            do_close = True
            if f.e_state[p] != RESET or f.e_prev[p] != ESTABLISHED:
                f.active = 0
    elif st == CLOSED and flags & RST and f.e_state[p] != CLOSED:
        set_state(f, e, RESET)
        do_close = not f.e_closed[e]
        add_timer(f, t + cfg[C_RESET], RESET_T, meta, m_timer)
    if do_close:
        _closed(f, e, p, gen_event, cfg, meta, m_timer)
    return flipped


@nb.njit(**PACKET_LOOP)
def _update_history(f, e, flags, rel_seq, length, meta, m_hist):
    is_orig = e == 0
    bits = (1 if flags & SYN else 0) + (1 if flags & FIN else 0) + (1 if flags & RST else 0)
    if bits > 1:
        H.check(f, H.I if (flags & FIN and flags & RST) else H.Q, is_orig, -1)
    elif bits == 1:
        if flags & SYN:
            code = H.HH if flags & ACK else H.S
            if H.check(f, code, is_orig, H.S) and rel_seq != f.h_syn[e]:
                H.append(f, code, is_orig)
            f.h_syn[e] = rel_seq
        if flags & FIN:
            if H.check(f, H.F, is_orig, -1) and rel_seq + length != f.h_fin[e]:
                H.append(f, H.F, is_orig)
            f.h_fin[e] = rel_seq + length
        if flags & RST:
            if H.check(f, H.R, is_orig, -1) and rel_seq != f.h_rst[e]:
                H.append(f, H.R, is_orig)
            f.h_rst[e] = rel_seq
    elif length:
        H.check(f, H.D, is_orig, -1)
    elif flags & ACK:
        H.check(f, H.A, is_orig, -1)


@nb.njit(**PACKET_LOOP)
def _closed(f, e, p, gen_event, cfg, meta, m_timer):
    if f.e_closed[e]:
        return
    f.e_closed[e] = 1
    if f.e_state[e] == RESET or f.e_closed[p] or f.e_state[p] == INACTIVE:
        if gen_event and (f.e_prev[e] != INACTIVE or f.e_state[p] != INACTIVE):
            f.active = 0
        f.n_timers = 0
        f.inact_on = 0
        add_timer(f, f.last + cfg[C_CLOSE], CONN_DELETE, meta, m_timer)
    elif f.e_prev[e] == INACTIVE:
        add_timer(f, f.last + cfg[C_PARTIAL], PARTIAL_CLOSE, meta, m_timer)
    else:
        add_timer(f, f.last + cfg[C_SESSION], EXPIRE, meta, m_timer)


@nb.njit(**PACKET_LOOP)
def timer_removes(f, kind, when, cfg, meta, m_timer):
    """Fire one TCP timer at `when`; True if Zeek would remove the connection now."""
    if kind == CONN_DELETE:
        return True
    if kind == RESET_T:
        return f.active != 0
    if not f.active:
        return False
    o, r = f.e_state[0], f.e_state[1]
    if kind == ATTEMPT:
        return (o == SYN_SENT or o == SYN_ACK_SENT) and r == INACTIVE
    if kind == PARTIAL_CLOSE:
        return (o != INACTIVE and r != INACTIVE and not (f.e_closed[0] and f.e_closed[1])
                and o != RESET and r != RESET)
    if f.last + cfg[C_LINGER] < when:
        if f.e_closed[0] or f.e_closed[1]:
            if ((f.e_closed[0] and f.e_closed[1]) or o == RESET or r == RESET
                    or o == INACTIVE or r == INACTIVE):
                return True
        if o == INACTIVE and r == INACTIVE:
            return True
    add_timer(f, when + cfg[C_SESSION], EXPIRE, meta, m_timer)
    return False


@nb.njit(**PACKET_LOOP)
def over(f):
    """Both endpoints have closed or reset: only Zeek's linger for late packets is left."""
    return ((f.e_state[0] == CLOSED or f.e_state[0] == RESET)
            and (f.e_state[1] == CLOSED or f.e_state[1] == RESET))


@nb.njit(**PACKET_LOOP)
def expire_may_remove(f):
    return f.active != 0 and (f.e_closed[0] or f.e_closed[1]
                              or (f.e_state[0] == INACTIVE and f.e_state[1] == INACTIVE))


@nb.njit(**PACKET_LOOP)
def conn_state(f):
    """Index into layout.CONN_STATES (Zeek's conn_state for TCP)."""
    os_, rs = f.e_state[0], f.e_state[1]
    o_inactive = os_ == INACTIVE or os_ == PARTIAL
    r_inactive = rs == INACTIVE or rs == PARTIAL
    if rs == RESET:
        if os_ == SYN_SENT or os_ == SYN_ACK_SENT or (
                os_ == RESET and size(f, 0) == 0 and size(f, 1) == 0):
            return 3        # REJ
        return 9 if o_inactive else 7      # RSTRH / RSTR
    if os_ == RESET:
        if r_inactive:
            return 8 if H.rstos0(f) else 12   # RSTOS0 / OTH
        return 6            # RSTO
    if rs == CLOSED and os_ == CLOSED:
        return 2            # SF
    if os_ == CLOSED:
        return 10 if r_inactive else 4     # SH / S2
    if rs == CLOSED:
        return 11 if o_inactive else 5     # SHR / S3
    if os_ == SYN_SENT and rs == INACTIVE:
        return 0            # S0
    if os_ == ESTABLISHED and rs == ESTABLISHED:
        return 1            # S1
    return 12               # OTH
