"""Zeek's TCP connection state machine, per packet (TCPSessionAdapter / TCP_Endpoint).

Only what shapes conn.log is kept: endpoint states (for conn_state), the history letters,
sequence-space sizes (orig_bytes/resp_bytes) and the timers that end a connection (attempt,
close/reset delay, partial close, the periodic expire check). Weirds and reassembly are not.
"""
from __future__ import annotations

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
TOO_LARGE_SEQ_DELTA = 1048576
# timer kinds
ATTEMPT, EXPIRE, CONN_DELETE, RESET_T, PARTIAL_CLOSE = range(5)


def seq_delta(a: int, b: int) -> int:
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class Endpoint:
    __slots__ = ("state", "prev_state", "start", "last", "ackseq", "did_close", "fin_cnt",
                 "hist_syn", "hist_fin", "hist_rst", "rxmit", "rxmit_next", "is_orig",
                 "fin_seen")

    def __init__(self, is_orig: bool):
        self.state = self.prev_state = INACTIVE
        self.start = self.last = self.ackseq = 0      # unwrapped sequence numbers
        self.did_close = self.fin_seen = False
        self.fin_cnt = self.rxmit = 0
        self.hist_syn = self.hist_fin = self.hist_rst = 0
        self.rxmit_next = 1
        self.is_orig = is_orig

    def set_state(self, new: int) -> None:
        if new != self.state:
            self.prev_state, self.state = self.state, new

    def init_seq(self, start: int, last: int) -> None:
        self.start = self.ackseq = start
        self.last = last

    def full(self, seq32: int) -> int:
        """Unwrap a 32-bit sequence number near what this endpoint last sent."""
        return self.last + seq_delta(seq32, self.last & 0xFFFFFFFF)

    def size(self) -> int:
        # Zeek: sequence span (or what the peer acked, if more), minus SYN (or the
        # virtual SYN of a partial connection) and FIN.
        top = max(self.last, self.ackseq)
        size = top - self.start - 1 - (1 if self.fin_seen else 0)
        if self.state == INACTIVE:
            return 0
        return max(size, 0)


class TcpState:
    """The TCP half of a connection; `conn` is the owning Flow (history, timers, flip)."""
    __slots__ = ("orig", "resp", "is_active")

    def __init__(self):
        self.orig, self.resp = Endpoint(True), Endpoint(False)
        self.is_active = True

    def flip(self) -> None:
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig, self.resp.is_orig = True, False

    def over(self) -> bool:
        """Both endpoints have closed or reset: only Zeek's linger for late packets is left."""
        return self.orig.state in (CLOSED, RESET) and self.resp.state in (CLOSED, RESET)

    def is_reuse(self, flags: int, seq: int) -> bool:
        """A new SYN on a known tuple: Zeek starts a new connection unless it is a
        retransmission (same ISN) or the SYN / SYN-ACK reversal case."""
        if not flags & SYN:
            return False
        conn_orig = self.orig
        if flags & ACK:
            if self.orig.state != INACTIVE:
                return False
            conn_orig = self.resp
        if not (self.orig.did_close or self.resp.did_close):
            if seq == conn_orig.start & 0xFFFFFFFF:
                return False
            if (not flags & ACK and conn_orig.state == SYN_ACK_SENT
                    and self.resp.state == INACTIVE and seq == self.resp.start & 0xFFFFFFFF):
                return False
        return True


def process(conn, is_orig: bool, t: float, flags: int, seq: int, ack: int, length: int) -> bool:
    """Run one packet through the state machine. Returns True if the roles flipped."""
    tcp: TcpState = conn.tcp
    ep, peer = (tcp.orig, tcp.resp) if is_orig else (tcp.resp, tcp.orig)
    seg_len = length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if flags & RST:
        seg_len -= length
    _init_endpoint(ep, flags, seq, seg_len)
    rel_seq = seq_delta(seq, ep.start & 0xFFFFFFFF)
    _update_history(conn, ep, flags, rel_seq, length)
    if not (tcp.orig.did_close and tcp.resp.did_close):
        conn.last = t
    if flags & FIN:
        ep.fin_cnt += 1
    if flags & ACK:
        if peer.state == INACTIVE:
            peer.init_seq(ack - 1, ack - 1)
        elif not flags & RST:
            full_ack = peer.full(ack)
            broken = ack == 0 and full_ack - peer.ackseq > TOO_LARGE_SEQ_DELTA
            if full_ack > peer.ackseq and not broken:
                peer.ackseq = full_ack
    delta_last = _update_last_seq(conn, ep, seq, seg_len, flags, length)
    flipped, do_close, gen_event = _state_machine(conn, t, ep, peer, seq, flags, length,
                                                  is_orig, delta_last)
    if do_close:
        _connection_closed(conn, ep, peer, gen_event)
    return flipped


def _init_endpoint(ep: Endpoint, flags: int, seq: int, seg_len: int) -> None:
    st = ep.state
    if st == INACTIVE:
        if flags & SYN:
            ep.init_seq(seq, seq + seg_len)
        else:   # partial connection: number bytes as though a SYN had been seen
            ep.init_seq(seq - 1, seq)
    elif flags & SYN and (
            (st in (SYN_SENT, SYN_ACK_SENT) and seq != ep.start & 0xFFFFFFFF)
            or st in (ESTABLISHED, PARTIAL)
            or (st == RESET and ep.prev_state == INACTIVE)):
        ep.init_seq(seq, seq + seg_len)


def _update_history(conn, ep: Endpoint, flags: int, rel_seq: int, length: int) -> None:
    bits = bool(flags & SYN) + bool(flags & FIN) + bool(flags & RST)
    if bits > 1:
        conn.check_history("I" if flags & FIN and flags & RST else "Q", ep.is_orig)
    elif bits == 1:
        if flags & SYN:
            code = "H" if flags & ACK else "S"
            if conn.check_history(code, ep.is_orig, "S") and rel_seq != ep.hist_syn:
                conn.add_history(code, ep.is_orig)
            ep.hist_syn = rel_seq
        if flags & FIN:
            if conn.check_history("F", ep.is_orig) and rel_seq + length != ep.hist_fin:
                conn.add_history("F", ep.is_orig)
            ep.hist_fin = rel_seq + length
        if flags & RST:
            if conn.check_history("R", ep.is_orig) and rel_seq != ep.hist_rst:
                conn.add_history("R", ep.is_orig)
            ep.hist_rst = rel_seq
    elif length:
        conn.check_history("D", ep.is_orig)
    elif flags & ACK:
        conn.check_history("A", ep.is_orig)


def _update_last_seq(conn, ep: Endpoint, seq: int, seg_len: int, flags: int, length: int) -> int:
    new_last = ep.full((seq + seg_len) & 0xFFFFFFFF)
    delta = new_last - ep.last
    if flags & (SYN | RST) and abs(delta) > TOO_LARGE_SEQ_DELTA:
        pass
    elif flags & FIN and ep.last == ep.start + 1:
        ep.last = new_last
    elif ep.state == RESET:
        pass
    elif delta > 0:
        ep.last = new_last
    elif length > 0:
        ep.rxmit += 1                   # Zeek's scaled history: letter at 1, 10, 100, ...
        if ep.rxmit == ep.rxmit_next:
            conn.add_history("T", ep.is_orig)
            ep.rxmit_next *= 10
    if flags & FIN:
        ep.fin_seen = True
    return delta


def _state_machine(conn, t, ep, peer, seq, flags, length, is_orig, delta_last):
    tcp: TcpState = conn.tcp
    flipped = do_close = gen_event = False
    st = ep.state
    if st == INACTIVE:
        flipped, do_close, gen_event = _inactive(conn, t, ep, peer, seq, flags, length, is_orig)
    elif st in (SYN_SENT, SYN_ACK_SENT):
        if flags & FIN:
            ep.set_state(CLOSED)
            do_close = gen_event = True
        if flags & RST:
            ep.set_state(RESET)
            tcp.is_active = False
            do_close = True
    elif st in (ESTABLISHED, PARTIAL):
        if flags & SYN and st == PARTIAL and peer.state == INACTIVE and not flags & ACK:
            ep.set_state(SYN_SENT)
        if flags & FIN and not flags & RST:
            ep.set_state(CLOSED)
            if peer.state == RESET and peer.prev_state == CLOSED:
                peer.set_state(CLOSED)
            do_close = gen_event = True
        if flags & RST:
            ep.set_state(RESET)
            do_close = True
            if peer.state != RESET or peer.prev_state != ESTABLISHED:
                tcp.is_active = False
    elif st == CLOSED and flags & RST and peer.state != CLOSED:
        ep.set_state(RESET)
        do_close = not ep.did_close
        conn.add_timer(t + conn.config.tcp_reset_delay, RESET_T)
    return flipped, do_close, gen_event


def _inactive(conn, t, ep, peer, seq, flags, length, is_orig):
    tcp: TcpState = conn.tcp
    flipped = do_close = gen_event = False
    if flags & SYN:
        if is_orig:
            ep.set_state(SYN_ACK_SENT if flags & ACK else SYN_SENT)
            conn.add_timer(t + conn.config.tcp_attempt_delay, ATTEMPT)
        else:
            if not flags & ACK and peer.state == SYN_ACK_SENT and seq == ep.start & 0xFFFFFFFF:
                conn.flip()             # SYN / SYN-ACK seen in reverse order
                flipped = True
                peer.set_state(ESTABLISHED)
            if peer.state == SYN_SENT:
                peer.set_state(ESTABLISHED)
            ep.set_state(ESTABLISHED)
    if flags & FIN:
        ep.set_state(CLOSED)
        do_close = gen_event = True
    if flags & RST:
        ep.set_state(RESET)
        do_close = True
    if ep.state == INACTIVE:
        if not is_orig and length == 0 and tcp.orig.state == SYN_SENT:
            pass                        # an ACK of the SYN before the SYN-ACK: not partial
        elif flags & ACK and peer.state == ESTABLISHED:
            ep.set_state(ESTABLISHED)   # missed the SYN but saw the SYN-ACK
        else:
            ep.set_state(PARTIAL)
    return flipped, do_close, gen_event


def _connection_closed(conn, ep: Endpoint, peer: Endpoint, gen_event: bool) -> None:
    if ep.did_close:
        return
    ep.did_close = True
    cfg = conn.config
    if ep.state == RESET or peer.did_close or peer.state == INACTIVE:
        if gen_event and (ep.prev_state != INACTIVE or peer.state != INACTIVE):
            conn.tcp.is_active = False
        conn.timers.clear()             # CancelTimers(): the inactivity timer goes too
        conn.inactivity_on = False
        conn.add_timer(conn.last + cfg.tcp_close_delay, CONN_DELETE)
    elif ep.prev_state == INACTIVE:
        conn.add_timer(conn.last + cfg.tcp_partial_close_delay, PARTIAL_CLOSE)
    else:
        conn.add_timer(conn.last + cfg.tcp_session_timer, EXPIRE)


def timer_removes(conn, kind: int, when: float) -> bool:
    """Fire one TCP timer at `when`; True if Zeek would remove the connection now."""
    tcp: TcpState = conn.tcp
    o, r = tcp.orig, tcp.resp
    cfg = conn.config
    if kind == CONN_DELETE:
        return True
    if kind == RESET_T:
        return tcp.is_active
    if not tcp.is_active:
        return False
    if kind == ATTEMPT:
        return o.state in (SYN_SENT, SYN_ACK_SENT) and r.state == INACTIVE
    if kind == PARTIAL_CLOSE:
        return (o.state != INACTIVE and r.state != INACTIVE
                and not (o.did_close and r.did_close)
                and o.state != RESET and r.state != RESET)
    # EXPIRE: periodic check for connections that are done but never said so
    if conn.last + cfg.tcp_connection_linger < when:
        if o.did_close or r.did_close:
            if ((o.did_close and r.did_close) or RESET in (o.state, r.state)
                    or INACTIVE in (o.state, r.state)):
                return True
        if o.state == INACTIVE and r.state == INACTIVE:
            return True
    conn.add_timer(when + cfg.tcp_session_timer, EXPIRE)
    return False


def expire_may_remove(conn) -> bool:
    """Whether a pending EXPIRE timer could remove the connection (else it just re-arms)."""
    o, r = conn.tcp.orig, conn.tcp.resp
    return conn.tcp.is_active and (o.did_close or r.did_close
                                   or (o.state == INACTIVE and r.state == INACTIVE))


def conn_state(tcp: TcpState, history: str) -> str:
    """Zeek's conn_state for TCP (base/protocols/conn/main.zeek)."""
    os_, rs = tcp.orig.state, tcp.resp.state
    o_inactive = os_ in (INACTIVE, PARTIAL)
    r_inactive = rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        if os_ in (SYN_SENT, SYN_ACK_SENT) or (
                os_ == RESET and tcp.orig.size() == 0 and tcp.resp.size() == 0):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os_ == RESET:
        if r_inactive:
            return "RSTOS0" if _rstos0(history) else "OTH"
        return "RSTO"
    if rs == CLOSED and os_ == CLOSED:
        return "SF"
    if os_ == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == SYN_SENT and rs == INACTIVE:
        return "S0"
    if os_ == ESTABLISHED and rs == ESTABLISHED:
        return "S1"
    return "OTH"


def _rstos0(history: str) -> bool:
    # /\^?S[^HAFGIQ]*R.*/ : orig sent a SYN then a RST, the responder never answered.
    h = history[1:] if history.startswith("^") else history
    if not h.startswith("S"):
        return False
    for ch in h[1:]:
        if ch == "R":
            return True
        if ch in "HAFGIQ":
            return False
    return False
