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


def test_checkpoints_written_before_the_new_fields_still_load(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    checkpoints = CheckpointStore(store, "wk-detect")
    checkpoints.save({("wk.events", 0): PartitionDetectors([], 5, 10.0).checkpoint()})
    doc = store.get_by_ids("state", [checkpoints._id("wk.events", 0)])[0]
    for key in ("next_timer", "origins"):
        del doc["watchkeeper"]["state"][key]
    store.bulk_upsert("state", [doc])
    saved = checkpoints.load("wk.events", 0)
    part = PartitionDetectors([], saved.next_offset, saved.watermark, saved.next_timer,
                              saved.origins)
    assert part._next_timer == 15.0 and part.origins == {}
    store.close()
