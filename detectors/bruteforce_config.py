"""Settings of the brute-force detector (detectors/bruteforce.py)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from detectors.base import DetectorConfig
from detectors.kit import refresh_field
from watchkeeper.networks import DEFAULT_INTERNAL, InternalNetworks

AUTH_PORTS = (22, 3389, 21, 23, 445, 5900, 3306, 1433, 110, 143, 587)
AUTH_PROTOCOLS = ("ssh", "ftp", "telnet", "rdp", "rfb", "mysql")   # network.protocol


class BruteForceConfig(DetectorConfig):
    auth_window_seconds: float = Field(900.0, ge=60, le=86_400, description=(
        "event-time window for auth-log failures (Zeek's FTP default: 15 min)"))
    min_failures: int = Field(10, ge=3, le=100_000, description=(
        "failures against one account from one source that make password guessing"))
    burst_failures: int = Field(8, ge=3, le=100_000, description=(
        "failures from one source over any accounts within burst_window_seconds that make "
        "password guessing (Wazuh rule 5712: 8)"))
    burst_window_seconds: float = Field(120.0, ge=10, le=3600, description=(
        "window of the burst rule; a person mistyping does not fail 8 times in 2 minutes"))
    min_accounts: int = Field(8, ge=3, le=100_000, description=(
        "distinct failing accounts from one source that make password spraying"))
    max_tries_per_account: float = Field(3.0, ge=1, le=100, description=(
        "spraying: mean failures per account at most this (more is guessing)"))
    min_failure_ratio: float = Field(0.8, ge=0, le=1, description=(
        "spraying: failed share of the source's logins; an office NAT where users mistype "
        "and then log in stays below"))
    ports: tuple[Annotated[int, Field(ge=1, le=65_535)], ...] = Field(AUTH_PORTS, min_length=1, description=(
        "server ports whose sessions are login attempts (add your SSH on a non-standard port)"))
    protocols: tuple[str, ...] = Field(AUTH_PROTOCOLS, description=(
        "network.protocol values treated as login services whatever the port"))
    flow_window_seconds: float = Field(60.0, ge=10, le=3600, description=(
        "window for flow-shape sessions; 60 s keeps automated logins every 7 s or slower "
        "below 10 (the lab's benign key-based logins every ~15 s tripped a 120 s window)"))
    min_sessions: int = Field(10, ge=3, le=100_000, description=(
        "similar short sessions to one server port (Zeek SSH guessing limit: 10)"))
    max_session_seconds: float = Field(30.0, gt=0, le=3600,
                                       description="longer sessions are not a single login try")
    max_session_bytes: int = Field(16_384, ge=64, le=10_000_000, description=(
        "payload bytes per direction above which a session did more than log in"))
    ssh_min_client_bytes: int = Field(200, ge=0, le=100_000, description=(
        "SSH sessions sending less never reached authentication (banner grabs, checks)"))
    size_tolerance: float = Field(0.25, ge=0, le=1,
                                  description="relative byte difference still 'similar'")
    min_similar_share: float = Field(0.5, gt=0, le=1, description=(
        "similar sessions' share of all sessions to that port; varied traffic stays below"))
    refresh_seconds: float = refresh_field()     # a full window's count never doubles
    max_events_per_key: int = Field(2_000, ge=50, le=1_000_000,
                                    description="attempts or sessions kept per key (oldest drop)")
    max_keys: int = Field(100_000, ge=100, le=10_000_000,
                          description="sources and source|server|port pairs tracked, each")
    internal_networks: tuple[str, ...] = Field(DEFAULT_INTERNAL, description=(
        "CIDRs of our hosts, for log events that carry no network.direction"))

    @field_validator("internal_networks")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        InternalNetworks(value)               # raises ValueError on a bad CIDR
        return value
