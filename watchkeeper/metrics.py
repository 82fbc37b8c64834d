"""Counters every stage moves; exposed at /metrics in Prometheus format."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter("watchkeeper_records_total", "Records handled by a pipeline stage",
                  ["stage", "outcome"])   # outcome: accepted | written | deadlettered | alerted
DEADLETTERS = Counter("watchkeeper_deadletters_total", "Records sent to wk.deadletter",
                      ["stage", "reason_kind"])

# Liveness of the consuming stages (watchkeeper/liveness.py); label values are stage names
# from code (index, correlate, detect, detect-2...), never from input.
STAGE_LAG = Gauge("watchkeeper_stage_lag", "Messages owed to a stage (-1: not yet assigned)",
                  ["stage"])
STAGE_PROGRESS = Gauge("watchkeeper_stage_last_progress_seconds",
                       "Unix time a stage last consumed records", ["stage"])
STAGE_RESTARTS = Counter("watchkeeper_stage_restarts_total",
                         "Times the watchdog made a stage rejoin its consumer group", ["stage"])
