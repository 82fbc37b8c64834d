"""Flow tables with Zeek conn.log semantics: the reference (reference.py, flow.py,
tcpstate.py, lite.py, bulk.py) and the compiled one (compiled/), the same `FlowTable`
protocol (protocol.py)."""
