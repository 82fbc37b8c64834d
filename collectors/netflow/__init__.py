"""NetFlow v5, v9 and IPFIX collector (DESIGN.md §1): UDP export datagrams -> ECS flow events."""
from collectors.netflow.decoder import DecodeResult, NetflowDecoder
from collectors.netflow.listener import NetflowServer, NetflowStats

__all__ = ["DecodeResult", "NetflowDecoder", "NetflowServer", "NetflowStats"]
