"""Zeek logs (TSV with header, or JSON one object per line) -> ECS documents.

conn -> watchkeeper.flow (through documents.flow_document, so Zeek and our own flows look
alike), dns/http/ssl -> watchkeeper.dns/http/tls, dce_rpc/kerberos -> watchkeeper.dce_rpc/kerberos, ssh/ftp -> watchkeeper.log, notice ->
watchkeeper.log with event.kind "signal" (a Zeek notice is a finding, but turning it into one of
our alerts would bypass our detectors' dedup; the correlator may promote it). Other logs are
ignored, but counted.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from collectors.tailers import zeek_map
from collectors.tailers.common import ALERT, EVENT, HEADER, IGNORED, MALFORMED, Context, Parsed
from collectors.tailers.zeek_tsv import ZeekFormatError, ZeekHeader, apply_header, parse_row

Mapper = Callable[[dict, str, Context], dict]
MAPPERS: dict[str, Mapper] = {
    "conn": zeek_map.conn_doc,
    "dns": zeek_map.dns_doc,
    "http": zeek_map.http_doc,
    "ssl": zeek_map.tls_doc,
    "dce_rpc": zeek_map.dce_rpc_doc,
    "kerberos": zeek_map.kerberos_doc,
    "ssh": zeek_map.ssh_doc,
    "ftp": zeek_map.ftp_doc,
    "notice": zeek_map.notice_doc,
}


def log_type_from_name(path: str) -> str | None:
    """conn.log, conn.09:00:00-10:00:00.log(.gz) -> 'conn'. JSON logs have no #path; Zeek's
    JSON streaming writer adds `_path`, which wins."""
    return os.path.basename(path).split(".", 1)[0] or None


class ZeekParser:
    """Per-file parser: keeps the TSV header block in force (saved with the file's offset)."""

    def __init__(self, path: str, ctx: Context):
        self.ctx = ctx
        self.default_log = log_type_from_name(path)
        self.header = ZeekHeader()

    @property
    def context(self) -> dict:
        return self.header.to_json() if self.header.fields else {}

    def restore(self, context: dict) -> None:
        self.header = ZeekHeader.from_json(context) if context else ZeekHeader()

    def reset(self) -> None:
        self.header = ZeekHeader()

    def parse(self, line: str) -> Parsed:
        line = line.rstrip("\r")
        if not line.strip():
            return Parsed(IGNORED, reason="blank line")
        if line.startswith("#"):
            self.header = apply_header(self.header, line)
            return Parsed(HEADER)
        try:
            record, log = self._record(line)
        except (ValueError, RecursionError) as exc:   # RecursionError: absurdly nested JSON
            return Parsed(MALFORMED, reason=f"zeek: {type(exc).__name__}: {exc}"[:500])
        return map_record(record, log, self.ctx)

    def _record(self, line: str) -> tuple[dict, str | None]:
        if line.startswith("{"):
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ZeekFormatError("JSON line is not an object")
            return record, record.get("_path") or self.default_log
        return parse_row(self.header, line), self.header.path or self.default_log


def map_record(record: dict, log: Any, ctx: Context) -> Parsed:
    mapper = MAPPERS.get(log) if isinstance(log, str) else None
    if mapper is None:
        return Parsed(IGNORED, reason=f"zeek log {log!r} is not mapped")
    try:
        doc = mapper(record, log, ctx)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        return Parsed(MALFORMED, reason=f"zeek {log}: {type(exc).__name__}: {exc}"[:500])
    return Parsed(ALERT if doc["event"]["kind"] == "alert" else EVENT, doc)
