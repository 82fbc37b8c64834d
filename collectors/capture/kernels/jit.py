"""numba options shared by the compiled packet paths (decoding/, flows/compiled/, sources/),
and where their compiled code is cached.

`PACKET_LOOP` functions run once or more per packet and never allocate: they are compiled
without numba's reference-counted runtime (`_nrt=False`). With it, numba emits an atomic
incref/decref pair for almost every array a helper touches, and those dominated the
per-packet cost (decode: 719 ns/packet with the runtime, 57 ns without, same code).
Arrays they use are allocated by the caller and passed in. `ALLOCATING` is for the few
per-batch functions that create arrays (numpy does the allocation, the runtime frees it).

This is the JIT path (kernels/native.py prefers the ahead-of-time build). Its cache: numba
keys a cached function on its own file only, so a kernel that calls (and inlines) a helper
from another module would keep running the helper's old code after an edit. The cache
directory is therefore named after a hash of every compiled module's source
(`native.source_hash`): any edit starts a fresh cache. `NUMBA_CACHE_DIR` set by the operator
wins.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numba

from collectors.capture.kernels.native import source_hash

PACKET_LOOP = dict(cache=True, nogil=True, _nrt=False)
ALLOCATING = dict(cache=True, nogil=True)

_TOP = Path(__file__).resolve().parents[3]    # the directory holding collectors/


def _cache_root() -> Path:
    # Beside the sources when we may write there (make install warms it), else per user.
    local = _TOP / ".numba-cache"
    if os.access(_TOP, os.W_OK) or os.access(local, os.W_OK):
        return local
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "watchkeeper-numba"


def _use_versioned_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = _cache_root()
    current = root / source_hash()
    if root.is_dir():
        for old in root.iterdir():          # caches of edited sources are never used again
            if old.name != current.name:
                shutil.rmtree(old, ignore_errors=True)
    numba.config.CACHE_DIR = str(current)


_use_versioned_cache()
