"""The compiled flow table: a hash of canonical keys to rows of `layout.FLOW`, packets applied
in capture order, Zeek's timers, early/interim reports, eviction and expiry.

It is the numba form of flows/reference.py + flow.py (the reference path, kept as the
test oracle). Every function writes the records it emits into `out` (`layout.RECORD`) and
stops before `out` can overflow; the caller drains `out` and calls again from where it
stopped. Nothing here allocates per packet."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.flows.compiled import history as H
from collectors.capture.flows.compiled import tcp as T
from collectors.capture.flows.compiled.index import canonical_key, delete, insert, lookup
from collectors.capture.flows.compiled.layout import (C_ACTIVE, C_DNS, C_EARLY, C_ICMP_INACT,
                                                      C_LINGER, C_OTHER_INACT, C_SESSION,
                                                      C_SYN_TIMEOUT, C_TCP_INACT, C_UDP_INACT,
                                                      M_EVICTED, M_HIGH, M_HIST_OVERFLOW, M_LIVE,
                                                      M_NEED_EVICT, M_NFREE, M_OUT,
                                                      M_TIMER_OVERFLOW, M_TOMBSTONES)
from collectors.capture.kernels.jit import ALLOCATING, PACKET_LOOP

OK, BADSUM = 0, 4                       # decode status codes (decoding/packets.py)


# --- one flow ----------------------------------------------------------------------------------
@nb.njit(**PACKET_LOOP)
def inactivity(cfg, proto):
    if proto == 6:
        return cfg[C_TCP_INACT]
    if proto == 17:
        return cfg[C_UDP_INACT]
    if proto == 1 or proto == 58:
        return cfg[C_ICMP_INACT]
    return cfg[C_OTHER_INACT]


@nb.njit(**PACKET_LOOP)
def _pop_timer(f, i):
    n = f.n_timers
    for k in range(i, n - 1):
        f.t_when[k] = f.t_when[k + 1]
        f.t_kind[k] = f.t_kind[k + 1]
    f.n_timers = n - 1


@nb.njit(**PACKET_LOOP)
def expired_by(f, t, cfg, meta):
    """Fire every timer due at or before `t`, in order; True if the flow ends by then."""
    inact = inactivity(cfg, f.proto)
    while f.n_timers > 0:
        i = 0
        when = f.t_when[0]
        for k in range(1, f.n_timers):
            if f.t_when[k] < when:
                i = k
                when = f.t_when[k]
        kind = f.t_kind[i]
        if when > t:
            break
        if f.inact_on and f.last + inact <= when:
            return True
        _pop_timer(f, i)
        if kind == T.EXPIRE and not T.expire_may_remove(f):
            period = cfg[C_SESSION]
            T.add_timer(f, when + ((t - when) // period + 1) * period, T.EXPIRE, meta,
                        M_TIMER_OVERFLOW)
        elif kind == T.DNS_EXPIRE:
            if when - f.last >= cfg[C_DNS] - 1.0:     # Zeek's one second of slack
                return True
            T.add_timer(f, when + cfg[C_DNS], T.DNS_EXPIRE, meta, M_TIMER_OVERFLOW)
        elif T.timer_removes(f, kind, when, cfg, meta, M_TIMER_OVERFLOW):
            return True
    return f.inact_on != 0 and f.last + inact <= t


@nb.njit(**PACKET_LOOP)
def end_deadline(f, cfg):
    """Earliest packet time at which the flow may end."""
    due = f.last + inactivity(cfg, f.proto) if f.inact_on else 1e300
    for k in range(f.n_timers):
        when, kind = f.t_when[k], f.t_kind[k]
        if kind == T.DNS_EXPIRE:
            due = min(due, max(when, f.last + cfg[C_DNS] - 1.0))
        elif kind != T.EXPIRE:
            due = min(due, when)
        elif T.expire_may_remove(f):
            due = min(due, max(when, f.last + cfg[C_LINGER]))
    return due


@nb.njit(**PACKET_LOOP)
def _emit(f, out, meta, final, evicted):
    o = out[meta[M_OUT]]
    meta[M_OUT] += 1
    for w in range(5):
        o.key[w] = f.key[w]
    o.start, o.last = f.start, f.last
    for s in range(2):
        for k in range(16):
            o.ip[s, k] = f.ip[s, k]
        o.port[s] = f.port[s]
        o.pkts[s] = f.pkts[s]
        o.ipb[s] = f.ipb[s]
    if f.proto == 6:
        o.state = T.conn_state(f)
        o.bytes[0], o.bytes[1] = T.size(f, 0), T.size(f, 1)
    else:
        o.bytes[0], o.bytes[1] = f.pay[0], f.pay[1]
        o.state = 12
        if f.proto == 17:
            if f.pkts[0] > 0:
                o.state = 2 if f.pkts[1] > 0 else 0
            elif f.pkts[1] > 0:
                o.state = 11
    for k in range(f.hlen):
        o.history[k] = f.history[k]
    o.hlen = f.hlen
    o.proto, o.v6, o.tunnel = f.proto, f.v6, f.tunnel
    o.final, o.evicted = final, evicted


@nb.njit(**PACKET_LOOP)
def _finish(S, dl, htab, free, r, out, meta, evicted):
    f = S[r]
    dl[r] = np.inf
    _emit(f, out, meta, 1, evicted)
    if f.hist_over:
        meta[M_HIST_OVERFLOW] += 1
    delete(S, htab, r, meta)
    f.alive = 0
    free[meta[M_NFREE]] = r
    meta[M_NFREE] += 1
    meta[M_LIVE] -= 1


@nb.njit(**PACKET_LOOP)
def _interim(f, t, cfg, out, meta):
    # As the reference's lite rows: a flow that is one lite-shaped packet skips its early
    # report if it ends soon anyway (an unanswered SYN, one DNS datagram), and is reported
    # once at most otherwise (a lone SYN-ACK says nothing new each minute; a silent open
    # connection's repeated reports say it is still open). A TCP connection already over
    # (both sides closed or reset) skips it too: its final record only waits for the linger.
    one = f.lite_shape and f.pkts[0] + f.pkts[1] == 1
    skip = (f.reported != 0 and one) or (f.reported == 0 and (
        (one and end_deadline(f, cfg) - f.start <= 2 * cfg[C_EARLY])
        or (f.proto == 6 and cfg[C_EARLY] > 0 and T.over(f))))
    if not skip:
        _emit(f, out, meta, 0, 0)
    f.reported = 1
    f.interim_at = t + cfg[C_ACTIVE]       # due an active timeout after this report (reference)


@nb.njit(**PACKET_LOOP)
def _group_addr(ip):
    mapped = ip[10] == 0xFF and ip[11] == 0xFF
    for k in range(10):
        if ip[k] != 0:
            mapped = False
    if mapped:
        return (224 <= ip[12] <= 239) or (ip[12] == 0xFF and ip[13] == 0xFF
                                          and ip[14] == 0xFF and ip[15] == 0xFF)
    return ip[0] == 0xFF


@nb.njit(**PACKET_LOOP)
def _want_flip(ports, proto, flags, sport, dport):
    if proto == 6:
        if flags & T.SYN and flags & T.ACK and not flags & T.RST:
            return True
        if flags & T.SYN:
            return False
        if ports[0, sport]:
            return (not ports[0, dport]) or sport < dport
        return False
    if proto == 17:
        return ports[1, sport] != 0 and ports[1, dport] == 0
    return False


@nb.njit(**ALLOCATING)
def evict(S, dl, htab, free, out, meta, k):
    """Evict the `k` flows with the earliest deadlines (the table is full)."""
    meta[M_NEED_EVICT] = 0
    high = meta[M_HIGH]
    n = 0
    due = np.empty(meta[M_LIVE], np.float64)
    for r in range(high):
        if S[r].alive:
            due[n] = dl[r]
            n += 1
    k = min(k, n)
    if k == 0:
        return
    cut = np.partition(due[:n], k - 1)[k - 1]
    done = 0
    for r in range(high):
        if done >= k:
            break
        if S[r].alive and dl[r] <= cut:
            _finish(S, dl, htab, free, r, out, meta, 1)
            meta[M_EVICTED] += 1
            done += 1


@nb.njit(**PACKET_LOOP)
def _new_flow(S, htab, free, meta, cfg, ports, key, t, proto, v6, tunnel, src, dst, sport,
              dport, flags, paylen, status):
    if meta[M_NFREE] > 0:
        meta[M_NFREE] -= 1
        r = free[meta[M_NFREE]]
    else:
        r = meta[M_HIGH]
        meta[M_HIGH] += 1
    meta[M_LIVE] += 1
    f = S[r]
    for w in range(5):
        f.key[w] = key[w]
    for k in range(16):
        f.ip[0, k] = src[k]
        f.ip[1, k] = dst[k]
    f.port[0], f.port[1] = sport, dport
    f.start = t
    f.last = t
    early = cfg[C_EARLY]
    f.interim_at = t + (early if early > 0 else cfg[C_ACTIVE])
    for s in range(2):
        f.pkts[s] = 0
        f.ipb[s] = 0
        f.pay[s] = 0
        f.e_start[s] = 0
        f.e_last[s] = 0
        f.e_ack[s] = 0
        f.h_syn[s] = 0
        f.h_fin[s] = 0
        f.h_rst[s] = 0
        f.rxmit[s] = 0
        f.rxnext[s] = 1
        f.e_state[s] = T.INACTIVE
        f.e_prev[s] = T.INACTIVE
        f.e_closed[s] = 0
        f.e_finseen[s] = 0
    f.n_timers = 0
    f.hlen = 0
    f.seen = 0
    f.hist_over = 0
    f.proto, f.v6, f.tunnel = proto, v6, tunnel
    f.alive, f.inact_on, f.active, f.reported = 1, 1, 1, 0
    ctl = flags & (T.SYN | T.ACK | T.FIN | T.RST)
    group = _group_addr(dst)
    f.lite_shape = status == OK and (proto == 17 or (proto == 6 and paylen == 0 and (
        ctl == T.SYN or (ctl == T.SYN | T.ACK and not group))))
    if proto == 6:
        T.add_timer(f, t + cfg[C_SYN_TIMEOUT], T.EXPIRE, meta, M_TIMER_OVERFLOW)
    if _want_flip(ports, proto, flags, sport, dport) and not group:
        T.flip(f)
    if proto == 17 and ports[2, f.port[1]]:
        T.add_timer(f, t + cfg[C_DNS], T.DNS_EXPIRE, meta, M_TIMER_OVERFLOW)
    if insert(htab, key, r):
        meta[M_TOMBSTONES] -= 1
    return r


# --- batches -----------------------------------------------------------------------------------
@nb.njit(**PACKET_LOOP)
def process(S, dl, htab, free, meta, out, cfg, ports, max_flows, evict_k, key, i0, ts, status,
            proto, v6, tunnel, src, dst, sport, dport, flags, seq, ack, paylen, iplen):
    """Apply packets i0.. in order (rows that are not OK or BADSUM are skipped); returns the
    index of the first packet not applied (== len(ts) when done; less when `out` is nearly
    full or a new flow needs a row or index room the caller has to make). `key`: scratch
    for one flow key (5 words)."""
    n = ts.shape[0]
    room = out.shape[0] - 2 - evict_k
    for i in range(i0, n):
        if status[i] != OK and status[i] != BADSUM:
            continue
        if meta[M_OUT] >= room:
            return i
        t = ts[i]
        pr = proto[i]
        fl = flags[i]
        sq = seq[i]
        canonical_key(pr, src[i], dst[i], sport[i], dport[i], key)
        r = lookup(S, htab, key)
        if r >= 0:
            f = S[r]
            if expired_by(f, t, cfg, meta) or (pr == 6 and status[i] == OK
                                               and T.is_reuse(f, fl, sq)):
                _finish(S, dl, htab, free, r, out, meta, 0)
                r = -1
        if r < 0:
            if meta[M_LIVE] >= max_flows:
                meta[M_NEED_EVICT] = 1
                return i            # the caller evicts (evict() allocates); i starts over
            if ((meta[M_NFREE] == 0 and meta[M_HIGH] >= S.shape[0])
                    or 2 * (meta[M_LIVE] + meta[M_TOMBSTONES] + 1) > htab.shape[0]):
                return i            # the caller grows the table; packet i starts over
            r = _new_flow(S, htab, free, meta, cfg, ports, key, t, pr, v6[i], tunnel[i],
                          src[i], dst[i], sport[i], dport[i], fl, paylen[i], status[i])
        f = S[r]
        is_orig = f.port[0] == sport[i]
        if is_orig:
            for k in range(16):
                if f.ip[0, k] != src[i, k]:
                    is_orig = False
                    break
        if status[i] == BADSUM:          # Zeek notes it in the history, counts nothing else
            H.check(f, H.C, is_orig, -1)
            dl[r] = min(end_deadline(f, cfg), f.interim_at)
            continue
        if pr == 6:
            if T.process(f, 0 if is_orig else 1, t, fl, sq, ack[i], paylen[i], cfg, meta,
                         M_HIST_OVERFLOW, M_TIMER_OVERFLOW):
                is_orig = not is_orig
        else:
            f.last = t
            if pr == 17:
                H.check(f, H.D, is_orig, -1)
        d = 0 if is_orig else 1
        f.pkts[d] += 1
        f.ipb[d] += iplen[i]
        f.pay[d] += paylen[i]
        if t >= f.interim_at:
            _interim(f, t, cfg, out, meta)
        elif (fl & T.RST and not is_orig and pr == 6 and cfg[C_EARLY] > 0
              and f.reported == 0):
            # The responder's reset decides the outcome (REJ): report it now; Zeek keeps
            # the flow for late packets, so the final record follows.
            _emit(f, out, meta, 0, 0)
            f.reported = 1
            f.interim_at = t + cfg[C_ACTIVE]
        dl[r] = min(end_deadline(f, cfg), f.interim_at)
    return n


@nb.njit(**PACKET_LOOP)
def sweep(S, dl, htab, free, meta, out, cfg, now):
    """Expire what is due by `now` and send due interim reports; False if `out` filled up
    first (call again after draining)."""
    room = out.shape[0] - 1
    for r in range(meta[M_HIGH]):
        if dl[r] > now:
            continue
        f = S[r]
        if meta[M_OUT] >= room:
            return False
        if expired_by(f, now, cfg, meta):
            _finish(S, dl, htab, free, r, out, meta, 0)
            continue
        if f.interim_at <= now:
            _interim(f, now, cfg, out, meta)
        dl[r] = min(end_deadline(f, cfg), f.interim_at)
    return True


@nb.njit(**PACKET_LOOP)
def flush(S, dl, htab, free, meta, out):
    """End of input: every flow is reported; False if `out` filled up first."""
    room = out.shape[0] - 1
    for r in range(meta[M_HIGH]):
        if S[r].alive:
            if meta[M_OUT] >= room:
                return False
            _finish(S, dl, htab, free, r, out, meta, 0)
    return True
