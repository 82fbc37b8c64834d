"""Frame -> header -> program parser -> ECS document -> bus, off the network thread.

Nothing here raises: malformed input is dead-lettered with its reason and position, and a
bug in a parser costs one message (dead-lettered as `internal`), never the collector.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from watchkeeper import ratelog
from watchkeeper.publish import EventPublisher

from collectors.syslog import document, programs, rfc
from collectors.syslog.document import Origin
from collectors.syslog.framing import Frame
from collectors.syslog.message import SyslogError

log = logging.getLogger(__name__)
ratelog.limit(log)   # a parser bug hit by every message must not flood the log


@dataclass
class Received:
    """A frame as it left the network side, queued for parsing."""
    frame: Frame
    origin: Origin
    seq: int                 # per-server receive sequence: the dead-letter position

    @property
    def position(self) -> str:
        return f"{document.peer_address(self.origin.peer_ip, self.origin.peer_port)}:{self.seq}"


@dataclass
class SyslogStats:
    """Counters of one server. received/dropped move on the network thread, parsed/malformed
    on the parser thread, so each field has one writer."""
    received: int = 0        # frames taken off the wire (including malformed ones)
    parsed: int = 0          # documents published to the events topic
    malformed: int = 0       # frames dead-lettered: framing, header or document invalid
    dropped: int = 0         # UDP datagrams lost because the queue was full
    connections: int = 0     # TCP connections accepted so far
    refused: int = 0         # datagrams and connections from senders not allowed


def to_document(item: Received) -> dict:
    """SyslogError for input that is not a syslog message; otherwise the ECS document."""
    if item.frame.error is not None:
        raise SyslogError(item.frame.error)
    msg = rfc.parse(item.frame.data, item.origin.received)
    return document.build(msg, item.frame.data, item.origin, programs.extract(msg))


class Processor:
    def __init__(self, publisher: EventPublisher, stats: SyslogStats):
        self.publisher = publisher
        self.stats = stats

    def handle_batch(self, items: list[Received]) -> None:
        for item in items:
            self.handle(item)

    def handle(self, item: Received) -> None:
        try:
            doc = to_document(item)
        except SyslogError as exc:
            self._reject(item, f"SyslogError: {exc}")
            return
        except Exception as exc:     # a parser bug must not stop the collector
            log.exception("syslog parser failed on %s", item.position)
            self._reject(item, f"internal: {type(exc).__name__}: {exc}")
            return
        if self.publisher.publish(doc):
            self.stats.parsed += 1
        else:
            self.stats.malformed += 1    # the publisher already dead-lettered it

    def _reject(self, item: Received, reason: str) -> None:
        self.stats.malformed += 1
        self.publisher.reject(reason, item.frame.data, position=item.position)
