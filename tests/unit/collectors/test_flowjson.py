"""Flow documents as JSON lines written by the compiled kernel (documents/flowjson.py,
documents/kernel.py) against the dict path: `codec.encode(doc) + b"\\n"` of each document
documents/flows.py builds (itself checked against the reference in test_flowdocs.py), byte for
byte, on every capture in tests/data; and its hashes against hashlib."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper import codec
from watchkeeper.networks import InternalNetworks

from collectors.capture import Capture, CaptureStats, file_batches
from collectors.capture.documents.flows import flow_documents, iso_times
from collectors.capture.documents.flowjson import flow_lines, micros
from collectors.capture.documents.hashing import blake2b_16, sha1
from collectors.capture.documents.textbytes import iso_time
from collectors.capture.flows.reference import FlowConfig
from tests.datafiles import captures

CAPTURES = captures()
NETWORKS = InternalNetworks()
# IPv6 and IPv4 ranges of our own, so every direction occurs on both families
MIXED = InternalNetworks(["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "fe80::/10",
                          "2001:470::/32", "ff02::/16"])


def batches(paths, config=None, app=True):
    for flows, _ in Capture(file_batches([str(p) for p in paths], CaptureStats()), config,
                            app=app)._chunks():
        if len(flows):
            yield flows


def dict_lines(flows, observer, networks, site) -> bytes:
    return b"".join(codec.encode(doc) + b"\n"
                    for doc in flow_documents(flows.rows, flows.app, observer, networks, site))


def test_blake2b_and_sha1_equal_hashlib():
    rng = np.random.default_rng(7)
    buf = np.zeros(1024, np.uint8)
    words = np.zeros(128, np.uint64)
    digest = np.zeros(32, np.uint8)
    for length in [*range(0, 260), 383, 384, 385, 600]:
        data = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        buf[:length] = np.frombuffer(data, np.uint8)
        blake2b_16(buf, length, words, digest)
        assert digest[:16].tobytes() == hashlib.blake2b(data, digest_size=16).digest(), length
        buf[:length] = np.frombuffer(data, np.uint8)
        sha1(buf, length, words, digest)
        assert digest[:20].tobytes() == hashlib.sha1(data).digest(), length


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.floats(0, 4_294_967_295, allow_nan=False),
    st.integers(0, 4_294_967_295).map(lambda s: s + 0.5e-6),      # ties of the rounding
    st.integers(0, 4_294_967_295).map(lambda s: s + 0.9999996),
    st.sampled_from([951782400.0, 4107542399.999999, 68256000.0])),  # 29 Feb, 2100, 1972
    min_size=1, max_size=20))
def test_iso_times_written_by_the_kernel_equal_the_dict_path(values):
    out = np.zeros(32, np.uint8)
    for value, expected in zip(micros(np.array(values, np.float64)).tolist(),
                               iso_times(np.array(values, np.float64))):
        end = iso_time(out, 0, value)
        assert out[:end].tobytes().decode() + "Z" == expected


def _sample_rows(n: int) -> np.ndarray:
    for flows in batches(CAPTURES, app=False):
        if len(flows) >= n:
            return flows.rows[:n].copy()
    raise AssertionError("no capture with enough flows")


ROWS30 = _sample_rows(30)
WHOLE = st.integers(1_000_000_000, 2**32 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.floats(0, 2.0**33, allow_nan=False),
    WHOLE.map(float),
    st.tuples(WHOLE, st.integers(0, 999_999)).map(lambda p: p[0] + p[1] * 1e-6),
    st.tuples(WHOLE, st.integers(0, 99)).map(lambda p: p[0] + p[1] * 1e-4),
    st.tuples(WHOLE, st.integers(0, 999_999_999)).map(lambda p: p[0] + p[1] * 1e-9)),
    min_size=1, max_size=30))
def test_uids_of_any_start_time_equal_the_dict_path(starts):
    # The kernel writes repr(start) itself for whole microseconds in [1e9, 2**32); the rest
    # (nanoseconds, other eras) are Python's: the uid is the same either way.
    rows = ROWS30[:len(starts)].copy()
    rows["start"] = starts
    rows["last"] = rows["start"] + 1.5
    ours = b"".join(flow_lines(rows, {}, "sensor-1", NETWORKS))
    theirs = b"".join(codec.encode(doc) + b"\n"
                      for doc in flow_documents(rows, {}, "sensor-1", NETWORKS))
    assert ours == theirs


@pytest.mark.parametrize("observer,networks,site", [
    ("sensor-1", NETWORKS, "county-7"),
    ('传感器 "东\\门"', MIXED, None),          # non-ASCII and escapes in the observer
])
def test_same_bytes_as_the_dict_path_on_every_capture(observer, networks, site):
    rows = hinted = 0
    for path in CAPTURES:
        for flows in batches([path]):
            assert b"".join(flow_lines(flows.rows, flows.app, observer, networks, site)) == \
                dict_lines(flows, observer, networks, site), path.name
            rows += len(flows)
            hinted += len(flows.app)
    assert rows > 10000 and hinted > 0        # rows with payload hints are spliced in too


def test_every_direction_and_family_is_covered():
    seen = set()
    for path in CAPTURES:
        for flows in batches([path], app=False):
            for line in b"".join(flows.lines("s", MIXED)).splitlines():
                doc = codec.decode(line)
                seen.add((doc["network"]["direction"], ":" in doc["source"]["ip"],
                          doc["network"]["transport"]))
    assert {d for d, _, _ in seen} == {"inbound", "outbound", "internal", "external"}
    assert {v6 for _, v6, _ in seen} == {True, False}
    assert {"icmp", "ipv6-icmp", "tcp", "udp"} <= {t for _, _, t in seen}


def test_same_bytes_with_evicted_flows_and_in_one_long_capture():
    path = max(CAPTURES, key=lambda p: p.stat().st_size)
    for flows in batches([path], FlowConfig(max_flows=64)):
        assert b"".join(flows.lines("sensor-1", NETWORKS)) == dict_lines(flows, "sensor-1", NETWORKS, None)
    one = Capture(file_batches([str(p) for p in CAPTURES], CaptureStats()), app=True)
    ours = b"".join(one.lines("sensor-1", NETWORKS, "county-7"))
    docs = Capture(file_batches([str(p) for p in CAPTURES], CaptureStats()), app=True)
    assert ours == b"".join(codec.encode(d) + b"\n"
                            for d in docs.documents("sensor-1", NETWORKS, "county-7"))
    # metered on a thread, written by two workers (prefetch.py): the same bytes, in order
    ahead = Capture(file_batches([str(p) for p in CAPTURES], CaptureStats()), app=True)
    assert b"".join(ahead.lines("sensor-1", NETWORKS, "county-7", prefetch=True)) == ours


def test_reference_table_lines_equal_its_documents():
    path = CAPTURES[0]
    for flows in batches([path], FlowConfig(engine="reference")):
        assert b"".join(flows.lines("s", NETWORKS)) == dict_lines_of(flows)


def dict_lines_of(flows) -> bytes:
    return b"".join(codec.encode(d) + b"\n" for d in flows.documents("s", NETWORKS))


def test_cli_flows_json_writes_the_documents(tmp_path):
    paths = [str(p) for p in CAPTURES[:8]]
    out = subprocess.run([sys.executable, "-m", "app.cli", "flows", *paths, "--json"],
                         check=True, capture_output=True).stdout
    from app.pipeline import capture_documents
    from app.settings import load_settings
    expected = b"".join(codec.encode(d) + b"\n"
                        for d in capture_documents(paths, load_settings(None), app=False))
    assert out == expected and out.count(b"\n") > 100


def test_no_numba_in_a_process_writing_lines_with_the_build():
    # numba + LLVM cost ~140 MiB and seconds per process; the lines use the built kernel
    code = ("import sys; from collectors.capture import iter_flow_lines; "
            "from watchkeeper.networks import InternalNetworks; "
            f"n = sum(len(c) for c in iter_flow_lines([{str(CAPTURES[0])!r}], 's', "
            "InternalNetworks())); print(n > 0, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.split() == ["True", "False"]
