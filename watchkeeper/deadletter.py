"""Bad records are never dropped silently: they go to wk.deadletter with reason and raw input.

The metric label `reason_kind` comes from a fixed vocabulary (REASON_KINDS): a reason is
text built from whatever arrived on the wire, and a label built from it would let any
sender create one Prometheus series per distinct value (issue 9: 7,978 series from
random "versions"). The full reason stays in the dead-letter document.
"""
from __future__ import annotations

import time

from watchkeeper import codec, metrics, schema, timeutil
from watchkeeper.bus import Names, Producer

MAX_RAW = 64 * 1024  # keep the evidence, but never let one record blow up a message

REASON_KINDS = ("decode_error", "validation_error", "unsupported_version", "template_missing",
                "oversize", "truncated", "missing_fields", "internal", "other")

# First match wins; patterns are matched against the lower-cased start of the reason.
_PREFIXES = (
    ("internal:", "internal"),
    ("parser error:", "internal"),
    ("validationerror", "validation_error"),
    ("typeerror", "validation_error"),
    ("valueerror", "validation_error"),
    ("keyerror", "validation_error"),
    ("decodeerror", "decode_error"),
    ("unsupported version", "unsupported_version"),
    ("unparsable datagram", "decode_error"),
    ("netflow: flow record without", "missing_fields"),
    ("line longer than", "oversize"),
)
_WORDS = (("too long", "oversize"), ("longer than", "oversize"), ("oversize", "oversize"),
          ("truncated", "truncated"), ("shorter than", "truncated"),
          ("template", "template_missing"))
_DECODE_PREFIXES = ("syslogerror", "v5:", "v9:", "v10:", "ipfix:", "suricata", "zeek")


def reason_kind(reason: str) -> str:
    """The fixed-vocabulary class of a dead-letter reason (anything unknown is `other`)."""
    text = reason[:80].lower()
    for prefix, kind in _PREFIXES:
        if text.startswith(prefix):
            return kind
    for word, kind in _WORDS:
        if word in text:
            return kind
    if text.startswith(_DECODE_PREFIXES):
        return "decode_error"
    return "other"


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


_STAGES_SEEN: set[str] = set()


def _label_series(stage: str) -> None:
    """All of a stage's reason_kind series at once, on its first dead letter: the series
    count is then fixed by the stages in use, whatever input arrives later."""
    if stage not in _STAGES_SEEN:
        _STAGES_SEEN.add(stage)
        for kind in REASON_KINDS:
            metrics.DEADLETTERS.labels(stage=stage, reason_kind=kind)


def send_deadletter(producer: Producer, names: Names, stage: str, reason: str, raw: bytes | str,
                    topic: str | None = None, position: str | None = None,
                    kind: str | None = None) -> None:
    """`kind` (one of REASON_KINDS) when the caller knows it; otherwise it is classified.
    `stage` must be a name from code, never from input: it is a metric label too."""
    doc = deadletter_document(stage, reason, raw, topic, position)
    producer.send(names.deadletter, codec.encode(doc), key=stage)
    _label_series(stage)
    label = kind if kind in REASON_KINDS else reason_kind(reason)
    metrics.DEADLETTERS.labels(stage=stage, reason_kind=label).inc()
    metrics.RECORDS.labels(stage=stage, outcome="deadlettered").inc()
