"""Counters every stage moves; exposed at /metrics in Prometheus format."""
from __future__ import annotations

from prometheus_client import Counter

RECORDS = Counter("watchkeeper_records_total", "Records handled by a pipeline stage",
                  ["stage", "outcome"])   # outcome: accepted | written | deadlettered | alerted
DEADLETTERS = Counter("watchkeeper_deadletters_total", "Records sent to wk.deadletter",
                      ["stage", "reason_kind"])
REFUSED = Counter("watchkeeper_collector_refused_total",
                  "Datagrams and connections from senders outside collector_allowed_senders",
                  ["collector", "transport"])   # transport: udp | tcp
SEND_FAILURES = Counter("watchkeeper_bus_send_failures_total",
                        "Messages a producer could not store on the bus", ["stage"])
