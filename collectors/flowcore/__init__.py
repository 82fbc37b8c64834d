"""Compiled (numba) flow table: collectors/flowtable.py's meanings at C speed."""
from collectors.flowcore.table import CompiledFlowTable, RecordColumns, to_records

__all__ = ["CompiledFlowTable", "RecordColumns", "to_records"]
