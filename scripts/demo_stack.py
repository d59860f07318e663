"""Everything `ringsync demo` starts, and stops again whatever happens: a Redis (the one in
REDIS_URL when it answers, else a private `redis-server`), the sandbox, the receiver and a worker
as subprocesses with one environment, and an offboarding sink in this process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from redis.exceptions import RedisError

from events.settings import Settings
from sandbox.tokens import Credentials
from scripts.cli import Failure
from scripts.connections import safe_url
from scripts.demo_sink import Sink

START_WITHIN = 30.0
# The sandbox serves two accounts: the RC_* environment's, and one the demo adds.
ACCOUNTS = 2
STOP_GRACE = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def poll(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Wait until `check()` is true, or fail with `what` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        with contextlib.suppress(httpx.HTTPError, RedisError, OSError):
            if await check():
                return
        await asyncio.sleep(0.05)
    raise Failure(f"{what} did not happen within {within:.0f} s")


@dataclass
class Stack:
    """The running demo: its settings (what every process shares) and how to reach each part."""

    settings: Settings
    directory: Path
    sandbox_url: str
    sink: Sink
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_tail(self, name: str, lines: int = 5) -> list[str]:
        path = self.directory / f"{name}.log"
        if not path.exists():
            return []
        return path.read_text(errors="replace").splitlines()[-lines:]


async def _redis_answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_for_demo(url: str, directory: Path) -> AsyncIterator[str]:
    """`url` when a Redis answers there, else a private redis-server (stopped afterwards)."""
    if await _redis_answers(url):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise Failure(
            f"no Redis answers at {safe_url(url)} and redis-server is not installed "
            "(scripts/demo sets one up)"
        )
    port = free_port()
    process = _start_redis(binary, port, directory)
    private = f"redis://127.0.0.1:{port}/0"
    try:
        await poll(lambda: _redis_answers(private), 10, "the private redis-server starting")
        yield private
    finally:
        _stop(process)


def _start_redis(binary: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _forget_keys(url: str, namespace: str) -> None:
    """Delete the demo's keys (its namespace, and arq's keys for its job ids); nothing else."""
    client = aioredis.Redis.from_url(url)
    try:
        for pattern in (f"{namespace}*", f"arq:*:{namespace}*"):
            batch = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if batch:
                await client.delete(*batch)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running_stack(given: Settings, *, users: int) -> AsyncIterator[Stack]:
    """Start everything the demo needs; stop all of it on the way out (errors, Ctrl-C too)."""
    directory = Path(tempfile.mkdtemp(prefix="ringsync-demo-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            redis_url = await stack.enter_async_context(redis_for_demo(given.redis_url, directory))
            namespace = f"ringsync-demo-{secrets.token_hex(4)}"
            stack.push_async_callback(_forget_keys, redis_url, namespace)
            sink = Sink("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
            await stack.enter_async_context(sink.serving())
            settings = _settings(given, redis_url, namespace, directory, sink)
            env = _environment(settings)
            demo = Stack(settings, directory, settings.rc_server_url, sink, env)
            stack.callback(_stop_all, demo)
            sandbox_port = int(settings.rc_server_url.rsplit(":", 1)[1])
            receiver_port = int(settings.webhook_url.split(":")[2].split("/")[0])
            _spawn(demo, "sandbox", "-m", "sandbox", "--port", str(sandbox_port),
                   "--users", str(users), "--rate-limits", "default",
                   "--accounts", str(ACCOUNTS))  # fmt: skip
            _spawn(demo, "receiver", "-m", "scripts.cli", "serve", "--port", str(receiver_port))
            _spawn(demo, "worker", "-m", "scripts.cli", "worker")
            await _wait_ready(demo, redis_url)
            yield demo
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _settings(
    given: Settings, redis_url: str, namespace: str, directory: Path, sink: Sink
) -> Settings:
    credentials = Credentials.make()
    database_url = given.database_url
    if "database_url" not in given.model_fields_set:
        database_url = f"sqlite+aiosqlite:///{directory / 'ringsync.db'}"
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        redis_namespace=namespace,
        database_url=database_url,
        rc_server_url=f"http://127.0.0.1:{free_port()}",
        rc_client_id=credentials.client_id,
        rc_client_secret=SecretStr(credentials.client_secret),
        rc_jwt=SecretStr(credentials.jwt),
        secret_key=SecretStr(Fernet.generate_key().decode()),
        webhook_url=f"http://127.0.0.1:{free_port()}/webhook",
        verification_token=SecretStr(secrets.token_urlsafe(24)),
        offboarding_urls=[sink.url],
        offboarding_secret=SecretStr(sink.secret),
        metrics_port=0,
        resync_at=None,
        log_format="json",
    )


def _environment(settings: Settings) -> dict[str, str]:
    env = settings.process_env(
        RINGSYNC_OFFBOARDING_URLS=",".join(settings.offboarding_urls),
        RINGSYNC_OFFBOARDING_SECRET=settings.offboarding_secret.get_secret_value(),
        RINGSYNC_SECRET_KEY=settings.secret_key.get_secret_value(),
        RINGSYNC_METRICS_PORT="0",
        RINGSYNC_RESYNC_AT="off",
        RINGSYNC_LOG_FORMAT="json",
    )
    env.pop("RINGSYNC_OFFBOARDING_HOOK", None)
    return env


def _spawn(demo: Stack, name: str, *args: str) -> None:
    with (demo.directory / f"{name}.log").open("ab") as log:
        demo.processes[name] = subprocess.Popen(
            [sys.executable, *args],
            env=demo.env,
            cwd=demo.directory,  # no stray .env file is read from the caller's directory
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
        )


async def _wait_ready(demo: Stack, redis_url: str) -> None:
    settings = demo.settings
    receiver = settings.webhook_url.rsplit("/", 1)[0]
    async with httpx.AsyncClient(timeout=2) as http:

        async def up(url: str) -> bool:
            _check_alive(demo)
            return (await http.get(url)).status_code == 200

        await poll(lambda: up(f"{demo.sandbox_url}/sandbox/info"), START_WITHIN, "the sandbox")
        await poll(lambda: up(f"{receiver}/healthz"), START_WITHIN, "the receiver starting")
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def worker_up() -> bool:
            _check_alive(demo)
            return bool(await client.exists(settings.key("worker", "health")))

        await poll(worker_up, START_WITHIN, "the worker starting")
    finally:
        await client.aclose()


def _check_alive(demo: Stack) -> None:
    for name, process in demo.processes.items():
        if process.poll() is not None:
            tail = " | ".join(demo.log_tail(name, 3))
            raise Failure(f"the {name} exited with code {process.returncode}: {tail}")


def _stop_all(demo: Stack) -> None:
    processes = list(demo.processes.values())
    for process in processes:  # all at once, then wait for each
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a short grace: at the end of the demo nothing is left running
    that matters, and its Redis keys are deleted anyway."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
