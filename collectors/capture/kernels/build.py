"""Build `_native` beside this module: the capture kernels compiled ahead of time
(numba.pycc), and the stamp naming the sources they were built from (native.py checks it).

    python -m collectors.capture.kernels.build [--if-stale]  # make install: when sources changed

Each exported function is a thin wrapper around the numba kernel of the same name, compiled
for the argument types the Python side really passes (taken from live example objects, so a
layout change cannot drift from the signature). Built for this machine's CPU, like the JIT.
"""
from __future__ import annotations

import inspect
import sys
import time
import warnings

import numba as nb
import numpy as np

from collectors.capture.kernels import native


def example_args() -> dict[str, tuple]:
    from collectors.capture.decoding import packets as D
    from collectors.capture.decoding.compiled import packet_columns
    from collectors.capture.decoding.fragments import HEADER, FragmentStore
    from collectors.capture.documents import flowjson
    from collectors.capture.flows.compiled.table import CompiledFlowTable
    p = D.empty_packets(1)
    u8 = np.frombuffer(bytes(16), np.uint8)         # capture bytes are read-only buffers
    i64 = np.zeros(1, np.int64)
    return {
        "decode_records": (u8, i64, i64, np.zeros(1, np.int32), np.zeros(1),
                           FragmentStore(1).arrays(), packet_columns(p), np.zeros(1, np.uint8),
                           D.ICMP4_PAIRS, D.ICMP6_PAIRS, np.empty(HEADER, np.uint8),
                           np.empty(5, np.uint64)),
        **CompiledFlowTable().kernel_args(),
        "walk_pcap": (u8, False, 1, 1e-6),
        "walk_tpacket": (u8, 0, 1),     # a ring block, copied out as read-only bytes
        "encode_flows": flowjson.example_args(),
    }


def _wrapper(name: str, kernel):
    # pycc exports Python functions; this one only calls the kernel (no *args in nopython).
    params = ", ".join(inspect.signature(kernel.py_func).parameters)
    scope = {"kernel": kernel}
    exec(f"def {name}({params}):\n    return kernel({params})\n", scope)   # noqa: S102
    return scope[name]


def _release_gil_in_wrappers() -> None:
    """Make pycc's Python wrappers release the GIL around each kernel call, as the JIT's
    `nogil=True` does (kernels/jit.py). pycc has no option for it: it builds its compile flags
    from `numba.pycc.compiler.Flags()`, so that name is pointed at flags with `release_gil`
    set. Without it a kernel holds the GIL for its whole run, and `flows --json` could not
    meter one batch while the documents of the last are written (meter.py, `prefetch`)."""
    import numba.pycc.compiler as pycc_compiler
    base = pycc_compiler.Flags

    class NoGilFlags(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = NoGilFlags


def build() -> float:
    from numba.pycc import CC
    started = time.perf_counter()
    _release_gil_in_wrappers()
    jit = native.jit_kernels()
    cc = CC("_native")
    cc.output_dir = str(native.HERE)
    cc.target_cpu = "host"
    cc.verbose = False
    for name, args in example_args().items():
        kernel = getattr(jit, name)
        argtypes = tuple(nb.typeof(a) for a in args)
        kernel.compile(argtypes)
        signature = kernel.overloads[argtypes].signature
        cc.export(name, signature)(_wrapper(name, kernel))
    native.STAMP.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nb.NumbaPendingDeprecationWarning)
        cc.compile()
    native.STAMP.write_text(native.stamp_text())
    return time.perf_counter() - started


if __name__ == "__main__":
    if "--if-stale" in sys.argv and native.kernels().kind == "aot":
        print("the capture kernels' ahead-of-time build is current", file=sys.stderr)
    else:
        print(f"capture kernels built ahead of time in {build():.0f} s (~1 min on 2 cores)",
              file=sys.stderr)
