"""Detector checkpoints on both stores: a state of any size is saved and restored whole, and a
reader never gets a state stitched from two writes (detectors/checkpoint.py)."""
from __future__ import annotations

import os

import pytest

from detectors import checkpoint as checkpoint_module
from detectors.checkpoint import Checkpoint, CheckpointStore

TOPIC = "wk.events"


def _state(n_hosts: int, evidence_bytes: int) -> Checkpoint:
    """An exfiltration-like snapshot: per host, evidence that does not compress away."""
    hosts = {f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}": {
        "bytes": i * 1.5, "evidence": os.urandom(evidence_bytes // 2).hex()}
        for i in range(n_hosts)}
    return Checkpoint(next_offset=1234, watermark=1_700_000_000.5,
                      snapshots={"exfiltration": {"hosts": hosts, "evicted": 0}},
                      next_timer=1_700_000_005.0, origins={2: 77})


def test_a_state_past_elasticsearchs_request_limit_is_saved_and_restored(store):
    """~105 MB of state JSON: one document of it was refused (HTTP 413: ES accepts at most
    100 MB per request), so every checkpoint of a busy partition failed."""
    state = _state(100_000, 1_050)
    checkpoints = CheckpointStore(store, "wk-detect")
    checkpoints.save({(TOPIC, 0): state})
    restored = CheckpointStore(store, "wk-detect").load(TOPIC, 0)
    assert restored == state
    head = store.get_by_ids("state", [checkpoints._id(TOPIC, 0)])[0]["watchkeeper"]["state"]
    assert head["bytes"] > 100 * 2 ** 20 and head["parts"] > 1
    assert head["next_offset"] == 1234 and "snapshots" not in head


def test_an_interrupted_write_leaves_the_last_complete_checkpoint(store, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "PART_BYTES", 512)
    checkpoints = CheckpointStore(store, "wk-detect")
    first, second = _state(40, 100), _state(60, 100)
    checkpoints.save({(TOPIC, 1): first})
    real_put = store.put_raw

    def crash_before_the_head(kind, docs):
        if docs[0].id == checkpoints._id(TOPIC, 1):
            raise RuntimeError("killed before the head was written")
        return real_put(kind, docs)
    monkeypatch.setattr(store, "put_raw", crash_before_the_head)
    with pytest.raises(RuntimeError):
        checkpoints.save({(TOPIC, 1): second})      # its parts are stored, its head is not
    monkeypatch.setattr(store, "put_raw", real_put)
    store.refresh("state")
    assert CheckpointStore(store, "wk-detect").load(TOPIC, 1) == first
    checkpoints.save({(TOPIC, 1): second})
    assert CheckpointStore(store, "wk-detect").load(TOPIC, 1) == second


def test_parts_of_two_writes_are_never_stitched_together(store, monkeypatch):
    """Two workers that both believe they own a partition (a zombie after a rebalance) can
    write the same slot; a reader then finds parts of another write and starts the partition
    without state rather than restore a mix."""
    monkeypatch.setattr(checkpoint_module, "PART_BYTES", 512)
    owner, zombie = CheckpointStore(store, "wk-detect"), CheckpointStore(store, "wk-detect")
    owner.save({(TOPIC, 2): _state(40, 100)})
    zombie.load(TOPIC, 2)
    owner.save({(TOPIC, 2): _state(40, 100)})          # slot 1, generation 1
    real_put = store.put_raw

    def without_its_head(kind, docs):
        if docs[0].id != zombie._id(TOPIC, 2):
            real_put(kind, docs)
        return len(docs)
    monkeypatch.setattr(store, "put_raw", without_its_head)
    zombie.save({(TOPIC, 2): _state(40, 100)})         # also slot 1: the owner's parts replaced
    monkeypatch.setattr(store, "put_raw", real_put)
    store.refresh("state")
    assert CheckpointStore(store, "wk-detect").load(TOPIC, 2) is None
    assert CheckpointStore(store, "wk-detect").load_offset(TOPIC, 2) == 1234
