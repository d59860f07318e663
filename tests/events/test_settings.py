"""Every setting is checked when Settings is built: a bad value is refused with a message naming
the setting, and good values (including the spellings people use) are read as meant."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, ValidationError

from events.settings import Settings


def _build(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("DATABASE_URL", "nosuchdriver://x"),
        ("DATABASE_URL", "sqlite:///ringsync.db"),  # a synchronous driver
        ("DATABASE_URL", "ringsync.db"),
        ("DATABASE_URL", "sqlite+aiosqlite:///:memory:"),  # each process would have its own
        ("DATABASE_URL", "sqlite+aiosqlite://"),
        ("DATABASE_URL", "postgresql+asyncpg://ringsync:pw@db:port/ringsync"),
        ("DATABASE_URL", "postgresql+asyncpg://ringsync:pw@db:99999/ringsync"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis://localhost:notaport/0"),
        ("REDIS_URL", "redis://localhost:6379/queue"),
        ("REDIS_URL", "http://localhost:6379"),
        ("RC_SERVER_URL", "platform.ringcentral.com"),
        ("RINGSYNC_WEBHOOK_URL", "ftp://ringsync.example.com/webhook"),
        ("RINGSYNC_OFFBOARDING_URLS", "https://hr.example.com/hook,hr.example.com/other"),
        ("RINGSYNC_RESYNC_AT", "25:00"),
        ("RINGSYNC_RESYNC_AT", "03:00+02:00"),  # the cron runs in UTC: an offset would be lost
        ("RINGSYNC_RESYNC_AT", "03:00:30"),
        ("RINGSYNC_RESYNC_AT", "3am"),
        ("RINGSYNC_ACTIVITY_AT", "4am"),
        ("RINGSYNC_ACTIVITY_BACKFILL_DAYS", "0"),
        ("RINGSYNC_ACTIVITY_SMS", "sometimes"),
        ("RINGSYNC_LOG_LEVEL", "verbose"),
        ("RINGSYNC_LOG_FORMAT", "xml"),
        ("RINGSYNC_USER_TYPES", "Usr"),
        ("RINGSYNC_USER_TYPES", ","),
        ("RINGSYNC_OFFBOARDING_HOOK", "mypackage.offboarding"),
        ("RINGSYNC_OFFBOARDING_HOOK", "my package:hook"),
        ("RINGSYNC_METRICS_PORT", "70000"),
        ("RINGSYNC_METRICS_HOST", "0.0.0.0:9108"),
        ("RINGSYNC_METRICS_HOST", "http://localhost"),
        ("RINGSYNC_RETENTION_DAYS", "-1"),
        ("RINGSYNC_MAX_DEPROVISION_RATIO", "1.5"),
        ("RINGSYNC_JOB_TIMEOUT", "0"),
        ("RINGSYNC_DELIVERY_SCHEDULE", "5,-1"),
        ("RINGSYNC_RENEW_MARGIN", "1209600"),  # not shorter than the subscription's life
        ("RINGSYNC_ROLES_EVERY", "-1"),
        ("RINGSYNC_ROLES_EVERY", "1.5"),
        ("RINGSYNC_ROLES_EVERY", "hourly"),
        ("RINGSYNC_ACTIONS_AUTO_APPROVE", "deprovision"),
        ("RINGSYNC_ACTIONS_AUTO_APPROVE", "suspend,reactivate"),
        ("RINGSYNC_ACTIONS_MAX_PER_HOUR", "0"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    env: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)
    assert env in str(caught.value)


def test_good_settings_are_read_as_meant() -> None:
    settings = _build(
        database_url="postgresql://ringsync@db/ringsync",
        redis_url="rediss://:pw@redis.internal:6380/2",
        resync_at="3:30",
        activity_at="off",
        activity_backfill_days="90",
        log_level="debug",
        user_types="user, Department",
        offboarding_hook="mypackage.offboarding:on_event",
        metrics_host="0.0.0.0",
        retention_days=0,
        actions_auto_approve=" Suspend ",
    )
    assert settings.actions_auto_approve == ["suspend"]
    assert settings.resync_at == time(3, 30)
    assert settings.activity_at is None
    assert settings.activity_backfill_days == 90
    assert settings.log_level == "DEBUG"
    assert settings.user_types == ["User", "Department"]  # RingCentral's spelling, for filters
    assert _build(redis_url="unix:///run/redis.sock").redis_url == "unix:///run/redis.sock"
    assert _build(resync_at="off").resync_at is None
    assert _build(metrics_host="::").metrics_host == "::"
    assert _build(metrics_host="worker-1.internal").metrics_host == "worker-1.internal"
    assert _build(roles_every="0").roles_every == 0  # only after each resync
    assert _build(roles_every="1").roles_every == 1
    assert _build(stage_log="").stage_log is None  # as .env.example ships it: off


def test_the_defaults_are_valid() -> None:
    settings = _build()
    assert settings.metrics_host == "127.0.0.1"
    assert settings.retention_days == 90


ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("rc_client_secret", "rc_jwt", "verification_token", "offboarding_secret")


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    assert isinstance(alias, str)
    return alias


def test_the_example_file_is_valid_lists_every_setting_and_ships_no_secret() -> None:
    example = ROOT / ".env.example"
    Settings(_env_file=example)  # valid as shipped
    text = example.read_text()
    for field in Settings.model_fields:
        assert f"\n{_env_name(field)}=" in text, f"{_env_name(field)} is not in .env.example"
    for field in SECRETS:
        assert f"\n{_env_name(field)}=\n" in text, f"{_env_name(field)} is not empty"
    # The secrets we generate come with the command that makes one.
    assert text.count("Make one:") >= 2
