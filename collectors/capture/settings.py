"""The packet collector's settings model (`flow_table:` in the config file). The capture
subsystem owns it; app/settings.py composes it into the process's settings."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from collectors.capture.flows.flow import FlowConfig

_FLOW = FlowConfig()


class FlowTableSettings(BaseModel):
    """The packet collector's flow-table knobs; defaults are FlowConfig's (Zeek's timeouts),
    bounds are ours."""
    model_config = ConfigDict(extra="forbid")

    tcp_inactivity_timeout: float = Field(_FLOW.tcp_inactivity_timeout, ge=1, le=86_400,
                                          description="idle TCP flow ends")
    udp_inactivity_timeout: float = Field(_FLOW.udp_inactivity_timeout, ge=1, le=86_400,
                                          description="idle UDP flow ends")
    icmp_inactivity_timeout: float = Field(_FLOW.icmp_inactivity_timeout, ge=1, le=86_400,
                                           description="idle ICMP flow ends")
    early_report: float = Field(_FLOW.early_report, ge=0, le=3600,
                                description="a flow open this long is reported once; 0 = off")
    active_timeout: float = Field(_FLOW.active_timeout, ge=1, le=86_400,
                                  description="then an interim record this often")
    max_flows: int = Field(_FLOW.max_flows, ge=1000, le=50_000_000,
                           description="flows held at once; the oldest deadline is evicted")
    verify_checksums: bool = Field(_FLOW.verify_checksums,
                                   description="drop packets with bad checksums (off: NIC "
                                               "offload makes them common)")

    engine: Literal["compiled", "reference"] = Field(
        _FLOW.engine, description="compiled: the numba flow table; reference: the Python one "
                                  "it is tested against (slower)")

    def flow_config(self) -> FlowConfig:
        return FlowConfig(**self.model_dump())
