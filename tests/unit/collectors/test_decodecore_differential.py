"""The compiled decoder (collectors/capture/decoding/kernel.py + fragments.py) against the
per-packet reference (decoding/reference.SlowDecoder): the same rows, column for column, on
every vendored capture and on random frames (hypothesis) - truncated, tagged, tunnelled,
fragmented."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.capture.decoding import packets as D
from collectors.capture.decoding.compiled import CompiledDecoder
from collectors.capture.decoding.reference import SlowDecoder
from collectors.capture.sources.pcap import RecordBatch, open_records
from tests.datafiles import captures

CAPTURES = captures()
FIELDS = tuple(D.Packets.__dataclass_fields__)


def assert_same_rows(batches, compiled: CompiledDecoder, reference: SlowDecoder) -> int:
    """Decode every batch both ways; returns how many records the compiled path decoded."""
    own = 0
    for batch in batches:
        ours, n_slow = compiled.decode(batch)
        theirs, _ = reference.decode(batch, np.arange(len(batch)))
        own += len(batch) - n_slow
        for name in FIELDS:
            a, b = getattr(ours, name), getattr(theirs, name)
            assert a.shape == b.shape, name
            bad = np.flatnonzero((a != b).reshape(len(a), -1).any(axis=1))
            assert not bad.size, (f"{name} differs at rows {bad[:5].tolist()}: "
                                  f"{a[bad[:3]].tolist()} != {b[bad[:3]].tolist()}")
    assert compiled.fragments_seen == reference.fragments_seen
    return own


@pytest.mark.parametrize("chunk", [8 << 20, 1 << 16])
def test_same_rows_as_the_reference_on_shared_captures(chunk):
    # Small chunks put the fragments of one datagram into different batches.
    own = total = 0
    for path in CAPTURES:
        batches = list(open_records(str(path), chunk))
        total += sum(len(b) for b in batches)
        own += assert_same_rows(batches, CompiledDecoder(), SlowDecoder())
    assert own > 0.99 * total       # the Python path is the exception, not the rule


def test_fragmented_datagram_reassembled_once_across_batches():
    first, second = _v4_fragments(ident=7, proto=17, payload=_udp(5353, 53, bytes(2000)))
    compiled = CompiledDecoder()
    a, _ = compiled.decode(_batch([first], [1.0]))
    b, _ = compiled.decode(_batch([second], [1.5]))
    assert a.status.tolist() == [D.FRAG_HELD]
    assert b.status.tolist() == [D.OK] and b.dport.tolist() == [53]
    assert b.iplen.tolist() == [20 + 8 + 2000] and b.paylen.tolist() == [2000]
    assert compiled.fragments_seen == 2 and len(compiled.store) == 0


def test_full_fragment_store_drops_its_oldest_datagram_like_the_reference():
    halves = [_v4_fragments(ident, 6, _tcp(0x02) + bytes(28)) for ident in range(5)]
    frames = [h[0] for h in halves] + [h[1] for h in halves[::-1]]  # firsts, then seconds 4..0
    batch = _batch(frames, [float(t) for t in range(len(frames))])
    assert_same_rows([batch], CompiledDecoder(max_fragments=3), SlowDecoder(max_fragments=3))
    rows, _ = CompiledDecoder(max_fragments=3).decode(batch)
    # datagrams 0 and 1 were dropped when 3 and 4 arrived: 4, 3 and 2 complete, 1 and 0 wait
    assert rows.status[5:].tolist() == [D.OK] * 3 + [D.FRAG_HELD] * 2


@pytest.mark.parametrize("pieces, completes", [(100, True), (200, False)])
def test_datagram_in_too_many_pieces_is_never_completed(pieces, completes):
    # More than MAX_PIECES fragments of one datagram is an attack shape, not IP traffic.
    payload = _udp(1, 2, bytes(8 * pieces - 8))
    frames = [_ether(0x0800) + _v4(17, payload[8 * k:8 * k + 8], 9,
                                   k | (0x2000 if k < pieces - 1 else 0))
              for k in range(pieces)]
    batch = _batch(frames, [1.0] * pieces)
    assert_same_rows([batch], CompiledDecoder(), SlowDecoder())
    rows, _ = CompiledDecoder().decode(batch)
    assert (rows.status[-1] == D.OK) == completes


# --- random frames -------------------------------------------------------------------------------
def _batch(frames: list[bytes], times: list[float], linktypes: list[int] | None = None):
    data = b"".join(frames)
    offset = np.cumsum([0] + [len(f) for f in frames[:-1]]).astype(np.int64)
    caplen = np.array([len(f) for f in frames], np.int64)
    links = np.array(linktypes or [1] * len(frames), np.int32)
    return RecordBatch(np.frombuffer(data, np.uint8), offset, caplen, caplen.copy(),
                       np.array(times, np.float64), links)


def _ether(ethertype: int, tags: int = 0) -> bytes:
    head = bytes(range(12))
    for _ in range(tags):
        head += struct.pack("!HH", 0x8100, 5)
    return head + struct.pack("!H", ethertype)


def _v4(proto: int, body: bytes, ident: int = 1, frag: int = 0, total: int | None = None,
        src: bytes = b"\x0a\x00\x00\x01", dst: bytes = b"\x0a\x00\x00\x02") -> bytes:
    total = 20 + len(body) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, ident, frag, 64, proto, 0,
                       src, dst) + body


def _v4_fragments(ident: int, proto: int, payload: bytes) -> tuple[bytes, bytes]:
    cut = (len(payload) // 2) & ~7
    return (_ether(0x0800) + _v4(proto, payload[:cut], ident, 0x2000),
            _ether(0x0800) + _v4(proto, payload[cut:], ident, cut // 8))


def _v6(nh: int, body: bytes, plen: int | None = None) -> bytes:
    plen = len(body) if plen is None else plen
    return struct.pack("!IHBB16s16s", 0x60000000, plen & 0xFFFF, nh, 64,
                       b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01",
                       b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02") + body


def _tcp(flags: int, doff: int = 5, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, 80, 1000, 2000, doff << 4, flags, 512, 0, 0) + \
        bytes(max(0, doff * 4 - 20)) + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


transports = st.one_of(
    st.tuples(st.just(6), st.builds(_tcp, st.integers(0, 255), st.integers(0, 15),
                                    st.binary(max_size=40))),
    st.tuples(st.just(17), st.builds(_udp, st.sampled_from([53, 3544, 5000, 40000]),
                                     st.sampled_from([53, 123, 3544, 8080]),
                                     st.binary(max_size=60))),
    st.tuples(st.sampled_from([1, 58]), st.binary(min_size=0, max_size=24)),
    st.tuples(st.sampled_from([47, 50, 59, 132]), st.binary(max_size=24)),
)


@st.composite
def frames(draw):
    """One frame: a link layer, an IP packet (maybe a fragment, maybe with IPv6 extension
    headers or a Teredo-looking payload), cut at a random length."""
    proto, body = draw(transports)
    if draw(st.booleans()):
        if draw(st.booleans()):
            body = body + _v6(17, _udp(1, 2, b"inner"))     # Teredo-shaped UDP payload
        frag = draw(st.sampled_from([0, 0, 0x2000, 1, 2, 0x2001, 0x4000]))
        ip = _v4(proto, body, draw(st.integers(1, 3)), frag,
                 draw(st.one_of(st.none(), st.integers(0, 120))))
        ethertype = 0x0800
    else:
        ext = draw(st.sampled_from([b"", b"hop", b"frag", b"hopfrag"]))
        nh, head = proto, b""
        if "frag" in ext.decode():
            offset = draw(st.sampled_from([0, 1, 2]))
            more = draw(st.booleans())
            head = struct.pack("!BBHI", nh, 0, offset << 3 | more, draw(st.integers(1, 3)))
            nh = 44
        if ext.startswith(b"hop"):
            head = struct.pack("!BB6x", nh, 0) + head
            nh = 0
        ip = _v6(nh, head + body, draw(st.one_of(st.none(), st.integers(0, 120))))
        ethertype = 0x86DD
    link = draw(st.sampled_from([1, 1, 1, 101, 0, 113, 276, 147]))
    if link == 1:
        ether = draw(st.sampled_from([ethertype, ethertype, 0x0806, 0x8847, 0x8864, 0x8903]))
        inner = ip
        if ether == 0x8847:             # MPLS: one to three labels, bottom of stack last
            labels = draw(st.integers(1, 3))
            inner = b"".join(struct.pack("!I", 16 << 12 | (k == labels - 1) << 8 | 64)
                             for k in range(labels)) + ip
        elif ether == 0x8864:           # PPPoE session header, then the PPP protocol
            ppp = {0x0800: 0x0021, 0x86DD: 0x0057}[ethertype]
            inner = struct.pack("!BBHHH", 0x11, 0, 1, len(ip) + 2,
                                draw(st.sampled_from([ppp, ppp, 0xC021]))) + ip
        elif ether == 0x8903:           # FabricPath: 2 more bytes, then an Ethernet frame
            inner = b"\x00\x00" + _ether(ethertype) + ip
        frame = _ether(ether, draw(st.integers(0, 3))) + inner
    elif link == 101:
        frame = ip
    elif link == 0:
        frame = b"\x02\x00\x00\x00" + ip
    elif link == 113:
        frame = bytes(14) + struct.pack("!H", ethertype) + ip
    elif link == 276:
        frame = struct.pack("!H", ethertype) + bytes(18) + ip
    else:
        frame = ip
    cut = draw(st.integers(0, len(frame)))
    return frame[:cut] if draw(st.booleans()) else frame, link


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), min_size=1, max_size=30), st.integers(1, 30))
def test_same_rows_as_the_reference_on_random_frames(items, split):
    frames_, links = [f for f, _ in items], [lt for _, lt in items]
    times = [1.0 + 0.5 * k for k in range(len(frames_))]
    batches = [_batch(frames_[k:k + split], times[k:k + split], links[k:k + split])
               for k in range(0, len(frames_), split)]
    assert_same_rows(batches, CompiledDecoder(max_fragments=4, fragment_timeout=3.0),
                     SlowDecoder(max_fragments=4, fragment_timeout=3.0))
