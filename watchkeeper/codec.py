"""JSON on the bus: msgspec's encoder/decoder (several times faster than the stdlib)."""
from __future__ import annotations

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

encode = _encoder.encode
DecodeError = msgspec.DecodeError


def decode(raw: bytes) -> object:
    return _decoder.decode(raw)
