"""Compiled (numba) flow table: flows/reference.py's meanings at C speed."""
from collectors.capture.flows.compiled.table import CompiledFlowTable, RecordColumns, to_records

__all__ = ["CompiledFlowTable", "RecordColumns", "to_records"]
