"""Compiled (numba) flow table: collectors/flowtable.py's meanings at C speed."""
from collectors.capture.flows.compiled.table import CompiledFlowTable, RecordColumns, to_records

__all__ = ["CompiledFlowTable", "RecordColumns", "to_records"]
