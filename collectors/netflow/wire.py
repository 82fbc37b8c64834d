"""Structural checks netflume leaves to the caller, read straight off the datagram.

netflume decodes what it can and stops quietly at a broken set header; we want such a
datagram counted as malformed and dead-lettered. It also ignores IPFIX template
withdrawals (a template record with field count 0), which we honour. Both need one walk
over the set headers, which this module does without decoding any record.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from collectors.netflow import fields as ie

V5_HEADER, V5_RECORD, V5_MAX_RECORDS = 24, 48, 30
V9_HEADER, IPFIX_HEADER = 20, 16
WITHDRAW_ALL = -1  # template id in a Withdrawal: every template of that set's kind


@dataclass
class Withdrawal:
    template_id: int     # or WITHDRAW_ALL
    options: bool


@dataclass
class SetScan:
    """What the set walk found: a reason the datagram is malformed, and withdrawals."""
    problem: str | None = None
    withdrawals: list[Withdrawal] = field(default_factory=list)


def check_v5(data: bytes) -> str | None:
    """v5 is fixed-size: the header's record count must match the datagram."""
    count = struct.unpack_from("!H", data, 2)[0] if len(data) >= 4 else 0
    if len(data) < V5_HEADER:
        return "v5: datagram shorter than the 24-byte header"
    if not 1 <= count <= V5_MAX_RECORDS:
        return f"v5: record count {count} outside 1..{V5_MAX_RECORDS}"
    if len(data) < V5_HEADER + count * V5_RECORD:
        return f"v5: truncated: header promises {count} records, {len(data)} bytes arrived"
    return None


def scan_sets(data: bytes, version: int) -> SetScan:
    """Walk v9/IPFIX set headers: every set must fit, and the walk must end on the message end."""
    header = IPFIX_HEADER if version == 10 else V9_HEADER
    if len(data) < header:
        return SetScan(f"v{version}: datagram shorter than the {header}-byte header")
    end = len(data)
    if version == 10:
        declared = struct.unpack_from("!H", data, 2)[0]
        if declared != len(data):
            return SetScan(f"ipfix: message length {declared} but {len(data)} bytes arrived")
    scan, off = SetScan(), header
    while end - off >= 4:
        set_id, set_len = struct.unpack_from("!HH", data, off)
        if set_len < 4 or off + set_len > end:
            scan.problem = f"v{version}: set {set_id} at offset {off} has bad length {set_len}"
            return scan
        if version == 10 and set_id in (ie.IPFIX_TEMPLATE_SET, ie.IPFIX_OPTIONS_SET):
            scan.withdrawals += _withdrawals(data, off + 4, off + set_len, set_id)
        off += set_len
    if end - off and any(data[off:end]):
        scan.problem = f"v{version}: {end - off} stray bytes after the last set"
    return scan


def _withdrawals(data: bytes, off: int, end: int, set_id: int) -> list[Withdrawal]:
    """Template records with field count 0 withdraw a template (RFC 7011 §8.1)."""
    found, options = [], set_id == ie.IPFIX_OPTIONS_SET
    while end - off >= 4:
        tid, count = struct.unpack_from("!HH", data, off)
        off += 4
        if count == 0:
            found.append(Withdrawal(WITHDRAW_ALL if tid == set_id else tid, options))
            continue
        off += 2 if options else 0           # scope field count
        for _ in range(count):
            if end - off < 4:
                return found
            element = struct.unpack_from("!H", data, off)[0]
            off += 8 if element & 0x8000 else 4  # enterprise bit: 4 more bytes of PEN
    return found
