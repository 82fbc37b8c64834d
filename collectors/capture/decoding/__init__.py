"""Header decoding, record batch -> `packets.Packets`: the reference decoder (reference.py:
numpy fast path + per-packet Python slow path) and the compiled one (compiled.py over
kernel.py), with IP fragment reassembly (fragments*.py)."""
