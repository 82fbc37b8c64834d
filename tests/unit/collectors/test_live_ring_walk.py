"""The compiled walk over a TPACKET_V3 ring block
(collectors/capture/sources/pcapwalk.walk_tpacket), on hand-built blocks: the kernel's layout,
and a block whose last header runs past its end."""
from __future__ import annotations

import struct

import numpy as np

from collectors.capture.kernels import native

HEADER = 48          # a block descriptor's size: the first frame header starts after it


def frame_header(next_offset: int, sec: int, nsec: int, snap: int, length: int,
                 mac: int = 32) -> bytes:
    # struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net, ...
    return struct.pack("<IIIIIIHH", next_offset, sec, nsec, snap, length, 1, mac, mac + 14) \
        + bytes(mac - 28)


def block(frames: list[tuple[bytes, int, int, int]]) -> np.ndarray:
    """frames: (bytes, wire length, sec, nsec) laid out one after another, 16-aligned."""
    out = bytearray(HEADER)
    for k, (data, wire, sec, nsec) in enumerate(frames):
        size = (32 + len(data) + 15) & ~15
        nxt = 0 if k == len(frames) - 1 else size
        record = frame_header(nxt, sec, nsec, len(data), wire) + data
        out += record + bytes(size - len(record))
    return np.frombuffer(bytes(out), np.uint8)


def test_frames_of_a_block():
    frames = [(b"\xaa" * 60, 60, 1_700_000_000, 5), (b"\xbb" * 1514, 9000, 1_700_000_001, 0),
              (b"\xcc" * 42, 42, 1_700_000_001, 999_999_999)]
    data = block(frames)
    offs, caplen, wirelen, ts = native.walk_tpacket(data, HEADER, len(frames))
    assert caplen.tolist() == [60, 1514, 42] and wirelen.tolist() == [60, 9000, 42]
    assert [bytes(data[o:o + 1]) for o in offs] == [b"\xaa", b"\xbb", b"\xcc"]
    assert ts.tolist() == [1_700_000_000 + 5 / 1e9, 1_700_000_001.0,
                           1_700_000_001 + 999_999_999 / 1e9]


def test_a_header_past_the_block_end_stops_the_walk():
    data = block([(b"\xaa" * 60, 60, 1, 0), (b"\xbb" * 60, 60, 2, 0)])
    cut = data[:len(data) - 70]             # the second frame's bytes are not all there
    offs, caplen, _, _ = native.walk_tpacket(cut, HEADER, 2)
    assert caplen.tolist() == [60]
    offs, _, _, _ = native.walk_tpacket(data, HEADER, 5)      # more claimed than present
    assert len(offs) == 2
