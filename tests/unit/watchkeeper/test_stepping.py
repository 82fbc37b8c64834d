"""`Stepping`: stages stepped by threads while the caller publishes (`ingest` on Kafka)."""
from __future__ import annotations

import threading

import pytest

from watchkeeper.store import StoreError
from watchkeeper.worker import StepResult, Stepping

WAIT_S = 10.0       # generous: only a broken Stepping ever waits this long


class FakeStage:
    """A stage whose steps run `action` (with the step's number), then count one message."""

    def __init__(self, name: str, action=None):
        self.name, self.action = name, action or (lambda n: None)
        self.steps = self.resets = 0
        self.consumer = None

    def step(self, max_records: int = 2000, timeout: float = 0.5) -> StepResult:
        self.steps += 1
        self.action(self.steps)
        return StepResult(consumed=1)

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def test_each_stage_steps_while_the_others_wait():
    """The indexer's step waits for a detection step that only its own thread can take: one
    thread stepping the stages in turn would never get there."""
    detected = threading.Event()
    stored = threading.Event()

    def index(n):
        if n == 1:
            assert detected.wait(WAIT_S), "no other stage stepped while this one waited"
            stored.set()
    detect = FakeStage("detect", lambda n: detected.set())
    indexer = FakeStage("index", index)
    with Stepping([indexer, detect]) as stepping:
        assert stored.wait(WAIT_S)
    assert stepping.results[0].consumed == indexer.steps >= 1
    assert stepping.results[1].consumed == detect.steps >= 1


def test_no_step_runs_after_the_block():
    stage = FakeStage("detect")
    with Stepping([stage]):
        pass
    steps = stage.steps
    threading.Event().wait(0.3)      # a thread still running would step meanwhile
    assert stage.steps == steps


def test_a_failed_step_is_rewound_and_retried():
    recovered = threading.Event()

    def flaky(n):
        if n == 1:
            raise StoreError("store down")
        recovered.set()
    stage = FakeStage("index", flaky)
    with Stepping([stage], max_backoff=0.01):
        assert recovered.wait(WAIT_S)
    assert stage.resets == 1


def test_any_other_error_is_raised_in_the_callers_thread():
    failing = threading.Event()

    def broken(n):
        failing.set()
        raise KeyError("a bug")
    stage = FakeStage("detect", broken)
    with pytest.raises(KeyError, match="a bug"):
        with Stepping([stage]):
            assert failing.wait(WAIT_S)
    assert stage.steps == 1          # the thread ended at the error, not retried for ever
