"""Application-layer metadata from single packet payloads (DNS, HTTP, TLS, SSH)."""
