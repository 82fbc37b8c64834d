"""The compiled kernels of packet capture: ahead-of-time built when available, else JIT.

`make install` builds `kernels/_native` (build.py): the numba kernels compiled
ahead of time into an extension module, so a capture process loads neither numba nor LLVM
(~140 MiB less resident memory) and compiles nothing at start. When that module is missing,
or its stamp says it was built from other sources, the same kernels are compiled by numba at
run time (kernels/jit.py) - slower to start, same results. `WATCHKEEPER_NATIVE=jit`
forces the JIT path (tests of both).

The kernels are resolved on first use: importing this module costs nothing.
"""
from __future__ import annotations

import ast
import hashlib
import os
from functools import cache
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
STAMP = HERE / "_native.stamp"
CAPTURE = HERE.parent                     # collectors/capture
JIT_OPTIONS = "collectors.capture.kernels.jit"
KERNELS = ("decode_records", "process", "sweep", "flush", "evict", "rebuild", "walk_pcap",
           "walk_tpacket", "encode_flows")


@cache
def kernel_sources() -> tuple[str, ...]:
    """Every module whose code ends up compiled, found by reading the capture package (no
    list to keep): this kernels/ package, each module that compiles a kernel (it imports
    the numba options of kernels/jit.py), and each capture module such a module imports
    from (the constants and helpers a kernel reads are frozen into it). Paths relative to
    collectors/capture."""
    imports = {path: _capture_imports(path) for path in sorted(CAPTURE.rglob("*.py"))}
    found = {path for path in imports if path.parent == HERE}
    for path, names in imports.items():
        if JIT_OPTIONS in names:
            found |= {path, *(_module_path(name) for name in names)}
    return tuple(sorted(str(p.relative_to(CAPTURE)) for p in found if p is not None))


def _capture_imports(path: Path) -> set[str]:
    """Modules under collectors.capture that `path` imports at module level."""
    names = set()
    for node in ast.parse(path.read_bytes()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.startswith("collectors.capture.")}


def _module_path(name: str) -> Path | None:
    """The file of module `name`; None for a package or a name imported from a module."""
    path = CAPTURE.joinpath(*name.split(".")[2:]).with_suffix(".py")
    return path if path.is_file() else None


@cache
def source_hash(names: tuple[str, ...] | None = None) -> str:
    digest = hashlib.sha256(metadata.version("numba").encode())
    for name in kernel_sources() if names is None else names:
        digest.update(name.encode())
        digest.update((CAPTURE / name).read_bytes())
    return digest.hexdigest()[:16]


def stamp_current() -> bool:
    """The build's stamp matches the sources. The stamp lists the sources it was built from,
    so a start hashes those files instead of parsing the whole capture package to find them
    (~50 ms of every capture start). A module can only join the kernels by an edit to a
    listed one (the kernels/ package, or a kernel module importing it), so the listed files
    suffice; a new file in kernels/ makes the stamp stale too."""
    head, *listed = (_stamp() or "").split("\n")
    if not head:
        return False
    if not listed:                  # a stamp of an earlier build: no list
        return head == source_hash()
    package = {str(p.relative_to(CAPTURE)) for p in HERE.glob("*.py")}
    return package <= set(listed) and all((CAPTURE / n).is_file() for n in listed) \
        and head == source_hash(tuple(listed))


def stamp_text() -> str:
    """What build.py writes once the extension is built."""
    return "\n".join([source_hash(), *kernel_sources()]) + "\n"


@cache
def kernels() -> SimpleNamespace:
    """The kernel functions, with `kind` "aot" or "jit"."""
    if os.environ.get("WATCHKEEPER_NATIVE") != "jit" and stamp_current():
        try:
            from collectors.capture.kernels import _native
        except ImportError:
            pass
        else:
            return SimpleNamespace(kind="aot", **{k: getattr(_native, k) for k in KERNELS})
    return jit_kernels()


def jit_kernels() -> SimpleNamespace:
    from collectors.capture.decoding.kernel import decode_records
    from collectors.capture.documents.kernel import encode_flows
    from collectors.capture.flows.compiled.index import rebuild
    from collectors.capture.flows.compiled.kernel import evict, flush, process, sweep
    from collectors.capture.sources.pcapwalk import walk_pcap, walk_tpacket
    return SimpleNamespace(kind="jit", decode_records=decode_records, process=process,
                           sweep=sweep, flush=flush, evict=evict, rebuild=rebuild,
                           walk_pcap=walk_pcap, walk_tpacket=walk_tpacket,
                           encode_flows=encode_flows)


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
