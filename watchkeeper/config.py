"""Settings: defaults < config file (YAML) < WATCHKEEPER_* environment < command-line flags.

Validated at start; an error names the bad key (`config: netflow_port: ...`) so an operator
can fix the file without reading code.
"""
from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watchkeeper.incidents import IncidentSettings
from watchkeeper.networks import DEFAULT_INTERNAL

_file_data: ContextVar[dict] = ContextVar("watchkeeper_config_file", default={})


class ConfigError(ValueError):
    """Bad configuration; the message names the key and the source."""


class AuthSettings(BaseModel):
    """API access (docs/api-access.md). The secret signs access tokens; without one a random
    secret lives as long as the process (tokens then end with it)."""
    model_config = ConfigDict(extra="forbid")

    secret_key: str | None = Field(None, description="JWT signing secret, >= 32 random "
                                                     "characters (env WATCHKEEPER_AUTH__SECRET_KEY)")
    access_ttl_seconds: int = Field(900, ge=60, le=86_400, description="access token lifetime")
    refresh_ttl_seconds: int = Field(7 * 86_400, ge=300, le=90 * 86_400,
                                     description="refresh token lifetime (each use rotates it)")
    max_failures: int = Field(5, ge=1, le=100, description="consecutive failed logins before a "
                                                           "temporary lockout")
    lockout_seconds: int = Field(900, ge=1, le=86_400, description="how long the lockout lasts")
    max_failures_per_source: int = Field(20, ge=1, le=10_000,
                                         description="failed logins from one address within "
                                                     "lockout_seconds before it is refused "
                                                     "(any user names; this process only)")
    public_metrics: bool = Field(True, description="serve /metrics (pipeline counters) without "
                                                   "credentials; false = not served")
    public_docs: bool = Field(False, description="serve /docs and /openapi.json without "
                                                 "credentials (the schema names every route)")

    @field_validator("secret_key")
    @classmethod
    def _strong(cls, value: str | None) -> str | None:
        from watchkeeper.identity import check_secret
        return None if value is None else check_secret(value)


class FeedSettings(BaseModel):
    """The live feed, GET /api/v1/stream (docs/api-posture.md)."""
    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(0.5, ge=0.05, le=30, description="how often the store is read")
    settle_seconds: float = Field(1.5, ge=0, le=60, description="documents stamped less than "
                                  "this long ago wait for the next read (ES refreshes each 1 s)")
    heartbeat_seconds: float = Field(15, ge=0.1, le=300, description="comment line interval")
    posture_seconds: float = Field(15, ge=0.1, le=3600, description="posture tick interval")
    lifetime_seconds: float = Field(900, ge=0.1, le=86_400, description="the server closes a "
                                    "stream after this long; the client resumes (Last-Event-ID)")
    token_seconds: int = Field(60, ge=10, le=3600, description="lifetime of a stream token "
                               "(POST /api/v1/stream/token, for EventSource)")
    posture_cache_seconds: float = Field(5, ge=0, le=300, description="GET /api/v1/posture "
                                         "answers reused this long per scope (0: never)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WATCHKEEPER_", env_nested_delimiter="__",
                                      extra="forbid")

    bus: str = Field("memory://", description="memory://, kafka://HOST:PORT[,HOST:PORT] "
                     "(kafka-python), or kafka+rdkafka://HOST:PORT (the optional librdkafka "
                     "client, `pip install 'watchkeeper[rdkafka]'`)")
    store: str = Field("sqlite:///var/watchkeeper.db",
                       description="sqlite:///PATH or http://HOST:9200")
    partitions: int = Field(4, ge=1, le=256, description="partitions per bus topic")
    bus_memory_max_held: int = Field(
        50_000, ge=0, description="memory:// in `run`: unread messages a topic holds for its "
        "slowest reader before producers wait (back-pressure; bounds memory; 0: unbounded)")
    bus_memory_max_held_mib: int = Field(
        64, ge=0, description="memory:// in `run`: the same bound in MiB of unread messages "
        "(a message can be a batch of events or a 128 KiB dead letter; 0: unbounded)")
    namespace: str = Field("wk", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
                           description="topic and consumer-group prefix (wk.events, wk-detect)")
    host: str = Field("127.0.0.1", description="API listen address")
    port: int = Field(8000, ge=1, le=65535, description="API port")
    observer: str = Field("watchkeeper", min_length=1, max_length=64,
                          description="this sensor's name (observer.name)")
    site: str | None = Field(None, max_length=128, description="labels.site of this sensor")
    internal_networks: list[str] = Field(list(DEFAULT_INTERNAL))
    retention_months: int = Field(6, ge=1, le=120,
                                  description="keep events this many calendar months (law: >= 6)")
    alert_window_seconds: int = Field(3600, ge=60, le=86400,
                                      description="repeats within this window update one alert")
    inventory_file: str | None = Field(None, description="asset inventory YAML (sites, CIDRs): "
                                       "seeds the store's inventory once, while it is empty")
    inventory_refresh_seconds: float = Field(10.0, ge=0.1, le=3600, description="how often "
                                             "alerting re-reads the inventory from the store")
    allowlist: list[dict[str, Any]] = Field(
        default_factory=list, description="[{reason, cidr?, detector?, category?}]")
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                 description="per-detector parameters by name")
    ingest_stall_seconds: float = Field(
        120.0, ge=5, le=3600, description="`ingest` gives up (exit 1) when a stage owes work "
                                          "and moves nothing for this long")
    worker_stall_seconds: float = Field(
        60.0, ge=1, le=3600,
        description="a consuming stage (detect, index, correlate) that owes work but makes no "
                    "progress, or completes no step, for this long rejoins its consumer group")
    worker_max_rejoins: int = Field(
        3, ge=0, le=100,
        description="rejoins in a row without progress before the process exits with status "
                    "75 so a supervisor restarts it")
    collector_silent_seconds: float = Field(
        300.0, ge=2, le=86_400,
        description="a collector that was sending and then reports nothing, or no new output, "
                    "for this long is silent: alert wk.collector.silent (docs/detection-health.md)")
    collector_check_seconds: float = Field(10.0, ge=0.5, le=3600,
                                           description="how often silences are looked for")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API access")
    feed: FeedSettings = Field(default_factory=FeedSettings, description="live feed (SSE)")
    incidents: IncidentSettings = Field(default_factory=IncidentSettings,
                                        description="incident reporting clocks")
    # Validated by the reports package (reports/settings.py: templates folder, language,
    # schedules, SMTP and webhook delivery); kept opaque here so the spine knows no feature.
    reports: dict[str, Any] = Field(default_factory=dict,
                                    description="compliance reports: see docs/reports.md")
    playbooks: dict[str, Any] = Field(default_factory=dict,
                                      description="playbook worker settings, validated by "
                                                  "playbooks/settings.py (docs/playbooks.md)")

    @field_validator("internal_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)   # raises ValueError naming the CIDR
        return value

    @field_validator("bus")
    @classmethod
    def _bus_url(cls, value: str) -> str:
        if not value.startswith(("memory://", "kafka://", "kafka+rdkafka://")):
            raise ValueError("use memory://, kafka://HOST:PORT or kafka+rdkafka://HOST:PORT")
        return value

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "http://", "https://")):
            raise ValueError("use sqlite:///PATH or http://HOST:9200")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _FileSource(settings_cls))


S = TypeVar("S", bound=Settings)


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used
        return _file_data.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_data.get())


def load_settings(config_file: str | Path | None = None, *, model: type[S] = Settings,
                  **overrides: Any) -> S:
    """Build validated settings; `overrides` are command-line values (None = not given).
    `model`: the composed settings (app/settings.py adds each subsystem's own model)."""
    data = _read_file(config_file) if config_file else {}
    token = _file_data.set(data)
    try:
        return model(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from None
    finally:
        _file_data.reset(token)


def _read_file(path: str | Path) -> dict:
    import yaml         # only with a config file: ~10 ms of every start otherwise (`flows`)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must be a mapping of settings")
    return data


def _describe(exc: ValidationError, config_file: str | Path | None) -> str:
    where = f" ({config_file} or WATCHKEEPER_* environment)" if config_file else ""
    lines = [f"config: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
             for err in exc.errors()]
    return "\n".join(lines) + where
