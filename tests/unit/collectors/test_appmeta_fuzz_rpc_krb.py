"""Hostile payloads into the DCE/RPC and Kerberos parsers: random bytes, and real messages with
bytes flipped or cut. They return a result or raise AppParseError (counted as malformed by the
tracker), never anything else."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.dcerpc import DceRpcTracker
from collectors.capture.appmeta.errors import AppParseError
from collectors.capture.appmeta.kerberos import parse_kerberos

from .test_appmeta_dcerpc import FID_A, SVCCTL, bind, request, smb1_write_andx, smb2_ioctl, \
    smb2_write
from .test_appmeta_kerberos import as_rep, as_req, krb_error

SEEDS = [smb2_write(FID_A, bind([(0, SVCCTL)])), smb2_ioctl(FID_A, request(0, 12)),
         smb1_write_andx(0x4001, request(0, 24)), bind([(1, SVCCTL)]), request(1, 12)]
KRB = [as_req("alice"), krb_error(24, "alice"), as_rep("alice")]


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    out = bytearray(data)
    for pos, value in flips:
        out[pos % len(out)] = value
    return bytes(out[:max(1, cut % (len(out) + 1))])


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SEEDS) | st.binary(max_size=300),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.integers(0, 10**6), st.booleans())
def test_dcerpc_parser_never_raises_unexpectedly(seed, flips, cut, smb):
    tracker = DceRpcTracker()
    tracker.payload(b"k", SEEDS[0], smb=True)             # a bound svcctl context to hit
    try:
        tracker.payload(b"k", _mutate(seed, flips, cut) if seed else b"\x00", smb)
    except AppParseError:
        pass


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(KRB) | st.binary(max_size=300),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.integers(0, 10**6), st.booleans())
def test_kerberos_parser_never_raises_unexpectedly(seed, flips, cut, tcp):
    payload = _mutate(seed, flips, cut) if seed else b"\x6a"
    try:
        parse_kerberos((b"\x00\x00\x01\x00" + payload) if tcp else payload, tcp)
    except AppParseError:
        pass
