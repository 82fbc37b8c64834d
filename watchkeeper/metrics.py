"""Counters every stage moves; exposed at /metrics in Prometheus format.

Label values come from code, never from input (a sender must not be able to add series):
stages are role names, outcomes and reason kinds fixed vocabularies. A stage's series are
all created on its first use, so the number of series depends on the stages running, not
on what arrived.
"""
from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge

OUTCOMES = ("accepted", "written", "deadlettered", "alerted", "dropped")


class _StageCounter(Counter):
    """RECORDS: the first `labels(stage=S, …)` creates S's series for every outcome."""

    def labels(self, *args, **kwargs):
        child = super().labels(*args, **kwargs)
        stage = kwargs.get("stage", args[0] if args else None)
        if stage not in self._stages_seen:
            with self._stages_lock:
                if stage not in self._stages_seen:
                    self._stages_seen.add(stage)
                    for outcome in OUTCOMES:
                        super().labels(stage=stage, outcome=outcome)
        return child

    def __init__(self, *args, **kwargs):
        self._stages_seen: set = set()
        self._stages_lock = threading.Lock()
        super().__init__(*args, **kwargs)


RECORDS = _StageCounter("watchkeeper_records_total", "Records handled by a pipeline stage",
                        ["stage", "outcome"])   # outcome: one of OUTCOMES
DEADLETTERS = Counter("watchkeeper_deadletters_total", "Records sent to wk.deadletter",
                      ["stage", "reason_kind"])  # reason_kind: deadletter.REASON_KINDS
REFUSED = Counter("watchkeeper_collector_refused_total",
                  "Datagrams and connections from senders outside collector_allowed_senders",
                  ["collector", "transport"])   # transport: udp | tcp
SEND_FAILURES = Counter("watchkeeper_bus_send_failures_total",
                        "Messages a producer could not store on the bus", ["stage"])

# Liveness of the consuming stages (watchkeeper/liveness.py); label values are stage names
# from code (index, correlate, detect, detect-2...), never from input.
STAGE_LAG = Gauge("watchkeeper_stage_lag", "Messages owed to a stage (-1: not yet assigned)",
                  ["stage"])
STAGE_UNOWNED = Gauge("watchkeeper_stage_unowned_partitions",
                      "Partitions of a stage's topics no member of its group holds "
                      "(-1: unknown)", ["stage"])
STAGE_PROGRESS = Gauge("watchkeeper_stage_last_progress_seconds",
                       "Unix time a stage last consumed records", ["stage"])
# Detector state saves (detectors/runner.py): how long the last one took, per consumer group
# (a group name from code); the stage spaces its saves by it.
CHECKPOINT_SECONDS = Gauge("watchkeeper_checkpoint_seconds",
                           "Duration of a detection stage's last state checkpoint", ["group"])
STAGE_RESTARTS = Counter("watchkeeper_stage_restarts_total",
                         "Times the watchdog made a stage rejoin its consumer group", ["stage"])
COMPILED_MODULES = Gauge("watchkeeper_compiled_modules",
                         "Modules of the detection path imported, by form (watchkeeper/compiled.py)",
                         ["form"])
