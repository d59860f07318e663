"""The deployment files: docker-compose.yml must parse (`docker compose config`, else Debian's
`docker-compose config`), and the Dockerfile must build a non-root `ringsync` image.

No Docker engine is needed: `config` only reads, interpolates and validates the file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.pipeline import eventually
from tests.fixtures.services import free_port

ROOT = Path(__file__).resolve().parent.parent
CORE = {"redis", "postgres", "receiver", "worker", "api"}


def _compose() -> list[str]:
    """The compose command this machine has: the plugin first, then the standalone one."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is not None:
        return [standalone]
    message = "NO DOCKER COMPOSE: neither `docker compose` nor `docker-compose` is installed"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (scripts/env.sh installs docker-compose when running as root)")
    pytest.skip(message)


@pytest.fixture
def compose(tmp_path: Path) -> Any:
    """Run `<compose> -f docker-compose.yml ARGS` with a `.env` made from `.env.example`."""
    command = _compose()
    env_file = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env_file)
    with env_file.open("a") as extra:
        extra.write("RINGSYNC_VERIFICATION_TOKEN=token-from-the-env-file\n")
    env = {
        **os.environ,
        "RINGSYNC_ENV_FILE": str(env_file),
        "POSTGRES_PASSWORD": "pw-from-env",
        "REDIS_PASSWORD": "redis-pw-from-env",
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            [*command, "-f", str(ROOT / "docker-compose.yml"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_compose_file_parses_and_lists_the_services(compose: Any) -> None:
    assert set(compose("config", "--services").split()) >= CORE
    assert "sandbox" in compose("--profile", "sandbox", "config", "--services").split()


def test_compose_services_are_configured_as_documented(compose: Any) -> None:
    config = yaml.safe_load(compose("config"))
    services = config["services"]
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--appendfsync everysec" in redis_command
    # It holds acknowledged notifications and the access token: a password, and no eviction.
    assert "--requirepass redis-pw-from-env" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == "redis-pw-from-env"
    assert services["receiver"]["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert services["worker"]["command"] == ["worker"]
    receiver_check = " ".join(services["receiver"]["healthcheck"]["test"])
    assert "healthz" in receiver_check
    assert "readyz" in receiver_check
    assert "healthcheck" in services["worker"]
    assert services["api"]["command"][:3] == ["api", "--host", "0.0.0.0"]
    assert str(services["api"]["ports"][0]).startswith("127.0.0.1:")  # not public by default
    assert "healthz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("receiver", "worker", "api"):
        env = services[name]["environment"]
        # .env reaches the containers; the service addresses come from the compose file.
        assert env["RINGSYNC_VERIFICATION_TOKEN"] == "token-from-the-env-file"
        assert env["REDIS_URL"] == "redis://:redis-pw-from-env@redis:6379/0"
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://ringsync:pw-from-env@postgres")
        assert set(services[name]["depends_on"]) == {"redis", "postgres"}


def test_dockerfile_builds_a_non_root_ringsync_image() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["ringsync"]' in lines
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # only what the package needs is sent to the build
    for needed in (
        "pyproject.toml",
        "events",
        "workers",
        "api",
        "scripts",
        "sandbox",
        "migrations",
    ):
        assert f"!{needed}" in ignored


def test_compose_refuses_to_run_redis_without_a_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
    env["RINGSYNC_ENV_FILE"] = str(ROOT / ".env.example")
    done = subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=tmp_path,  # no .env here to read REDIS_PASSWORD from
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "REDIS_PASSWORD must be set" in done.stderr


async def test_the_worker_healthcheck_fails_when_that_worker_is_dead(
    compose: Any, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """The compose file's worker healthcheck, run against a real `ringsync worker` process:
    healthy while it runs; unhealthy while it is frozen (its loop answers nothing) and after it
    was killed, whatever any other worker of the deployment is doing."""
    check = yaml.safe_load(compose("config"))["services"]["worker"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RINGSYNC_", "RC_"))},
        "REDIS_URL": redis_url,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
        "RINGSYNC_METRICS_PORT": str(free_port()),
        "RINGSYNC_RESYNC_AT": "off",
        "RINGSYNC_LOG_FORMAT": "json",
    }

    async def healthy() -> bool:
        checking = await asyncio.create_subprocess_exec(
            sys.executable, "-c", check[3], env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(30):
            return await checking.wait() == 0

    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.cli", "worker", env=env, cwd=tmp_path,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await eventually(healthy, within=30, what="the worker to be healthy")
        worker.send_signal(signal.SIGSTOP)  # alive as a process, doing nothing
        assert not await healthy()
        worker.send_signal(signal.SIGCONT)
        await eventually(healthy, within=30, what="the worker to be healthy again")
        worker.kill()
        await worker.wait()
        assert not await healthy()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
