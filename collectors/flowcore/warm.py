"""Compile (or load from numba's cache) every kernel before traffic arrives.

numba compiles on first call; the first call of a cold cache takes ~25 s on 2 cores. `make
install` runs this once, so the cache sits next to the sources, and a live capture runs it
before it reports ready, so no packet waits on the compiler.

    python -m collectors.flowcore.warm
"""
from __future__ import annotations

import time



def warm() -> float:
    """Run a few packets of every shape through the compiled paths; seconds taken."""
    from collectors import decode as D
    from collectors.flowcore import CompiledFlowTable
    from collectors.pcapio import _pcap_offsets
    started = time.perf_counter()
    _pcap_offsets(bytes(64), "<", 65535)
    _pcap_offsets(bytes(64), ">", 65535)
    p = D.empty_packets(4)
    p.ts[:] = [1.0, 1.1, 1.2, 400.0]
    p.proto[:] = [6, 6, 17, 1]
    p.flags[:] = [0x02, 0x12, 0, 0]
    p.src[:, 15], p.dst[:, 15] = 1, 2
    p.sport[:], p.dport[:] = [40000, 80, 5353, 8], [80, 40000, 53, 0]
    p.src[2:, 10:12] = p.dst[2:, 10:12] = 0xFF
    table = CompiledFlowTable()
    table.process(p)
    table.advance(500.0)
    table.flush_columns().records()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"flow-table kernels ready in {warm():.1f} s")
