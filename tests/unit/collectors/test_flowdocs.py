"""Flow documents built from record rows (collectors/capture/documents/flows.py) against the reference:
`flow_document` of each `FlowRecord` - the same dicts on every vendored capture."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper import timeutil
from watchkeeper.networks import InternalNetworks

from collectors.capture import Capture, capture_document, file_batches
from collectors.capture.documents.flows import iso_times
from collectors.capture.flows.reference import FlowConfig
from tests.datafiles import captures

CAPTURES = captures()
NETWORKS = InternalNetworks()


def both(paths, config=None):
    from collectors.capture import CaptureStats
    ours = list(Capture(file_batches(paths, CaptureStats()), config, app=True)
                .documents("sensor-1", NETWORKS, "county-7"))
    theirs = [capture_document(rec, "sensor-1", NETWORKS, "county-7")
              for rec in Capture(file_batches(paths, CaptureStats()), config, app=True)]
    return ours, theirs


def test_same_documents_as_the_reference_on_shared_captures():
    flows = 0
    for path in CAPTURES:
        ours, theirs = both([str(path)])
        assert len(ours) == len(theirs), path.name
        for a, b in zip(ours, theirs):
            assert a == b, path.name
        flows += sum(1 for d in ours if d["event"]["dataset"] == "watchkeeper.flow")
    assert flows > 10000


def test_same_documents_with_evicted_flows():
    path = max(CAPTURES, key=lambda p: p.stat().st_size)
    ours, theirs = both([str(path)], FlowConfig(max_flows=64))
    assert ours == theirs
    assert any(d["watchkeeper"]["flow"].get("evicted") for d in ours
               if "flow" in d.get("watchkeeper", {}))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.floats(0, 4_294_967_295, allow_nan=False),
    st.integers(0, 4_294_967_295).map(lambda s: s + 0.5e-6),      # ties of the rounding
    st.integers(0, 4_294_967_295).map(lambda s: s + 0.9999996)), min_size=1, max_size=50))
def test_iso_times_equal_timeutil_format(values):
    assert iso_times(np.array(values, np.float64)) == [timeutil.format(v) for v in values]
