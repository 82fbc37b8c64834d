"""Detectors: small stateful classes that turn events into alerts (DESIGN.md §6)."""
