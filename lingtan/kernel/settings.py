"""All runtime settings, read once from ``LINGTAN_*`` environment variables."""

from __future__ import annotations

import json
import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import AwareDatetime, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    # As root the embedded PostgreSQL runs as a separate system user that must be able to reach
    # its data folder, so use a system location rather than root's private home.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/lingtan")
    return Path(platformdirs.user_data_dir("lingtan", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINGTAN_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy/psycopg URL; unset means `lingtan demo` starts an embedded PostgreSQL",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://[user:pass@]host:port; unset means `lingtan demo` starts an embedded broker",
    )
    mqtt_protocol: str = Field(default="5", pattern=r"^(5|3\.1\.1)$")
    data_dir: Path = Field(default_factory=_default_data_dir)

    site_id: str = "demo-plant"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins allowed to call the API, comma-separated or a JSON list;"
                    " empty: no CORS headers",
    )
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8050, ge=1, le=65535)
    dashboard_refresh_seconds: float = Field(default=5.0, ge=5.0)
    dashboard_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="key that signs dashboard session cookies; unset: one is generated and kept in"
                    " data_dir/dashboard-secret, so a restart keeps people signed in",
    )

    sim_host: str = "127.0.0.1"
    sim_modbus_port: int = Field(default=5020, ge=1, le=65535)
    sim_seed: int = 42
    sim_speed: float = Field(default=1.0, gt=0)
    sim_retrofit_date: date | None = Field(
        default=None,
        description="the local day (YYYY-MM-DD) from whose midnight the simulated plant's compressor 1"
                    " runs at variable speed; unset: `lingtan demo` puts it 28 days before its first"
                    " start, and `lingtan simulate` without a state file has no retrofit",
    )
    embedded_mqtt_port: int = Field(default=11883, ge=1, le=65535)
    gateway_metrics_port: int = Field(default=9108, ge=1, le=65535)

    raw_retention_days: int = Field(default=730, ge=1)

    # Rollups are central work (lingtan/core/rollup_worker.py): every API process refreshes the
    # buckets writers marked, as do `lingtan ingest` and `lingtan rollups`; refreshes take turns
    # in the database, so any number of them is safe.
    rollups_refresher: bool = Field(default=True, description=(
        "refresh marked rollup buckets in the API process (off: a `lingtan rollups` or"
        " `lingtan ingest` process does it)"))
    rollups_every_seconds: float = Field(default=2.0, gt=0, description=(
        "how often a rollup refresher catches up on the buckets new readings marked"))

    # Alerting (lingtan/core/alerts, scheduled by api/scheduler.py). The scheduler runs inside the
    # API process; with several API processes exactly one evaluates (PostgreSQL advisory lock),
    # so it is safe to leave on everywhere.
    alerts_scheduler: bool = Field(default=True, description="run the alert scheduler in the API process")
    alerts_tick_seconds: float = Field(default=10.0, gt=0, description=(
        "how often the leader looks for due rules and due e-mails; each rule keeps its own interval"))
    dashboard_url: str = Field(default="http://127.0.0.1:8050/", description="linked from alert e-mails")
    smtp_host: str | None = Field(default=None, description="unset: alert e-mails wait in the outbox")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_tls: str = Field(default="starttls", pattern=r"^(none|starttls|tls)$", description=(
        "none: plain SMTP; starttls: upgrade after connecting (port 587); tls: implicit TLS (port 465)"))
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "lingtan@localhost"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    clock_start: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 instant with an offset: the process's clock starts there and runs at"
                    " the real rate (tests and replays at a chosen hour); unset: the system clock",
    )
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern=r"^(json|text)$")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
