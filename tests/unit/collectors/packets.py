"""Hand-built captures for the capture tests: scapy packets -> pcap -> record batches."""
from __future__ import annotations

import numpy as np
import pytest
from scapy.all import Ether, wrpcap

from collectors.capture.sources.pcap import RecordBatch, open_records

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def write_pcap(tmp_path, packets, name: str = "t.pcap"):
    """packets: (time, scapy packet) pairs; packets without Ethernet get one."""
    frames = []
    for t, pkt in packets:
        frame = pkt if isinstance(pkt, Ether) else ETHER / pkt
        frame.time = t
        frames.append(frame)
    path = tmp_path / name
    wrpcap(str(path), frames)
    return path


def batches(tmp_path, packets, name: str = "t.pcap") -> list[RecordBatch]:
    return list(open_records(str(write_pcap(tmp_path, packets, name))))


def quiet(clock: float) -> RecordBatch:
    """An empty live batch: no packet, only the source's clock."""
    z = np.zeros(0, np.int64)
    return RecordBatch(np.zeros(0, np.uint8), z, z, z, np.zeros(0), np.zeros(0, np.int32),
                       clock=clock)


@pytest.fixture(params=["compiled", "reference"])
def either_engine(request, monkeypatch):
    """Run a capture test on both engines: the compiled decoder and flow table, and their
    Python references."""
    from collectors.capture import meter as capture
    from collectors.capture.decoding.compiled import CompiledDecoder
    from collectors.capture.flows.compiled import CompiledFlowTable
    from collectors.capture.flows.reference import ReferenceFlowTable as FlowTable
    from collectors.capture.decoding.reference import ReferenceDecoder
    compiled = request.param == "compiled"
    monkeypatch.setattr(capture, "make_table", CompiledFlowTable if compiled else FlowTable)
    decoder = CompiledDecoder if compiled else ReferenceDecoder
    monkeypatch.setattr(capture, "make_decoder", lambda config: decoder(config.verify_checksums))
    return request.param
