"""Counters every stage moves; exposed at /metrics in Prometheus format."""
from __future__ import annotations

from prometheus_client import Counter

RECORDS = Counter("watchkeeper_records_total", "Records handled by a pipeline stage",
                  ["stage", "outcome"])   # outcome: accepted | written | deadlettered | alerted
DEADLETTERS = Counter("watchkeeper_deadletters_total", "Records sent to wk.deadletter",
                      ["stage", "reason_kind"])
