"""The settings the collectors own (syslog, NetFlow, tailers, their status reports), composed
into the process's settings by app/settings.py. Flat keys, as they always were:
`syslog_port` in the config file, WATCHKEEPER_SYSLOG_PORT in the environment. The packet
collector's own model is capture/settings.py (`flow_table:`)."""
from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, field_validator


class CollectorSettings(BaseModel):
    collector_host: str = Field("127.0.0.1", description="syslog/NetFlow listen address")
    syslog_port: int = Field(5514, ge=0, le=65535, description="UDP and TCP; 0 = any free port")
    netflow_port: int = Field(2055, ge=0, le=65535, description="UDP; 0 = any free port")
    collector_allowed_senders: list[str] = Field(
        default_factory=list, description="CIDRs the syslog/NetFlow collectors accept input "
                                          "from; empty = any sender (a WARNING at start)")
    netflow_max_exporters: int = Field(1024, ge=1, le=1_000_000,
                                       description="(exporter, observation domain) pairs "
                                                   "whose templates/sampling/sequence state "
                                                   "is kept; least recently seen evicted")
    netflow_exporter_idle_seconds: float = Field(3600.0, ge=60, le=7 * 86_400,
                                                 description="state of a pair silent this "
                                                             "long is evicted")
    enable_syslog: bool = Field(True, description="`run` listens for syslog")
    enable_netflow: bool = Field(True, description="`run` listens for NetFlow/IPFIX")
    capture_process: bool = Field(True, description="`run --interface` captures in its own "
                                  "process (docs/capture-process.md); false: in a thread of "
                                  "`run`, under its interpreter lock (the old way, to compare)")
    capture_nice: int = Field(0, ge=-20, le=19, description="niceness of that capture "
                              "process: negative (needs CAP_SYS_NICE) puts it ahead of "
                              "detection and indexing, whose backlog the bus holds")
    data_dir: str = Field("var", description="collector state (tailer offsets) lives here")
    tail_paths: list[str] = Field(default_factory=list,
                                  description="Zeek logs / Suricata eve.json files or globs "
                                              "to follow")
    status_seconds: float = Field(10.0, ge=1, le=3600,
                                  description="how often each collector's counters are "
                                              "stored (dataset watchkeeper.collector)")

    @field_validator("collector_allowed_senders")
    @classmethod
    def _sender_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)   # raises ValueError naming the CIDR
        return value
