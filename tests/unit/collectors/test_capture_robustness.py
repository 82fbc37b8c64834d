"""Readers and decoders never raise on bad input; malformed packets are counted."""
from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture import iter_flow_documents, iter_flows
from collectors.capture.sources.pcap import pcap_offsets, walk_offsets, open_records
from watchkeeper.networks import InternalNetworks

GOOD = (b"\x00" * 12 + b"\x08\x00" + bytes.fromhex("45000028000100004006") + b"\x00\x00"
        + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack("!HHIIBBHHH", 1, 2, 0, 0, 0x50, 2,
                                                           0, 0, 0))


def write_pcap(path, frames, linktype=1, order="<"):
    with open(path, "wb") as fh:
        fh.write(struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            fh.write(struct.pack(order + "IIII", 1_700_000_000 + i, 1000 * i, len(frame),
                                 len(frame) + i % 3))
            fh.write(frame)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=25),
       st.sampled_from([1, 101, 113, 0, 276, 999]))
def test_random_frames_never_raise(tmp_path_factory, frames, linktype):
    path = tmp_path_factory.mktemp("fuzz") / "f.pcap"
    write_pcap(path, frames, linktype)
    flows = iter_flows([str(path)])
    records = list(flows)
    s = flows.stats
    assert s.packets == len(frames)
    assert s.malformed + s.non_ip + s.fragments + s.bad_checksum <= len(frames) * 2
    assert all(r.orig_pkts + r.resp_pkts <= len(frames) for r in records)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD)), st.binary(max_size=8))
def test_truncated_headers_are_counted_as_malformed(tmp_path_factory, cut, junk):
    path = tmp_path_factory.mktemp("trunc") / "t.pcap"
    frame = GOOD[:cut] + junk if cut < 54 else GOOD
    write_pcap(path, [frame, GOOD])
    flows = iter_flows([str(path)])
    list(flows)
    assert flows.stats.packets == 2
    if cut < 54 - 20:       # the IP header itself is cut: must be malformed or non-IP
        assert flows.stats.malformed + flows.stats.non_ip >= 1


def test_truncated_file_and_garbage_file(tmp_path):
    good = tmp_path / "g.pcap"
    write_pcap(good, [GOOD] * 3)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-10])
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    flows = iter_flows([str(cut), str(junk)])
    records = list(flows)
    assert flows.stats.packets == 2 and flows.stats.malformed == 1
    assert flows.stats.file_errors == 1 and records[0].orig_pkts == 2


def test_compiled_record_walk_matches_loop(tmp_path):
    rng = np.random.default_rng(1)
    frames = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in
              rng.integers(14, 1500, 6000)]
    path = tmp_path / "big.pcap"
    write_pcap(path, frames)
    buf = path.read_bytes()[24:]
    fast, end_fast = pcap_offsets(buf, "<", 65535)
    slow, end_slow = walk_offsets(buf, "<", len(buf))
    assert end_fast == end_slow and np.array_equal(fast, slow)
    assert sum(len(b) for b in open_records(str(path), chunk_size=1 << 20)) == 6000


def test_a_big_endian_capture_reads_as_its_little_endian_twin(tmp_path):
    rng = np.random.default_rng(2)
    frames = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in
              rng.integers(14, 1500, 3000)]
    batches = {}
    for order in "<>":
        path = tmp_path / f"{'le' if order == '<' else 'be'}.pcap"
        write_pcap(path, frames, order=order)
        batches[order] = list(open_records(str(path), chunk_size=1 << 18))
    assert len(batches["<"]) == len(batches[">"]) > 5
    for little, big in zip(batches["<"], batches[">"]):
        for column in ("offset", "caplen", "wirelen", "ts"):
            assert np.array_equal(getattr(little, column), getattr(big, column))
    big = np.concatenate([b.ts for b in batches[">"]])
    assert big[1] == 1_700_000_001.001 and len(big) == 3000


def test_flow_documents_follow_the_event_model(tmp_path):
    from watchkeeper import schema
    path = tmp_path / "d.pcap"
    write_pcap(path, [GOOD])
    docs = list(iter_flow_documents([str(path)], "sensor-1", InternalNetworks()))
    assert len(docs) == 1
    schema.validate(docs[0])
    assert docs[0]["network"]["community_id"].startswith("1:")
    assert docs[0]["watchkeeper"]["flow"]["conn_state"] == "S0"
