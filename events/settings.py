"""The one Settings class: every knob of ringsync, read from the environment or a `.env` file.

Every setting is checked when the class is built, so a process with a bad one stops at start-up
with one line naming it (the command exits 2) instead of failing later, half-way through work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url

from events.secret_checks import (
    API_TOKEN_LENGTH,
    FROM_RINGCENTRAL,
    HOW_TO_MAKE_ONE,
    check_secret,
    check_signing_secret,
)

DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg", "postgresql")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# RingCentral's extension types (the `type` of an extension record).
EXTENSION_TYPES = (
    "User", "Department", "Announcement", "Voicemail", "DigitalUser", "VirtualUser", "FaxUser",
    "PagingOnly", "SharedLinesGroup", "DelegatedLinesGroup", "GroupCallPickup", "IvrMenu",
    "ApplicationExtension", "ProxyAdmin", "RoomConnector", "ParkLocation", "Limited", "Bot",
    "Site", "Room", "FlexibleUser", "TieLine",
)  # fmt: skip
_CLOCK = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")
_HOOK = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
HOW_TO_MAKE_A_FERNET_KEY = (
    'make one with `python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"`'
)


def _split(value: object) -> object:
    """Accept comma-separated strings for list settings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address with a host")
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
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
    # Fernet keys (comma-separated: the first encrypts, all decrypt) for stored credentials.
    secret_key: SecretStr = Field(SecretStr(""), validation_alias="RINGSYNC_SECRET_KEY")
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
    # Seconds between sweeps of the account's role assignments (0: only after each resync).
    roles_every: int = Field(3600, ge=0, validation_alias="RINGSYNC_ROLES_EVERY")
    # The daily call-log scan (UTC; None = off), how far its first run reads back, and whether
    # outbound texts count too.
    activity_at: time | None = Field(time(4, 0), validation_alias="RINGSYNC_ACTIVITY_AT")
    activity_backfill_days: int = Field(
        30, ge=1, le=3650, validation_alias="RINGSYNC_ACTIVITY_BACKFILL_DAYS"
    )
    activity_sms: bool = Field(False, validation_alias="RINGSYNC_ACTIVITY_SMS")
    # Kinds of action a written policy approves without a person: `suspend`, or nothing.
    actions_auto_approve: Annotated[list[str], NoDecode] = Field(
        [], validation_alias="RINGSYNC_ACTIONS_AUTO_APPROVE"
    )
    # Approved actions run per account in any 60 minutes; the rest wait for a later hour.
    actions_max_per_hour: int = Field(50, ge=1, validation_alias="RINGSYNC_ACTIONS_MAX_PER_HOUR")

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

    # Bearer tokens of `ringsync api`: /v1 and /metrics, and /scim/v2 (SCIM is off without one).
    api_token: SecretStr = Field(SecretStr(""), validation_alias="RINGSYNC_API_TOKEN")
    scim_token: SecretStr = Field(SecretStr(""), validation_alias="RINGSYNC_SCIM_TOKEN")

    metrics_port: int = Field(9108, ge=0, le=65535, validation_alias="RINGSYNC_METRICS_PORT")
    # Where the worker's /metrics and /healthz listen: this host only unless told otherwise.
    metrics_host: str = Field("127.0.0.1", validation_alias="RINGSYNC_METRICS_HOST")
    # Raw notifications, delivered outbox rows and finished records older than this many days
    # are pruned daily (0 = keep everything); users' history stays.
    retention_days: int = Field(90, ge=0, le=36_500, validation_alias="RINGSYNC_RETENTION_DAYS")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", validation_alias="RINGSYNC_LOG_FORMAT"
    )
    log_level: str = Field("INFO", validation_alias=AliasChoices("RINGSYNC_LOG_LEVEL", "LOG_LEVEL"))
    # A directory where workers log when each change passed each stage (see `workers.stages`):
    # for benchmarks; off when unset.
    stage_log: Path | None = Field(None, validation_alias="RINGSYNC_STAGE_LOG")
    # The stored account this copy acts for ("" = the default account of the RC_* environment).
    _account: str = PrivateAttr("")

    @field_validator(
        "user_types", "offboarding_urls", "delivery_schedule", "actions_auto_approve", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("actions_auto_approve")
    @classmethod
    def _auto_approvable(cls, value: list[str]) -> list[str]:
        # Deprovisions (and reactivations) always need a person.
        kinds = [kind.strip().lower() for kind in value if kind.strip()]
        if any(kind != "suspend" for kind in kinds):
            raise ValueError("only suspend may be approved by policy (or leave it empty)")
        return kinds

    @field_validator("stage_log", mode="before")
    @classmethod
    def _unset_when_blank(cls, value: object) -> object:
        # `RINGSYNC_STAGE_LOG=` (as .env.example ships it) means off, not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("delivery_schedule")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every delay must be a positive number of seconds")
        return value

    @field_validator("resync_at", "activity_at", mode="before")
    @classmethod
    def _resync_clock(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.strip().lower() in {"off", "none", ""}:
            return None
        # The cron runs on hours and minutes in UTC: seconds or an offset would be ignored.
        if not _CLOCK.fullmatch(value.strip()):
            raise ValueError("must be HH:MM (UTC), or off")
        return value.strip().zfill(5)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        usage = "must be redis://[:password@]host[:port][/db], rediss://… or unix://path"
        try:
            parse_url(value)  # type: ignore[no-untyped-call]  # redis-py's own reading
        except ValueError:
            raise ValueError(usage) from None
        parts = urlsplit(value)
        db = parts.path.strip("/")
        if parts.scheme != "unix" and db and not db.isdigit():
            raise ValueError(usage + " (db is a number)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # the engine's own reading of it

        usage = "must be sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER:PASSWORD@HOST/DB"
        scheme, separator, _ = value.partition("://")
        if not separator or scheme not in DATABASE_SCHEMES:
            raise ValueError(usage)
        if scheme == "sqlite+aiosqlite":
            found = make_url(value)
            if not found.database or found.database == ":memory:" or found.query.get("uri"):
                raise ValueError(
                    usage + " (a file: every process, and each of its engines, opens it)"
                )
        try:
            port = make_url(value).port
        except ValueError:
            raise ValueError(usage + " (the port is a number)") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError(usage + " (the port is a number from 1 to 65535)")
        return value

    @field_validator("rc_server_url", "webhook_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        return _check_web_url(value) if value else value

    @field_validator("offboarding_urls")
    @classmethod
    def _web_urls(cls, value: list[str]) -> list[str]:
        return [_check_web_url(url) for url in value]

    @field_validator("rc_client_secret", "rc_jwt")
    @classmethod
    def _credential(cls, value: SecretStr) -> SecretStr:
        return check_secret(value, FROM_RINGCENTRAL)

    @field_validator("verification_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) > 64:
            raise ValueError("must be at most 64 characters (RingCentral's limit)")
        return check_secret(value, HOW_TO_MAKE_ONE)

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        keys = [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
        for key in keys:
            try:
                raw = base64.urlsafe_b64decode(key.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError(
                    f"each comma-separated key must be a Fernet key; {HOW_TO_MAKE_A_FERNET_KEY}"
                )
        return value

    @field_validator("api_token", "scim_token")
    @classmethod
    def _api_token(cls, value: SecretStr) -> SecretStr:
        value = check_secret(value, HOW_TO_MAKE_ONE)
        if value.get_secret_value() and len(value.get_secret_value()) < API_TOKEN_LENGTH:
            raise ValueError(f"is shorter than {API_TOKEN_LENGTH} characters; {HOW_TO_MAKE_ONE}")
        return value

    @field_validator("offboarding_secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        return check_signing_secret(value)

    @field_validator("offboarding_hook")
    @classmethod
    def _hook(cls, value: str) -> str:
        if value and not _HOOK.fullmatch(value):
            raise ValueError("must be module:function, e.g. mypackage.offboarding:on_event")
        return value

    @field_validator("user_types")
    @classmethod
    def _user_types(cls, value: list[str]) -> list[str]:
        known = {kind.lower(): kind for kind in EXTENSION_TYPES}
        unknown = [kind for kind in value if kind.lower() not in known]
        if unknown or not value:
            raise ValueError(
                f"must name RingCentral extension types ({', '.join(EXTENSION_TYPES)})"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        return [known[kind.lower()] for kind in value]

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.fullmatch(value):
                raise ValueError(
                    "must be an IP address or a host name, e.g. 127.0.0.1 or 0.0.0.0"
                ) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @model_validator(mode="after")
    def _renewal_fits(self) -> Self:
        if self.renew_margin >= self.subscription_ttl:
            raise ValueError(
                "RINGSYNC_RENEW_MARGIN must be shorter than RINGSYNC_SUBSCRIPTION_TTL "
                "(otherwise every check renews)"
            )
        return self

    @property
    def account(self) -> str:
        """The stored account this copy acts for; "" for the default account."""
        return self._account

    def for_account(self, account_id: str, *, server_url: str, jwt: str) -> Settings:
        """This deployment's settings acting for a stored account: its server and JWT, its own
        verification token, and Redis keys of its own (token, budgets, locks, coalescing)."""
        scoped = self.model_copy(
            update={
                "rc_server_url": server_url,
                "rc_jwt": SecretStr(jwt),
                "verification_token": self.account_token(account_id),
            }
        )
        scoped._account = account_id
        return scoped

    def account_token(self, account_id: str) -> SecretStr:
        """A stored account's verification token, derived from RINGSYNC_VERIFICATION_TOKEN so
        the receiver checks it without a database (64 hex characters, RingCentral's limit)."""
        base = self.verification_token.get_secret_value().encode()
        if not base:
            return SecretStr("")
        return SecretStr(hmac.new(base, account_id.encode(), hashlib.sha256).hexdigest())

    def key(self, *parts: str) -> str:
        """A Redis key in this deployment's namespace (and this copy's account, if stored)."""
        scope = ("account", self._account) if self._account else ()
        return self.root_key(*scope, *parts)

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

    def root_key(self, *parts: str) -> str:
        """A Redis key of the whole deployment, whichever account this copy acts for."""
        return ":".join((self.redis_namespace, *parts))

    @property
    def metrics_key(self) -> str:
        """The Redis hash the receivers publish their counters to (`ringsync api` serves it)."""
        return self.key("metrics", "receiver")

    @property
    def queue_name(self) -> str:
        """The arq queue every ringsync job goes through."""
        return self.root_key("queue")
