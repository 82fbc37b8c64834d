"""Streaming pcap / pcapng readers that hand out *batches* of records, never single packets.

A batch is one contiguous byte buffer plus numpy arrays (offset, caplen, wirelen, time,
link type) describing the records inside it, so the decoder can parse headers of thousands
of packets with a handful of vectorised numpy operations. Memory stays bounded: a file is
read in `chunk_size` pieces whatever its size.

Classic pcap record boundaries are found by a compiled walk over the record headers
(`pcapwalk.walk_pcap`, compiled; the Python `walk_offsets` is its reference). pcapng (rarer,
usually smaller) is walked block by block in Python.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from collectors.capture.kernels import native

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
MAX_RECORD = 262144 + 16          # largest snaplen libpcap writes, plus header
# Bytes read per batch. 2 MiB batches keep a batch's bytes and decoded columns in cache:
# on bench/capture.py, 8 MiB -> 2 MiB took the flow meter from 1.34 s to 1.18 s and its peak
# RSS from 250 to 221 MiB.
CHUNK = 2 << 20



class CaptureFormatError(ValueError):
    """The file is not a pcap/pcapng capture we can read (or its header is corrupt)."""


@dataclass
class RecordBatch:
    """Records of one chunk: `data[offset[i]:offset[i]+caplen[i]]` is packet i's frame."""
    data: np.ndarray            # uint8 view over the chunk
    offset: np.ndarray          # int64, start of each frame inside `data`
    caplen: np.ndarray          # int64
    wirelen: np.ndarray         # int64
    ts: np.ndarray              # float64 epoch seconds
    linktype: np.ndarray        # int32 per record (pcapng mixes link types)
    truncated_tail: int = 0     # bytes of an incomplete final record (file cut short)
    clock: float | None = None  # live sources: the time the batch was cut; flows idle past
                                # it expire even when no packet arrives (quiet link)

    def __len__(self) -> int:
        return len(self.offset)


def open_records(path: str, chunk_size: int = CHUNK) -> Iterator[RecordBatch]:
    """Yield record batches from a pcap or pcapng file (format sniffed from the magic)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head in PCAP_MAGICS:
            yield from _read_pcap(fh, chunk_size)
        elif len(head) == 4 and struct.unpack("<I", head)[0] == PCAPNG_SHB:
            yield from _read_pcapng(fh, chunk_size)
        else:
            raise CaptureFormatError(f"{path}: not a pcap or pcapng file (magic {head!r})")


# --- classic pcap ------------------------------------------------------------------------------
def _read_pcap(fh: BinaryIO, chunk_size: int) -> Iterator[RecordBatch]:
    header = fh.read(24)
    if len(header) < 24:
        raise CaptureFormatError("pcap global header truncated")
    order, tick = PCAP_MAGICS[header[:4]]
    snaplen, linktype = struct.unpack(order + "II", header[16:24])
    linktype &= 0x0FFFFFFF          # upper bits carry FCS info in some writers
    carry = b""
    buffers = _Buffers(chunk_size + MAX_RECORD)
    while True:
        # read straight behind the carried partial record (no concatenation copy)
        buf = buffers.free()
        buf[:len(carry)] = carry
        with memoryview(buf) as view, view[len(carry):len(carry) + chunk_size] as tail:
            got = fh.readinto(tail)
        size = len(carry) + got
        if not size:
            return
        with memoryview(buf) as view:
            batch, end = _pcap_records(view[:size], order, tick, linktype)
        carry = bytes(buf[end:size])
        if len(batch):
            yield batch
        if not got:
            if carry:   # a final record cut short: report its bytes, don't invent a packet
                yield _empty_batch(len(carry))
            return
        if not len(batch) and len(carry) > MAX_RECORD:
            raise CaptureFormatError("pcap record header corrupt (caplen beyond snaplen)")


class _Buffers:
    """Read buffers used again once nothing refers to them: a fresh 2 MiB buffer per batch is
    faulted in page by page (~0.05 s per GB read on bench/flows_json.py's synthetic capture).
    A batch's arrays are views of its buffer, and a view holds a reference: a buffer whose
    batch is still alive (a consumer kept it) is never overwritten — a new one is made."""

    def __init__(self, size: int, keep: int = 5):
        self.size, self.keep = size, keep
        self.pool: list[bytearray] = []

    def free(self) -> bytearray:
        for buf in self.pool:
            if sys.getrefcount(buf) <= 3:     # the pool, the loop variable, the argument
                return buf
        buf = bytearray(self.size)
        if len(self.pool) < self.keep:
            self.pool.append(buf)
        return buf


def _pcap_records(buf: bytes | bytearray | memoryview, order: str, tick: float,
                  linktype: int) -> tuple[RecordBatch, int]:
    """The *complete* records in `buf` as a batch, and where the next record starts."""
    u8 = np.frombuffer(buf, np.uint8)
    offs, caplen, wirelen, ts, end, bad = native.walk_pcap(u8, order == ">", MAX_RECORD, tick)
    if bad >= 0:
        caplen = struct.unpack_from(order + "I", buf, bad + 8)[0]
        raise CaptureFormatError(f"pcap record at byte {bad} has caplen {caplen}")
    batch = RecordBatch(u8, offs + 16, caplen, wirelen, ts,
                        np.full(offs.size, linktype, np.int32))
    return batch, int(end)


def pcap_offsets(buf: bytes, order: str, snaplen: int = 65535) -> tuple[np.ndarray, int]:
    """Header offsets of all *complete* records in `buf` and where the next record starts."""
    batch, end = _pcap_records(buf, order, 1e-6, 1)
    return batch.offset - 16, end


def walk_offsets(buf: bytes, order: str, n: int) -> tuple[np.ndarray, int]:
    # Plain record walk: used for small buffers and as the fallback of the fast path.
    fmt = struct.Struct(order + "I")
    offs, off = [], 0
    while off + 16 <= n:
        caplen = fmt.unpack_from(buf, off + 8)[0]
        if caplen > MAX_RECORD:
            raise CaptureFormatError(f"pcap record at byte {off} has caplen {caplen}")
        if off + 16 + caplen > n:
            break
        offs.append(off)
        off += 16 + caplen
    return np.asarray(offs, np.int64), off


def _empty_batch(truncated: int) -> RecordBatch:
    z = np.zeros(0, np.int64)
    return RecordBatch(np.zeros(0, np.uint8), z, z, z, np.zeros(0), np.zeros(0, np.int32),
                       truncated_tail=truncated)


# --- pcapng ------------------------------------------------------------------------------------
@dataclass
class _Interface:
    linktype: int
    tick: float


def _read_pcapng(fh: BinaryIO, chunk_size: int) -> Iterator[RecordBatch]:
    state = {"order": "<", "ifaces": []}
    carry = b""
    while True:
        block = fh.read(chunk_size)
        buf = carry + block
        if not buf:
            return
        batch, used = _pcapng_chunk(buf, state)
        carry = buf[used:]
        if len(batch):
            yield batch
        if not block:
            if carry:
                yield _empty_batch(len(carry))
            return


def _pcapng_chunk(buf: bytes, state: dict) -> tuple[RecordBatch, int]:
    offs, caps, wires, tss, links = [], [], [], [], []
    off, n = 0, len(buf)
    while off + 12 <= n:
        if buf[off:off + 4] == b"\x0a\x0d\x0d\x0a":     # SHB: byte order may change here
            state["order"] = "<" if buf[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            state["ifaces"] = []
        order = state["order"]
        btype, blen = struct.unpack_from(order + "II", buf, off)
        if blen < 12 or blen % 4:
            raise CaptureFormatError(f"pcapng block at byte {off} has length {blen}")
        if off + blen > n:
            break
        if btype == 1:
            state["ifaces"].append(_parse_idb(buf, off, blen, order))
        elif btype in (6, 3):
            rec = _parse_packet_block(buf, off, blen, btype, order, state["ifaces"])
            if rec is not None:
                offs.append(rec[0]); caps.append(rec[1]); wires.append(rec[2])
                tss.append(rec[3]); links.append(rec[4])
        off += blen
    u8 = np.frombuffer(buf, np.uint8)
    batch = RecordBatch(u8, np.asarray(offs, np.int64), np.asarray(caps, np.int64),
                        np.asarray(wires, np.int64), np.asarray(tss, np.float64),
                        np.asarray(links, np.int32))
    return batch, off


def _parse_idb(buf: bytes, off: int, blen: int, order: str) -> _Interface:
    linktype = struct.unpack_from(order + "H", buf, off + 8)[0]
    tick = 1e-6
    opt, end = off + 16, off + blen - 4
    while opt + 4 <= end:          # if_tsresol (code 9) changes the timestamp unit
        code, olen = struct.unpack_from(order + "HH", buf, opt)
        if code == 0:
            break
        if code == 9 and olen >= 1:
            res = buf[opt + 4]
            tick = 2.0 ** -(res & 0x7F) if res & 0x80 else 10.0 ** -res
        opt += 4 + ((olen + 3) & ~3)
    return _Interface(linktype, tick)


def _parse_packet_block(buf: bytes, off: int, blen: int, btype: int, order: str,
                        ifaces: list[_Interface]):
    if btype == 3:                 # Simple Packet Block: no timestamp, interface 0
        if not ifaces or blen < 16:
            return None
        wire = struct.unpack_from(order + "I", buf, off + 8)[0]
        cap = min(wire, blen - 16)
        return off + 12, cap, wire, 0.0, ifaces[0].linktype
    if blen < 32:
        return None
    iface, hi, lo, cap, wire = struct.unpack_from(order + "IIIII", buf, off + 8)
    if iface >= len(ifaces) or cap > blen - 32:
        return None                # counted as malformed by the caller (fewer records)
    info = ifaces[iface]
    ts = ((hi << 32) | lo) * info.tick
    return off + 28, cap, wire, ts, info.linktype
