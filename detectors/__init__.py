"""Detectors: small stateful classes that turn events into alerts (DESIGN.md §6)."""
import watchkeeper  # noqa: F401  (installs the hook that loads the compiled detectors)
