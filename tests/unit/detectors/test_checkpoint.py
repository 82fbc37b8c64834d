"""A checkpoint restores a partition exactly: offsets, clock, timer schedule, copy marks."""
from __future__ import annotations

from detectors.checkpoint import CheckpointStore
from detectors.runner import PartitionDetectors
from watchkeeper.store.sqlite import SqliteStore


def test_restored_partition_keeps_its_timer_schedule_and_copy_marks(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    part = PartitionDetectors([], next_offset=120, watermark=1_000.0, next_timer=1_003.5)
    assert not part.counted_before((2, 40)) and part.counted_before((2, 40))
    assert not part.counted_before((3, 7))
    checkpoints = CheckpointStore(store, "wk-detect-destination-ip")
    checkpoints.save({("wk.events.by-destination-ip", 1): part.checkpoint()})
    saved = checkpoints.load("wk.events.by-destination-ip", 1)
    again = PartitionDetectors([], saved.next_offset, saved.watermark, saved.next_timer,
                               saved.origins)
    assert (again.next_offset, again.watermark, again._next_timer) == (120, 1_000.0, 1_003.5)
    assert again.counted_before((2, 40)) and again.counted_before((3, 6))
    assert not again.counted_before((2, 41)) and not again.counted_before((0, 0))
    store.close()


def test_checkpoints_written_whole_and_before_the_new_fields_still_load(tmp_path):
    """The format before parts: one document, snapshots inline (and, older still, without
    next_timer and origins)."""
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    checkpoints = CheckpointStore(store, "wk-detect")
    doc_id = checkpoints._id("wk.events", 0)
    store.bulk_upsert("state", [{
        "@timestamp": "2026-12-01T00:00:00Z",
        "event": {"id": doc_id, "kind": "state", "dataset": "watchkeeper.state"},
        "watchkeeper": {"state": {"scope": "wk-detect", "topic": "wk.events", "partition": 0,
                                  "next_offset": 5, "watermark": 10.0,
                                  "snapshots": {"scan": {"sources": {}}}}}}])
    saved = checkpoints.load("wk.events", 0)
    assert saved.snapshots == {"scan": {"sources": {}}}
    part = PartitionDetectors([], saved.next_offset, saved.watermark, saved.next_timer,
                              saved.origins)
    assert part._next_timer == 15.0 and part.origins == {}
    store.close()
