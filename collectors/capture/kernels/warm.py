"""Load every capture kernel before traffic arrives, and check it runs.

With the ahead-of-time build (kernels/native.py) this takes milliseconds. On the JIT
fallback numba compiles on first call (~40 s on 2 cores on a cold cache): live capture runs
this before it reports ready, so no packet waits on the compiler.

    python -m collectors.capture.kernels.warm
"""
from __future__ import annotations

import time

from collectors.capture.flows.flow import FlowConfig


def warm() -> float:
    """Run a few packets of every shape through the compiled paths; seconds taken."""
    import numpy as np

    from collectors.capture.decoding import packets as D
    from collectors.capture.decoding.compiled import CompiledDecoder
    from collectors.capture.flows.compiled import CompiledFlowTable
    from collectors.capture.sources.pcap import RecordBatch, pcap_offsets
    started = time.perf_counter()
    pcap_offsets(bytes(64), "<", 65535)
    pcap_offsets(bytes(64), ">", 65535)
    # an IPv4 first fragment and its last: the decoder's fragment path too
    head = bytes(12) + b"\x08\x00"
    ip = b"\x45\x00\x00\x24\x00\x01%s\x40\x11\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02"
    frames = head + ip % b"\x20\x00" + bytes(16), head + ip % b"\x00\x02" + bytes(16)
    data = np.frombuffer(b"".join(frames), np.uint8)
    two = np.array([0, len(frames[0])], np.int64)
    size = np.array([len(f) for f in frames], np.int64)
    CompiledDecoder().decode(RecordBatch(data, two, size, size, np.array([1.0, 1.1]),
                                         np.ones(2, np.int32)))
    p = D.empty_packets(4)
    p.ts[:] = [1.0, 1.1, 1.2, 400.0]
    p.proto[:] = [6, 6, 17, 1]
    p.flags[:] = [0x02, 0x12, 0, 0]
    p.src[:, 15], p.dst[:, 15] = 1, 2
    p.sport[:], p.dport[:] = [40000, 80, 5353, 8], [80, 40000, 53, 0]
    p.src[2:, 10:12] = p.dst[2:, 10:12] = 0xFF
    table = CompiledFlowTable(FlowConfig(max_flows=2))     # reaches eviction too
    table.process(p)
    table.advance(500.0)
    table.flush_columns().records()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"capture kernels (decoder, flow table) ready in {warm():.1f} s")
