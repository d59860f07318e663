"""Exit codes of the ops commands: 1 with one clear line for expected failures (Redis or the
database unreachable, credentials refused), 2 for bad usage, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.server import SandboxServer
from tests.fixtures.commands import ringsync
from tests.fixtures.services import free_port


def base_env(tmp_path: Path, redis_url: str, namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGSYNC_", "RC_"))}
    return {
        **env,
        "REDIS_URL": redis_url,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ringsync.db'}",
        "RINGSYNC_LOG_FORMAT": "json",
        "RINGSYNC_LOG_LEVEL": "ERROR",
    }


@pytest.mark.parametrize(
    "args", [("status",), ("resync",), ("replay", "--extension", "101"), ("status", "--json")]
)
async def test_an_unreachable_redis_is_one_clear_line(
    tmp_path: Path, namespace: str, args: tuple[str, ...]
) -> None:
    env = base_env(tmp_path, f"redis://127.0.0.1:{free_port()}/0", namespace)
    ran = await ringsync(env, *args)
    assert ran.code == 1
    assert ran.one_clear_line(), ran.err
    assert "cannot reach Redis" in ran.err


@pytest.mark.parametrize("args", [("status",), ("replay", "--dead-letters"), ("resync",)])
async def test_an_unreachable_database_is_one_clear_line(
    tmp_path: Path, redis_url: str, namespace: str, args: tuple[str, ...]
) -> None:
    env = base_env(tmp_path, redis_url, namespace)
    env["DATABASE_URL"] = f"postgresql+asyncpg://postgres:secret@127.0.0.1:{free_port()}/x"
    ran = await ringsync(env, *args)
    assert ran.code == 1
    assert ran.one_clear_line(), ran.err
    assert "identity store" in ran.err
    assert "secret" not in ran.err


async def test_refused_credentials_are_one_clear_line(
    tmp_path: Path, redis_url: str, namespace: str, sandbox: SandboxServer
) -> None:
    env = base_env(tmp_path, redis_url, namespace)
    env.update(
        RC_SERVER_URL=sandbox.url,
        RC_APP_CLIENT_ID=sandbox.client_id,
        RC_APP_CLIENT_SECRET="not-the-client-secret",
        RC_USER_JWT=sandbox.jwt,
    )
    ran = await ringsync(env, "resync")
    assert ran.code == 1
    assert ran.one_clear_line(), ran.err
    assert "RingCentral" in ran.err
    assert "not-the-client-secret" not in ran.err


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "--since", "yesterday"),
        ("replay", "--since", "2026-11-23T10:00:00"),  # no Z, no offset
        ("replay", "--until", "2026-11-23T10:00:00Z"),
        ("replay",),
        ("replay", "--dead-letters", "--outbox"),
        ("replay", "--extension", "101", "--endpoint", "https://hr.example.com/hook"),
        ("resync", "--everything"),
        ("status", "--verbose"),
    ],
)
async def test_bad_usage_exits_2(
    tmp_path: Path, redis_url: str, namespace: str, args: tuple[str, ...]
) -> None:
    ran = await ringsync(base_env(tmp_path, redis_url, namespace), *args)
    assert ran.code == 2, ran.err
    assert "Traceback" not in ran.err
    assert "error:" in ran.err


async def test_replaying_to_an_endpoint_not_configured_is_one_clear_line(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    env = base_env(tmp_path, redis_url, namespace)
    env["RINGSYNC_OFFBOARDING_URLS"] = "https://hr.example.com/hook"
    ran = await ringsync(env, "replay", "--outbox", "--endpoint", "https://typo.example.com/hook")
    assert ran.code == 1
    assert ran.one_clear_line(), ran.err
    assert "https://typo.example.com/hook is not a configured endpoint" in ran.err
    assert "https://hr.example.com/hook" in ran.err


@pytest.mark.parametrize(
    ("name", "value", "args"),
    [
        ("DATABASE_URL", "nosuchdriver://x", ("users",)),
        ("DATABASE_URL", "postgresql+asyncpg://u:db-password@db:port/x", ("users",)),
        ("REDIS_URL", "redis://localhost:notaport/0", ("status",)),
        ("REDIS_URL", "localhost:6379", ("worker", "--burst")),
        ("RINGSYNC_RESYNC_AT", "03:00+02:00", ("users",)),
        ("RINGSYNC_LOG_LEVEL", "verbose", ("users",)),
        ("RINGSYNC_OFFBOARDING_HOOK", "offboarding.py", ("users",)),
    ],
)
async def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, redis_url: str, namespace: str, name: str, value: str, args: tuple[str, ...]
) -> None:
    env = base_env(tmp_path, redis_url, namespace)
    env[name] = value
    ran = await ringsync(env, *args, within=30)
    assert ran.code == 2, ran.err
    assert ran.one_clear_line(), ran.err
    assert ran.err.startswith("ringsync: bad settings: "), ran.err
    assert name in ran.err
    assert value not in ran.err  # a value may hold a password: never echoed
