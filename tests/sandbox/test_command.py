"""`ringsync sandbox` / `python -m sandbox`: a standalone process that accepts the
RC_* credentials from the environment, or makes some up and prints them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from sandbox import command
from sandbox.oauth import JWT_GRANT
from scripts.cli import main
from tests.fixtures.services import free_port

ROOT = Path(__file__).resolve().parents[2]
GIVEN = {
    "RC_APP_CLIENT_ID": "cid",
    "RC_APP_CLIENT_SECRET": "a-client-secret-given-in-the-env",
    "RC_USER_JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnaXZlbiJ9.given-signature",
}


async def _read_settings(stream: asyncio.StreamReader) -> dict[str, str]:
    found: dict[str, str] = {}
    async with asyncio.timeout(20):
        while True:
            line = (await stream.readline()).decode().strip()
            if not line:
                raise AssertionError("the sandbox exited before printing its settings")
            if line.startswith("#"):
                return found
            name, _, value = line.partition("=")
            found[name] = value


@pytest.mark.parametrize("given", [True, False], ids=["env-credentials", "invented"])
async def test_standalone_sandbox(given: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RC_")}
    if given:
        env.update(GIVEN)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        "--users",
        "3",
        cwd=tmp_path,  # no .env from the working directory
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        printed = await _read_settings(process.stdout)
        assert printed["RC_SERVER_URL"] == f"http://127.0.0.1:{port}"
        credentials = GIVEN if given else printed
        assert set(printed) == ({"RC_SERVER_URL"} if given else {"RC_SERVER_URL", *GIVEN})
        async with httpx.AsyncClient(base_url=printed["RC_SERVER_URL"]) as client:
            token = await client.post(
                "/restapi/oauth/token",
                auth=(credentials["RC_APP_CLIENT_ID"], credentials["RC_APP_CLIENT_SECRET"]),
                data={"grant_type": JWT_GRANT, "assertion": credentials["RC_USER_JWT"]},
            )
            assert token.status_code == 200
            # Default rate limits are on in the standalone sandbox.
            assert token.headers["X-Rate-Limit-Limit"] == "5"
            info = (await client.get("/sandbox/info")).json()
            assert info["users"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            code = await process.wait()
    assert code == 0


def test_missing_rate_limit_file_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--rate-limits", "no-such-file.json"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "no such file" in err


def test_bad_rate_limit_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "limits.json"
    path.write_text("{not json")
    assert main(["sandbox", "--rate-limits", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ringsync sandbox: --rate-limits")
    assert "Traceback" not in err


def test_standalone_bad_rate_limit_file_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert command.main(["--rate-limits", "no-such-file.json"]) == 1
    err = capsys.readouterr().err
    assert err == "sandbox: --rate-limits: no such file: no-such-file.json\n"
