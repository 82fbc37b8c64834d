"""The alerting stage on the embedded bus: policy applied once, bad records dead-lettered
(counted, never a crash), offsets committed only after the output is on the bus."""
from __future__ import annotations

from alerting.context import AlertContext, AllowRule
from alerting.worker import AlertingWorker
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.documents import AlertSpec, alert_document

NAMES = Names("alertingtest")


def _alert(src: str) -> dict:
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="scan.h",
                     rule_name="scan", severity=2, message="scan", entity=src,
                     first_seen=1.767e9, last_seen=1.767e9 + 5, source_ip=src)
    return alert_document(spec, created=1.767e9 + 9)


def test_policy_once_and_bad_records_dead_lettered():
    bus = EmbeddedBus(partitions=2)
    bus.ensure_topics(NAMES.topics)
    policy = AlertContext(allowlist=[AllowRule(cidr="10.0.0.9/32", reason="scanner host")])
    worker = AlertingWorker(bus, policy, NAMES)
    readers = {t: bus.consumer(f"reader-{t}", [t]) for t in (NAMES.alerts, NAMES.deadletter)}
    producer = bus.producer()
    flow = {**_alert("10.0.0.7"), "event": {**_alert("10.0.0.7")["event"], "kind": "event",
                                            "dataset": "watchkeeper.flow"}}
    for value in (codec.encode(_alert("10.0.0.7")), codec.encode(_alert("10.0.0.9")),
                  b"{not json", codec.encode(flow), codec.encode({"event": {}})):
        producer.send(NAMES.alerts_raw, value, key="k")
    producer.flush()
    result = worker.step(timeout=0.1)
    assert (result.consumed, result.alerts, result.deadlettered) == (5, 2, 3)
    out = [codec.decode(m.value) for m in readers[NAMES.alerts].poll(100, timeout=0.1)]
    by_source = {a["source"]["ip"]: a["watchkeeper"]["alert"] for a in out}
    assert by_source["10.0.0.7"]["incident_id"] and by_source["10.0.0.7"]["status"] == "new"
    assert by_source["10.0.0.9"]["suppressed_by"] == "allowlist"
    dead = [codec.decode(m.value) for m in readers[NAMES.deadletter].poll(100, timeout=0.1)]
    assert len(dead) == 3 and {d["watchkeeper"]["deadletter"]["stage"] for d in dead} == {
        "alerting"}
    assert worker.consumer.lag() == 0 and worker.step(timeout=0.05).consumed == 0
    worker.close()
