"""The process's settings: the spine's (watchkeeper/config.py) plus each subsystem's own model,
composed here so that the spine never imports a feature package.

Same file, environment and flag precedence as the spine's `load_settings`; a subsystem's
model sits under its own key (`flow_table:`, env `WATCHKEEPER_FLOW_TABLE__…`).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import Field

from collectors.capture.settings import FlowTableSettings
from collectors.settings import CollectorSettings
from watchkeeper import config


class Settings(config.Settings, CollectorSettings):
    flow_table: FlowTableSettings = Field(default_factory=FlowTableSettings,
                                          description="packet capture flow timeouts and bounds")


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Validated settings of every subsystem; `overrides` are command-line values."""
    return config.load_settings(config_file, model=Settings, **overrides)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings with the command line's flags (those a subcommand has) winning."""
    overrides = {k: getattr(args, k, None)
                 for k in ("bus", "store", "host", "port", "syslog_port", "netflow_port")}
    return load_settings(getattr(args, "config", None), **overrides)
