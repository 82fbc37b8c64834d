"""The `reports:` block of the configuration (watchkeeper/config.py keeps it opaque)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeeper.config import ConfigError


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    tls: Literal["none", "starttls", "ssl"] = Field("none", description="starttls: upgrade "
                                                    "on port 587; ssl: implicit TLS on 465")
    username: str | None = None
    password: str | None = None
    sender: str = "watchkeeper@localhost"
    ca_file: str | None = Field(None, description="PEM of the CA that signed the mail server's "
                                "certificate (an internal government CA); default: the system's")
    timeout_seconds: float = Field(30, gt=0, le=600)


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    type: Literal["daily", "weekly", "monthly"]
    cron: str = Field(description="crontab: minute hour day month day-of-week, Asia/Shanghai")
    site: str = Field("/", description="root of the subtree covered; / = everything")
    lang: Literal["zh-CN", "en"] = "zh-CN"
    email_to: list[str] = Field(default_factory=list)
    webhook_url: str | None = None


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    templates_dir: str | None = Field(None, description="folder of edited templates and "
                                      "clauses.yaml; missing files fall back to the shipped ones")
    lang: Literal["zh-CN", "en"] = "zh-CN"
    timezone: str = "Asia/Shanghai"
    retention_months: int = Field(6, ge=1, le=120, description="legal minimum checked (CSL "
                                  "Art. 23): six calendar months")
    collector_stale_seconds: int = Field(900, ge=10, le=86_400,
                                         description="a collector silent longer is 'down'")
    report_hours: dict[str, float] = Field(
        default_factory=lambda: {"cii": 1, "state_organ": 2, "other": 4},
        description="reporting deadlines for level III and above, by org_type")
    schedules: list[Schedule] = Field(default_factory=list)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    delivery_attempts: int = Field(3, ge=1, le=20)
    delivery_backoff_seconds: float = Field(30, ge=0, le=3600)
    claim_timeout_seconds: int = Field(1800, ge=60, le=86_400, description="a claimed report "
                                       "still missing after this long was lost with its process"
                                       ": another scheduler takes it over")


def report_settings(raw: dict | None) -> ReportSettings:
    try:
        return ReportSettings(**(raw or {}))
    except ValidationError as exc:
        lines = [f"config: reports.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
