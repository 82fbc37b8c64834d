"""The compiled kernels of packet capture: ahead-of-time built when available, else JIT.

`make install` builds `collectors/_native` (native_build.py): the numba kernels compiled
ahead of time into an extension module, so a capture process loads neither numba nor LLVM
(~140 MiB less resident memory) and compiles nothing at start. When that module is missing,
or its stamp says it was built from other sources, the same kernels are compiled by numba at
run time (collectors/jit.py) - slower to start, same results. `WATCHKEEPER_NATIVE=jit`
forces the JIT path (tests of both).

The kernels are resolved on first use: importing this module costs nothing.
"""
from __future__ import annotations

import hashlib
import os
from functools import cache
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
STAMP = HERE / "_native.stamp"
# Every module whose code ends up compiled: an edit to any of them retires old builds.
CAPTURE = HERE.parent
SOURCES = ("kernels/jit.py", "kernels/native.py", "kernels/build.py", "decoding/packets.py",
           "decoding/kernel.py", "decoding/fragments.py", "decoding/fragments_kernel.py",
           "sources/pcapwalk.py", "flows/compiled/history.py", "flows/compiled/index.py",
           "flows/compiled/kernel.py", "flows/compiled/layout.py", "flows/compiled/tcp.py")
KERNELS = ("decode_records", "process", "sweep", "flush", "evict", "rebuild", "walk_pcap",
           "walk_tpacket")


@cache
def source_hash() -> str:
    digest = hashlib.sha256(metadata.version("numba").encode())
    for name in SOURCES:
        digest.update((CAPTURE / name).read_bytes())
    return digest.hexdigest()[:16]


@cache
def kernels() -> SimpleNamespace:
    """The kernel functions, with `kind` "aot" or "jit"."""
    if os.environ.get("WATCHKEEPER_NATIVE") != "jit" and _stamp() == source_hash():
        try:
            from collectors.capture.kernels import _native
        except ImportError:
            pass
        else:
            return SimpleNamespace(kind="aot", **{k: getattr(_native, k) for k in KERNELS})
    return jit_kernels()


def jit_kernels() -> SimpleNamespace:
    from collectors.capture.decoding.kernel import decode_records
    from collectors.capture.flows.compiled.index import rebuild
    from collectors.capture.flows.compiled.kernel import evict, flush, process, sweep
    from collectors.capture.sources.pcapwalk import walk_pcap, walk_tpacket
    return SimpleNamespace(kind="jit", decode_records=decode_records, process=process,
                           sweep=sweep, flush=flush, evict=evict, rebuild=rebuild,
                           walk_pcap=walk_pcap, walk_tpacket=walk_tpacket)


def _stamp() -> str | None:
    try:
        return STAMP.read_text().strip()
    except OSError:
        return None


def __getattr__(name: str):
    # `native.process(...)` etc.: the kernel of that name from the chosen build
    if name in KERNELS:
        return getattr(kernels(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
