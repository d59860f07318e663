"""The one Settings class: every knob of ringsync, read from the environment or a `.env` file."""

from __future__ import annotations

import base64
import binascii
import os
from datetime import time
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value: object) -> object:
    """Accept comma-separated strings for list settings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Configuration for every ringsync process; build once per entry point and pass it down."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    redis_url: str = Field("redis://localhost:6379/0", validation_alias="REDIS_URL")
    database_url: str = Field("sqlite+aiosqlite:///ringsync.db", validation_alias="DATABASE_URL")

    rc_server_url: str = Field("https://platform.ringcentral.com", validation_alias="RC_SERVER_URL")
    rc_client_id: str = Field("", validation_alias="RC_APP_CLIENT_ID")
    rc_client_secret: SecretStr = Field(SecretStr(""), validation_alias="RC_APP_CLIENT_SECRET")
    rc_jwt: SecretStr = Field(SecretStr(""), validation_alias="RC_USER_JWT")

    webhook_url: str = Field("", validation_alias="RINGSYNC_WEBHOOK_URL")
    verification_token: SecretStr = Field(
        SecretStr(""), validation_alias="RINGSYNC_VERIFICATION_TOKEN"
    )
    max_body_bytes: int = Field(262_144, gt=0, validation_alias="RINGSYNC_MAX_BODY_BYTES")
    enqueue_timeout: float = Field(0.5, gt=0, le=1.0, validation_alias="RINGSYNC_ENQUEUE_TIMEOUT")
    redis_namespace: str = Field(
        "ringsync", min_length=1, validation_alias="RINGSYNC_REDIS_NAMESPACE"
    )

    coalesce_window: float = Field(0.5, ge=0, le=60, validation_alias="RINGSYNC_COALESCE_WINDOW")
    job_timeout: int = Field(30, gt=0, le=3600, validation_alias="RINGSYNC_JOB_TIMEOUT")
    worker_concurrency: int = Field(
        20, gt=0, le=1000, validation_alias="RINGSYNC_WORKER_CONCURRENCY"
    )
    # Multiplies the pauses between a failed job's tries (1 s, 5 s, ... 10 min): below 1, shorter.
    retry_scale: float = Field(1.0, gt=0, le=1, validation_alias="RINGSYNC_RETRY_SCALE")

    subscription_ttl: int = Field(
        1_209_600, gt=0, le=315_360_000, validation_alias="RINGSYNC_SUBSCRIPTION_TTL"
    )
    renew_margin: int = Field(172_800, ge=0, validation_alias="RINGSYNC_RENEW_MARGIN")
    renew_every: int = Field(900, gt=0, validation_alias="RINGSYNC_RENEW_EVERY")
    directory_events: bool = Field(False, validation_alias="RINGSYNC_DIRECTORY_EVENTS")
    max_silence: int = Field(86_400, gt=0, validation_alias="RINGSYNC_MAX_SILENCE")
    resync_at: time | None = Field(time(3, 0), validation_alias="RINGSYNC_RESYNC_AT")
    max_deprovision_ratio: float = Field(
        0.10, ge=0, le=1, validation_alias="RINGSYNC_MAX_DEPROVISION_RATIO"
    )
    max_deprovision_min: int = Field(3, ge=1, validation_alias="RINGSYNC_MAX_DEPROVISION_MIN")
    user_types: Annotated[list[str], NoDecode] = Field(
        ["User"], validation_alias="RINGSYNC_USER_TYPES"
    )
    emit_baseline: bool = Field(False, validation_alias="RINGSYNC_EMIT_BASELINE")

    offboarding_urls: Annotated[list[str], NoDecode] = Field(
        [], validation_alias="RINGSYNC_OFFBOARDING_URLS"
    )
    offboarding_secret: SecretStr = Field(
        SecretStr(""), validation_alias="RINGSYNC_OFFBOARDING_SECRET"
    )
    offboarding_hook: str = Field("", validation_alias="RINGSYNC_OFFBOARDING_HOOK")
    delivery_max_age: int = Field(86_400, gt=0, validation_alias="RINGSYNC_DELIVERY_MAX_AGE")
    # Seconds before the retry after the 1st, 2nd, ... failed delivery attempt; the last repeats.
    delivery_schedule: Annotated[list[float], NoDecode] = Field(
        [5, 30, 120, 600, 1800, 3600], min_length=1, validation_alias="RINGSYNC_DELIVERY_SCHEDULE"
    )

    metrics_port: int = Field(9108, ge=0, le=65535, validation_alias="RINGSYNC_METRICS_PORT")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", validation_alias="RINGSYNC_LOG_FORMAT"
    )
    log_level: str = Field("INFO", validation_alias=AliasChoices("RINGSYNC_LOG_LEVEL", "LOG_LEVEL"))

    @field_validator("user_types", "offboarding_urls", "delivery_schedule", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("delivery_schedule")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every delay must be a positive number of seconds")
        return value

    @field_validator("resync_at", mode="before")
    @classmethod
    def _resync_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"off", "none", ""}:
            return None
        return value

    @field_validator("verification_token")
    @classmethod
    def _token_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > 64:
            raise ValueError("must be at most 64 characters (RingCentral's limit)")
        return value

    @field_validator("offboarding_secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw:
            return value
        if not raw.startswith("whsec_"):
            raise ValueError("must be a Standard Webhooks secret starting with 'whsec_'")
        try:
            base64.b64decode(raw.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError("must be 'whsec_' followed by standard base64") from None
        return value

    def key(self, *parts: str) -> str:
        """A Redis key in this deployment's namespace."""
        return ":".join((self.redis_namespace, *parts))

    def process_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a `ringsync` process joining this deployment (this process's
        environment, plus the connection settings and credentials, plus `overrides`).

        Secrets are unwrapped here, for a child process's environment only.
        """
        return {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "RINGSYNC_REDIS_NAMESPACE": self.redis_namespace,
            "DATABASE_URL": self.database_url,
            "RC_SERVER_URL": self.rc_server_url,
            "RC_APP_CLIENT_ID": self.rc_client_id,
            "RC_APP_CLIENT_SECRET": self.rc_client_secret.get_secret_value(),
            "RC_USER_JWT": self.rc_jwt.get_secret_value(),
            "RINGSYNC_WEBHOOK_URL": self.webhook_url,
            "RINGSYNC_VERIFICATION_TOKEN": self.verification_token.get_secret_value(),
            **overrides,
        }

    @property
    def queue_name(self) -> str:
        """The arq queue every ringsync job goes through."""
        return self.key("queue")
