"""Bad records are never dropped silently: they go to wk.deadletter with reason and raw input."""
from __future__ import annotations

import time

from watchkeeper import codec, metrics, schema, timeutil
from watchkeeper.bus import Names, Producer

MAX_RAW = 64 * 1024  # keep the evidence, but never let one record blow up a message


def deadletter_document(stage: str, reason: str, raw: bytes | str, topic: str | None = None,
                        position: str | None = None) -> dict:
    raw_text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    now = time.time()
    return {
        "@timestamp": timeutil.format(now),
        "event": {"id": schema.stable_id("deadletter", stage, topic, position, raw_text),
                  "kind": "event", "dataset": "watchkeeper.deadletter",
                  "category": ["process"], "type": ["error"], "outcome": "failure"},
        "message": reason[:2000],
        "watchkeeper": {"deadletter": {"stage": stage, "reason": reason[:2000], "topic": topic,
                                       "position": position, "raw": raw_text[:MAX_RAW],
                                       "truncated": len(raw_text) > MAX_RAW}},
    }


def send_deadletter(producer: Producer, names: Names, stage: str, reason: str, raw: bytes | str,
                    topic: str | None = None, position: str | None = None) -> None:
    doc = deadletter_document(stage, reason, raw, topic, position)
    producer.send(names.deadletter, codec.encode(doc), key=stage)
    kind = reason.split(":", 1)[0][:40]
    metrics.DEADLETTERS.labels(stage=stage, reason_kind=kind).inc()
    metrics.RECORDS.labels(stage=stage, outcome="deadlettered").inc()
