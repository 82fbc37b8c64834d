"""Packet capture: packets -> Zeek-grade flows and application events (docs/architecture.md).

    sources/    where record batches come from: pcap/pcapng files, a live TPACKET ring
    decoding/   headers -> `Packets` columns: reference (numpy + Python) and compiled
    flows/      flow tables behind one `FlowTable` protocol: reference (Python) and compiled
    appmeta/    DNS, HTTP, TLS, SSH metadata from payloads
    kernels/    the numba kernels: JIT options, ahead-of-time build, selection, warm-up
    documents/  records -> ECS documents
    meter.py    the flow meter that drives them (`Capture`, `iter_flows`, ...)

The meter's public names are importable from here; loaded on first use, so importing
`collectors.capture.settings` costs no numpy.
"""
from __future__ import annotations

import importlib

__all__ = ["Capture", "CaptureStats", "FlowConfig", "capture_document", "file_batches",
           "iter_flow_columns", "iter_flow_documents", "iter_flow_lines", "iter_flows"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("collectors.capture.meter"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
