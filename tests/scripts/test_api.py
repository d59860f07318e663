"""`ringsync api` refuses to start without a real RINGSYNC_API_TOKEN: one line, exit 2."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.commands import ringsync
from tests.fixtures.services import free_port

REAL = "Zq3vX9-kP2mL8wT4rY6nB1cD5fG7hJ0sA"


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("RINGSYNC_API_TOKEN", ""),
        ("RINGSYNC_API_TOKEN", "change-me"),
        ("RINGSYNC_API_TOKEN", "Zq3vX9-kP2mL8wT4rY6nB1"),  # 22 characters: too short
        ("RINGSYNC_SCIM_TOKEN", "your-scim-token"),
    ],
)
async def test_api_refuses_to_start_without_a_real_token(name: str, token: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGSYNC_", "RC_"))}
    env["RINGSYNC_API_TOKEN"] = REAL
    env[name] = token
    ran = await ringsync(env, "api", "--port", str(free_port()), within=20)
    assert ran.code == 2
    assert ran.one_clear_line(), ran.err
    assert name in ran.err
    if token:
        assert token not in ran.err
