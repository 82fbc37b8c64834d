"""The ahead-of-time build of the capture kernels (collectors/capture/kernels/native.py,
build.py): in use after `make install`, and giving the same records as the JIT-compiled
kernels."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from collectors.capture.kernels import native
from tests.datafiles import captures

CAPTURES = captures()
ROOT = Path(__file__).resolve().parents[3]

DIGEST = """
import hashlib, sys
from collectors.capture.kernels import native
from collectors.capture import CaptureStats, iter_flow_columns
digest = hashlib.sha256()
for path in sys.argv[1:]:
    for columns in iter_flow_columns([path], stats=CaptureStats()):
        digest.update(columns.rows.tobytes())
print(native.kernels().kind, digest.hexdigest())
"""


def records_digest(paths: list[str], mode: str) -> tuple[str, str]:
    env = {**os.environ, "WATCHKEEPER_NATIVE": mode}
    out = subprocess.run([sys.executable, "-c", DIGEST, *paths], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    kind, digest = out.stdout.split()
    return kind, digest


def test_installed_kernels_are_the_ahead_of_time_build():
    # A stale or missing build silently costs ~140 MiB per capture process and a compile.
    assert native.kernels().kind == "aot", "capture kernels' build missing or stale: make install"
    assert native.STAMP.read_text() == native.stamp_text()


def test_the_stamp_is_checked_against_the_sources_it_lists(tmp_path, monkeypatch):
    text = native.stamp_text()
    head, *listed = text.strip().split("\n")
    stamp = tmp_path / "stamp"
    monkeypatch.setattr(native, "STAMP", stamp)
    stamp.write_text(text)
    assert native.stamp_current()
    stamp.write_text("0" * 16 + "\n" + "\n".join(listed) + "\n")    # a source changed since
    assert not native.stamp_current()
    unlisted = [n for n in listed if n != "kernels/jit.py"]          # kernels/ gained a file
    stamp.write_text("\n".join([native.source_hash(tuple(unlisted)), *unlisted]) + "\n")
    assert not native.stamp_current()
    stamp.write_text(head + "\n")                                   # an earlier build's stamp
    assert native.stamp_current()
    stamp.write_text("")
    assert not native.stamp_current()


def test_no_numba_in_a_capture_process_with_the_build():
    code = ("import sys; from collectors.capture import iter_flows; "
            f"list(iter_flows([{str(CAPTURES[0])!r}])); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True)
    assert out.stdout.strip() == "False"


def test_same_records_from_the_build_and_the_jit():
    paths = [str(p) for p in sorted(CAPTURES, key=lambda p: p.stat().st_size)[-6:]]
    aot, jit = records_digest(paths, "aot"), records_digest(paths, "jit")
    assert (aot[0], jit[0]) == ("aot", "jit")
    assert aot[1] == jit[1]
    assert aot[1] != hashlib.sha256().hexdigest()       # some records were compared


def test_the_build_finds_its_sources_by_reading_the_package():
    """Every module that compiles a kernel, and each capture module it imports from, is in
    the stamp's sources without a hand-kept list; a module that compiles nothing is not."""
    sources = set(native.kernel_sources())
    compiling = {str(p.relative_to(native.CAPTURE)) for p in native.CAPTURE.rglob("*.py")
                 if "from collectors.capture.kernels.jit import" in p.read_text()}
    assert compiling and compiling <= sources
    assert {"decoding/packets.py", "decoding/fragments.py", "flows/compiled/layout.py",
            "kernels/jit.py", "kernels/native.py", "kernels/build.py"} <= sources
    assert not sources & {"meter.py", "flows/reference.py", "appmeta/tracker.py"}


def test_kernels_release_the_gil():
    """A kernel call lets another Python thread run (kernels/build.py patches pycc to release
    the GIL, as the JIT's nogil=True does): `flows --json` meters one batch on a thread while
    the documents of the last are written (prefetch.py), which needs it. The switch interval
    is set far longer than the 100 calls, so a kernel holding the GIL would let the counting
    thread in at most once (a forced switch); released, it counts during most calls."""
    import struct
    import threading
    import numpy as np
    record = struct.pack("<IIII", 1, 0, 64, 64) + bytes(64)
    buf = np.frombuffer(record * 500_000, np.uint8)
    ticks, stop = [0], threading.Event()
    walk = native.kernels().walk_pcap      # resolved first: reading the stamp releases the GIL

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    try:
        counted = 0
        for _ in range(100):
            before = ticks[0]
            walk(buf, False, 262160, 1e-6)
            counted += ticks[0] != before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        counter.join(timeout=5)
    assert native.kernels().kind == "aot"
    assert counted >= 20, f"another thread ran during only {counted} of 100 kernel calls"
