"""The one interface of both flow tables (reference.py and compiled/), so the flow meter
(collectors/capture/meter.py) drives either without asking which it has.

A table takes decoded packet batches and hands out what it has finished as a `FlowBatch`:
the compiled table's `RecordColumns` (numpy rows of `layout.RECORD`), the reference's
`RecordList` (FlowRecord objects). Either gives its records, its ECS documents and how
many of them are final.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from watchkeeper.documents import FlowRecord
from watchkeeper.networks import InternalNetworks

from collectors.capture.decoding.packets import Packets


class FlowBatch(Protocol):
    def __len__(self) -> int: ...

    def final_count(self) -> int:
        """Records of ended flows (the rest are interim, final=False)."""

    def records(self) -> list[FlowRecord]: ...

    def documents(self, observer: str, networks: InternalNetworks,
                  site: str | None = None) -> Iterator[dict]:
        """The ECS flow documents of these records."""

    def lines(self, observer: str, networks: InternalNetworks,
              site: str | None = None) -> Iterator[bytes]:
        """The same documents as JSON lines (`codec.encode(doc) + b"\\n"` each, in order),
        in chunks of many lines."""


class FlowTable(Protocol):
    hints: dict[bytes, dict]     # flow key -> payload hint (appmeta), set by the meter
    now: float                   # the table's clock: the latest packet or advance()

    @property
    def evicted(self) -> int:
        """Flows pushed out because the table was full."""

    def process(self, packets: Packets) -> None: ...

    def advance(self, now: float) -> None:
        """Time passed with no packet: expire what is due by `now`."""

    def drain_columns(self) -> FlowBatch:
        """Records finished so far."""

    def flush_columns(self) -> FlowBatch:
        """End of input: every remaining flow, reported."""
