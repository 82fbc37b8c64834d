"""CPU per event of the detection stages themselves: the source-keyed stage and the re-keyed
stages as `watchkeeper detect` runs them (`DetectionWorker`, every registered detector, the
re-keyed copies), on the embedded bus, without Kafka or Elasticsearch beside them.

    .venv/bin/python bench/detect_stage.py [--events 200000] [--repeat 3]

bench/pipeline.py's `processes` mode times the whole pipeline, where the stages share two
cores with Elasticsearch, the indexers and Kafka; this isolates what the stages' own code
costs, for A/B runs of a change (run it from a git worktree of the older commit with
PYTHONPATH set to that worktree). The workload is bench/pipeline.py's (100 events per
event-time second, ~10 % scan probes). Each stage is timed from its first step to the step
that finds nothing (process CPU time), with `heap.tick()` after every step as the stage
loop calls it; time in the cyclic garbage collector is printed apart. The last step's
checkpoint is not taken (checkpoints are spaced by their cost in a running stage)."""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine, machine_line  # noqa: E402
from bench.pipeline_workload import generate  # noqa: E402
from bench.publishing import FRAMING, publish  # noqa: E402


class GcTime:
    """CPU seconds spent in the cyclic collector while `on`."""

    def __init__(self):
        self.seconds, self._began, self.on = 0.0, 0.0, False
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.process_time()
        elif self.on:
            self.seconds += time.process_time() - self._began


def drain(worker, heap) -> None:
    while worker.step(2000, 0.05).consumed:
        heap.tick()


def run_once(docs: list[dict], gc_time: GcTime) -> dict[str, float]:
    """CPU seconds of the source-keyed stage, then of the re-keyed stages, for the events."""
    from app.pipeline import detection_workers, open_backends
    from app.settings import Settings
    from watchkeeper import heap
    from watchkeeper.bus import Names
    with tempfile.TemporaryDirectory(prefix="wkbench-stage-") as tmp:
        settings = Settings(bus="memory://", store=f"sqlite:///{tmp}/stage.db")
        backends = open_backends(settings, for_ingest=True)
        names = Names(settings.namespace)
        publish(backends.bus, names, docs)    # as the collectors do (--framing)
        workers = detection_workers(settings, backends, checkpoint_every_s=1e9)
        heap._last_freeze = 0.0
        heap.tick()    # the workload waiting on the bus is frozen before timing, not walked
        seconds = {}
        for stage, group in (("source", workers[:1]), ("rekeyed", workers[1:])):
            gc_time.seconds, gc_time.on = 0.0, True
            began = time.process_time()
            for worker in group:
                drain(worker, heap)
            seconds[stage] = time.process_time() - began
            seconds[f"{stage}_gc"] = gc_time.seconds
            gc_time.on = False
        for worker in workers:
            worker.close()
        backends.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--framing", choices=("batched", "single"), default="batched",
                    help="events published in batches as the collectors do, or one per message")
    args = ap.parse_args(argv)
    print(machine_line(machine(None, False)))
    FRAMING["batched"] = args.framing == "batched"
    docs, _ = generate(args.events)
    gc_time = GcTime()
    runs = [run_once(docs, gc_time) for _ in range(args.repeat)]
    for stage in ("source", "rekeyed"):
        per_event = [r[stage] / args.events * 1e6 for r in runs]
        in_gc = [r[f"{stage}_gc"] / r[stage] * 100 for r in runs]
        print(f"{stage:>8} stage: {statistics.median(per_event):5.1f} µs CPU per event (median "
              f"of {args.repeat}: {', '.join(f'{v:.1f}' for v in per_event)}); cyclic GC "
              f"{statistics.median(in_gc):.0f} % of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
