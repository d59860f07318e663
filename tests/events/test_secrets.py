"""No secret leaks: a full scenario, every log line (in-process at DEBUG and every `ringsync`
subprocess's stderr), the settings' repr and the error messages are searched for the client
secret, the JWT, the verification token, the signing secret and every token the sandbox issued.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from events.settings import Settings
from sandbox.tokens import Credentials, Grant, TokenStore, invent_jwt
from scripts.cli import COMMAND_MODULES
from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import TOKEN, MakePipeline, eventually
from tests.fixtures.sandbox import WebhookSink
from tests.fixtures.services import free_port

SIGNING_SECRET = "whsec_c2lnbmluZy1zZWNyZXQtdGhhdC1tdXN0LW5vdC1sZWFr"
# Commands run as subprocesses when this checkout has them (`[name, args...]`).
COMMANDS = [
    ["subscribe", "--json"],
    ["resync", "--json"],
    ["users", "--json"],
    ["status", "--json"],
]


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access and refresh token the sandbox hands out during the test."""
    tokens: list[str] = []
    issue = TokenStore._issue

    def recording(self: TokenStore, session: str) -> Grant:
        grant = issue(self, session)
        tokens.extend((grant.access_token, grant.refresh_token))
        return grant

    monkeypatch.setattr(TokenStore, "_issue", recording)
    return tokens


def _has_command(name: str) -> bool:
    return any(module.rsplit(".", 1)[-1] == name for module in COMMAND_MODULES) or (
        name == "sandbox"
    )


async def _ringsync(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `ringsync ARGS`; returns its exit code and stdout + stderr together."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


async def test_a_full_scenario_logs_no_secret(
    make_pipeline: MakePipeline,
    sqlite_url: str,
    webhook_sink: WebhookSink,
    issued: list[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("RINGSYNC_LOG_LEVEL", "DEBUG")  # for every subprocess below
    p = await make_pipeline(
        database_url=sqlite_url,
        offboarding_urls=[webhook_sink.url],
        offboarding_secret=SIGNING_SECRET,
    )
    env = {**p.env(), "RINGSYNC_OFFBOARDING_URLS": webhook_sink.url}
    env["RINGSYNC_OFFBOARDING_SECRET"] = SIGNING_SECRET
    worker_log = tmp_path / "worker.log"
    p.spawn_worker(worker_log)
    world = p.sandbox.world
    ids = [world.create_user(first_name=f"S{i}", last_name="Secret") for i in range(4)]
    await p.converged()
    world.update_user(ids[0], last_name="Changed")
    world.disable(ids[1])
    world.unassign(ids[2])
    world.delete(ids[3])
    await p.converged()

    outputs: dict[str, str] = {}
    for command in COMMANDS:
        if _has_command(command[0]):
            code, outputs[" ".join(command)] = await _ringsync(env, *command)
            assert code in (0, 1), outputs[" ".join(command)][-2000:]  # status 1: "look"
    assert ids[0] in outputs["users --json"]
    # Expected failures print their one line: bad credentials, a bad setting.
    wrong = {**env, "RC_APP_CLIENT_SECRET": "wrong-" + p.sandbox.client_secret}
    _, outputs["resync with a wrong secret"] = await _ringsync(wrong, "resync", "--json")
    bad = {**env, "RINGSYNC_VERIFICATION_TOKEN": TOKEN * 4}
    code, outputs["bad settings"] = await _ringsync(bad, "users")
    assert code == 2

    async with httpx.AsyncClient(base_url=p.receiver_url) as http:
        body = orjson.dumps({"uuid": "u-1", "event": "/restapi/v1.0/account/~/extension"})
        refused = await http.post("/webhook", content=body, headers={"Verification-Token": "no"})
        invalid = await http.post("/webhook", content=b"{", headers={"Verification-Token": TOKEN})
    assert (refused.status_code, invalid.status_code) == (401, 400)
    outputs["receiver replies"] = refused.text + invalid.text

    await p.stop_workers()
    for process in p.processes:
        process.kill()  # its log is written line by line; nothing to wait for

        async def ended(process: subprocess.Popen[bytes] = process) -> bool:
            return process.poll() is not None

        await eventually(ended, within=30, what="the worker process to stop")
    outputs["worker process"] = worker_log.read_text()
    outputs["in-process logs"] = "\n".join(
        f"{r.getMessage()} {r.__dict__} {r.exc_text or ''}" for r in caplog.records
    )

    assert len(issued) >= 2, "the scenario logged in at least once"
    secrets = {
        "client secret": p.sandbox.client_secret,
        "JWT": p.sandbox.jwt,
        "verification token": TOKEN,
        "signing secret": SIGNING_SECRET,
        "signing key": SIGNING_SECRET.removeprefix("whsec_"),
        **{f"issued token {n}": token for n, token in enumerate(issued)},
    }
    found = {where: _leaks(text, secrets) for where, text in outputs.items()}
    assert not any(found.values()), found
    # The logs were really captured (a silent scenario would prove nothing).
    assert "notification refused" in outputs["in-process logs"]
    assert outputs["worker process"].strip()


def test_settings_never_show_secrets(make_settings: Callable[..., Settings]) -> None:
    values: dict[str, Any] = {
        "rc_client_secret": "client-secret-value",
        "rc_jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.jwt-signature-value",
        "verification_token": "verification-token-value",
        "offboarding_secret": SIGNING_SECRET,
    }
    settings = make_settings(**values)
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for value in values.values():
        assert value not in shown


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("verification_token", "too-long-verification-token-" * 4),
        ("offboarding_secret", "not-whsec-signing-secret-value"),
    ],
)
def test_invalid_secrets_are_not_echoed_in_errors(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({field: value})
    assert field in str(caught.value)
    assert value not in str(caught.value)


def test_the_cli_reports_a_bad_secret_without_showing_it(tmp_path: Path) -> None:
    value = "not-whsec-but-secret-value"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "users"],
        env={"PATH": "/usr/bin:/bin", "RINGSYNC_OFFBOARDING_SECRET": value, "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "offboarding" in done.stderr.lower()
    assert value not in done.stderr + done.stdout


# --- placeholders and short secrets are refused at start-up ---------------------------------

# A value each secret setting accepts, made the way .env.example says (or RingCentral issues).
RIGHT = {
    "rc_client_secret": secrets.token_urlsafe(24),
    "rc_jwt": invent_jwt(),
    "verification_token": secrets.token_urlsafe(32),
    "offboarding_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
}
# Left in from templates and examples; the last two are Standard Webhooks' published test key.
PLACEHOLDERS = [
    "change-me",
    "changeme",
    "CHANGE_ME",
    "change-me-to-something-long",
    "your-client-secret",
    "your_verification_token_here",
    "<secret>",
    "secret",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
]
SHORT = {
    "rc_client_secret": "k3Yq9-Zt2mVx1Lp",  # 15 characters
    "rc_jwt": "eyJ.eyJ.sig",
    "verification_token": "Tq8-zR2vLw5nX0c",
    # base64 of 16 bytes: Standard Webhooks keys hold 24 to 64.
    "offboarding_secret": "whsec_" + base64.b64encode(b"sixteen-bytes-ok").decode(),
}


def _settings(field: str, value: str) -> Settings:
    values: dict[str, Any] = {field: value}
    return Settings(_env_file=None, **values)


def _refusal(field: str, value: str) -> str:
    with pytest.raises(ValidationError) as caught:
        _settings(field, value)
    message = str(caught.value)
    assert field in message
    if len(value) >= 8:  # ("secret" itself is a word of the message)
        assert value not in message
    return message


@pytest.mark.parametrize("field", RIGHT)
def test_an_unset_secret_is_left_to_the_commands_that_need_it(field: str) -> None:
    assert getattr(_settings(field, ""), field).get_secret_value() == ""


@pytest.mark.parametrize("value", PLACEHOLDERS)
@pytest.mark.parametrize("field", RIGHT)
def test_a_placeholder_secret_is_refused(field: str, value: str) -> None:
    assert "placeholder" in _refusal(field, value)


@pytest.mark.parametrize("field", RIGHT)
def test_a_short_secret_is_refused(field: str) -> None:
    message = _refusal(field, SHORT[field])
    assert "16 characters" in message or "24 random bytes" in message
    assert "make one with" in message or "RingCentral" in message  # says where to get one


@pytest.mark.parametrize("field", RIGHT)
def test_a_real_secret_is_accepted(field: str) -> None:
    settings = _settings(field, RIGHT[field])
    assert getattr(settings, field).get_secret_value() == RIGHT[field]


def test_credentials_the_sandbox_makes_up_are_accepted() -> None:
    """(The demo's, made the same way, are used by tests/scripts/test_demo.py.)"""
    for _ in range(20):  # random values: several draws, not one lucky one
        made = Credentials.make()
        settings = Settings(
            _env_file=None,
            rc_client_id=made.client_id,
            rc_client_secret=made.client_secret,
            rc_jwt=made.jwt,
        )
        assert settings.rc_jwt.get_secret_value() == made.jwt


@pytest.mark.parametrize("token", ["", "change-me", "short-token"])
async def test_serve_refuses_to_start_without_a_real_token(tmp_path: Path, token: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGSYNC_", "RC_"))}
    env["RINGSYNC_VERIFICATION_TOKEN"] = token
    ran = await ringsync(env, "serve", "--port", str(free_port()), within=20)
    assert ran.code == 2
    assert ran.one_clear_line(), ran.err
    assert "RINGSYNC_VERIFICATION_TOKEN" in ran.err
    assert "make one with" in ran.err
    if token:
        assert token not in ran.err
