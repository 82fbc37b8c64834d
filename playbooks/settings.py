"""The `playbooks:` section of the config file, validated here (the spine keeps it as a dict)."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class BlockSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apply: bool = Field(False, description="false = dry run: rules are generated and recorded, "
                                           "never applied")
    command: list[str] = Field(["nft", "-f", "-"], min_length=1,
                               description="argument list run to apply a ruleset (stdin); "
                                           "never a shell string")
    allowed_commands: list[str] = Field(["nft", "/usr/sbin/nft"],
                                        description="the only programs `command` may name")
    table: str = Field("watchkeeper", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    default_seconds: int = Field(3600, ge=60, le=30 * 86_400)
    never_block: list[str] = Field(default_factory=list,
                                   description="CIDRs never blocked (besides internal ones)")

    @field_validator("command")
    @classmethod
    def _allowlisted(cls, value: list[str], info) -> list[str]:
        if any(ch in value[0] for ch in " ;|&$`"):
            raise ValueError("command[0] is a program name, not a shell string")
        return value


class PlaybookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folders: list[str] = Field(default_factory=list,
                               description="customer playbook folders (besides the shipped)")
    shipped: bool = Field(True, description="load playbooks/library/*.yaml")
    approval_expires_seconds: int = Field(3600, ge=10, le=7 * 86_400)
    tick_seconds: float = Field(1.0, gt=0, le=60, description="how often runs are advanced")
    takeover_seconds: float = Field(60.0, gt=0, le=86_400,
                                    description="a run another worker has not saved for this "
                                                "long is taken over (it stopped or died)")
    incident_poll_seconds: float = Field(10.0, gt=0, le=3600,
                                         description="how often incident triggers are checked")
    incident_lookback_days: float = Field(7.0, gt=0, le=366,
                                          description="incidents first seen this recently")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    mail_from: str = "watchkeeper@localhost"
    duty_officer: list[str] = Field(default_factory=list, description="mail addresses")
    parallel_runs: int = Field(64, ge=1, le=512,
                               description="runs advanced side by side in one worker (their "
                                           "store writes are grouped into shared round trips)")
    webhook_timeout: float = Field(10.0, gt=0, le=120)
    block: BlockSettings = Field(default_factory=BlockSettings)

    def library_folders(self) -> list[Path]:
        from playbooks.loader import SHIPPED
        return ([SHIPPED] if self.shipped else []) + [Path(f) for f in self.folders]


def playbook_settings(raw: dict | None) -> PlaybookSettings:
    try:
        return PlaybookSettings.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"config: playbooks.{where}: {first['msg']}") from None
