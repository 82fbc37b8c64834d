"""Shared by the syslog unit tests: a line through header parser, program parser and ECS."""
from __future__ import annotations

from datetime import datetime, timezone

from collectors.syslog import document, programs, rfc
from collectors.syslog.document import Origin
from watchkeeper import schema

RECEIVED = datetime(2026, 11, 22, 20, 23, 28, tzinfo=timezone.utc).timestamp()


def to_doc(line: str | bytes, received: float = RECEIVED, peer: str = "192.0.2.1",
           port: int = 51514, transport: str = "tcp") -> dict:
    raw = line.encode() if isinstance(line, str) else line
    msg = rfc.parse(raw, received)
    doc = document.build(msg, raw, Origin(peer, port, transport, received), programs.extract(msg))
    return schema.validate(doc)
