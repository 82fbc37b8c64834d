"""Row layouts of the compiled flow table: one numpy structured row per flow, and the
snapshot row the table emits for each record (final or interim).

Endpoint pairs are indexed 0 = originator, 1 = responder; a flip swaps them. The meanings
are those of flows/flow.py and flows/tcpstate.py (the reference path)."""
from __future__ import annotations

import numpy as np

from collectors.capture.flows.flow import FlowConfig

HISTORY = 24        # letters kept per flow; more are counted in `history_overflow`
TIMERS = 6          # pending Zeek timers per flow (at most ~4 are ever armed together)

FLOW = np.dtype([
    ("key", "u8", (5,)),            # canonical (direction-free) key, 40 bytes
    ("start", "f8"), ("last", "f8"), ("interim_at", "f8"),
    ("ip", "u1", (2, 16)),
    ("port", "u2", (2,)),
    ("pkts", "u4", (2,)), ("ipb", "u8", (2,)), ("pay", "u8", (2,)),
    # TCP endpoints (sequence numbers unwrapped to 64 bits)
    ("e_start", "i8", (2,)), ("e_last", "i8", (2,)), ("e_ack", "i8", (2,)),
    ("h_syn", "i8", (2,)), ("h_fin", "i8", (2,)), ("h_rst", "i8", (2,)),
    ("rxmit", "u4", (2,)), ("rxnext", "u4", (2,)),
    ("e_state", "u1", (2,)), ("e_prev", "u1", (2,)), ("e_closed", "u1", (2,)),
    ("e_finseen", "u1", (2,)),
    ("t_when", "f8", (TIMERS,)), ("t_kind", "u1", (TIMERS,)), ("n_timers", "u1"),
    ("history", "u1", (HISTORY,)), ("hlen", "u1"), ("seen", "u4"),
    ("proto", "u1"), ("v6", "u1"), ("tunnel", "u1"), ("alive", "u1"),
    ("inact_on", "u1"), ("active", "u1"), ("lite_shape", "u1"), ("reported", "u1"),
    ("hist_over", "u1"),
])

RECORD = np.dtype([
    ("key", "u8", (5,)),
    ("start", "f8"), ("last", "f8"),
    ("ip", "u1", (2, 16)), ("port", "u2", (2,)),
    ("pkts", "u4", (2,)), ("ipb", "u8", (2,)), ("bytes", "u8", (2,)),
    ("history", "u1", (HISTORY,)), ("hlen", "u1"),
    ("proto", "u1"), ("v6", "u1"), ("tunnel", "u1"), ("state", "u1"), ("final", "u1"),
    ("evicted", "u1"),
])

CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH",
               "SHR", "OTH")

# Key index slots (index.py): no row / a deleted row.
EMPTY, TOMB = -1, -2

# Config vector indices (numba takes plain arrays).
(C_TCP_INACT, C_UDP_INACT, C_ICMP_INACT, C_OTHER_INACT, C_ATTEMPT, C_CLOSE, C_RESET,
 C_PARTIAL, C_SESSION, C_SYN_TIMEOUT, C_LINGER, C_DNS, C_EARLY, C_ACTIVE) = range(14)

# Counters kept by the kernel (one int64 array).
(M_LIVE, M_OUT, M_EVICTED, M_HIST_OVERFLOW, M_TIMER_OVERFLOW, M_TOMBSTONES, M_HIGH,
 M_NFREE, M_NEED_EVICT) = range(9)


def config_vector(config: FlowConfig) -> np.ndarray:
    c = config
    return np.array([c.tcp_inactivity_timeout, c.udp_inactivity_timeout,
                     c.icmp_inactivity_timeout, c.other_inactivity_timeout, c.tcp_attempt_delay,
                     c.tcp_close_delay, c.tcp_reset_delay, c.tcp_partial_close_delay,
                     c.tcp_session_timer, c.tcp_syn_timeout, c.tcp_connection_linger,
                     c.dns_session_timeout, c.early_report, c.active_timeout], np.float64)


def port_tables(config: FlowConfig) -> np.ndarray:
    """(3, 65536) bool: likely server ports for TCP (row 0) and UDP (row 1); DNS ports (2)."""
    from collectors.capture.flows.flow import DNS_PORTS
    table = np.zeros((3, 65536), np.uint8)
    for proto, port in config.likely_server_ports:
        if proto in (6, 17):
            table[0 if proto == 6 else 1, port] = 1
    table[2, list(DNS_PORTS)] = 1
    return table
