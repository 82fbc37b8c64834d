"""Tailers: follow Zeek logs and Suricata EVE files (like `tail -F`) and publish ECS events.

Entry point: `collectors.tailers.runner.TailRunner(publisher, paths, state_file).run(stop)`.
"""
from collectors.tailers.runner import TailRunner, TailStats, detect_format

__all__ = ["TailRunner", "TailStats", "detect_format"]
