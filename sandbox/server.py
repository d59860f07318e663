"""Running the sandbox: in the caller's event loop (tests) or standalone (other processes).

`async with SandboxServer(...) as sb:` starts uvicorn as a task in the current loop on a free
port and returns once it listens, so async tests can call `sb.world` directly and deliveries run
as background tasks in that same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType

import httpx
import uvicorn
from starlette.types import ASGIApp

from sandbox.accounts import AccountRouter
from sandbox.app import create_app
from sandbox.delivery import DELIVERIES_AT_ONCE, Deliverer
from sandbox.faults import Faults
from sandbox.limits import DEFAULT_WINDOW, RateLimitSpec, build_limiter
from sandbox.tokens import Credentials
from sandbox.world import World

TICK_SECONDS = 1.0
FREEZE_AT = 10_000


class _InLoopServer(uvicorn.Server):
    """uvicorn without its signal handlers (the caller's process owns its signals), and one
    that stops as soon as asked instead of at its next 0.1 s tick: tests start many."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.stopping.wait()


@dataclass
class RunningServer:
    """A uvicorn server running as a task in the current loop."""

    server: _InLoopServer
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        self.server.stopping.set()
        await self.task


async def start_uvicorn(app: ASGIApp, host: str, port: int) -> RunningServer:
    """Serve `app` from this loop (port 0 = a free one) and return once it listens."""
    # IPPROTO_TCP by name: asyncio turns Nagle off only on sockets that say so, and a response
    # written as headers then body otherwise waits out the client's delayed ACK (40 ms).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # re-raises why it could not start
            raise RuntimeError("the server stopped while starting")
        await asyncio.sleep(0.005)
    return RunningServer(server, task, sock.getsockname()[1])


def _faults_of(world: World) -> Callable[[], Faults]:
    return lambda: world.faults


class SandboxServer:
    """A RingCentral look-alike on 127.0.0.1; see the package docstring."""

    def __init__(
        self,
        users: int = 0,
        rate_limits: RateLimitSpec = "off",
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int = 3600,
        client_id: str | None = None,
        client_secret: str | None = None,
        jwt: str | None = None,
        *,
        rate_window: float = DEFAULT_WINDOW,
        penalty: float | None = None,
        blacklist_after: int = 10,
        delivery_timeout: float = 3.0,
        seed: int | None = None,
        accounts: int = 1,
    ) -> None:
        if accounts < 1:
            raise ValueError("accounts must be at least 1")
        self.host = host
        self.port = port
        self.credentials = Credentials.make(client_id, client_secret, jwt)
        # One World per account, each with its own JWT for the same app, its own users,
        # subscriptions, tokens, rate limits and faults; the first is the RC_* account.
        self.worlds: list[World] = []
        for index in range(accounts):
            credentials = self.credentials
            if index:
                credentials = Credentials.make(self.client_id, self.client_secret)
            self.worlds.append(
                World(
                    limiter=build_limiter(rate_limits, window=rate_window, penalty=penalty),
                    credentials=credentials,
                    token_ttl=token_ttl,
                    seed=None if seed is None else seed + index,
                )
            )
        self.world = self.worlds[0]
        self._users = users
        self._blacklist_after = blacklist_after
        self._delivery_timeout = delivery_timeout
        self._running: RunningServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.credentials.client_secret

    @property
    def jwt(self) -> str:
        return self.credentials.jwt

    @property
    def account_id(self) -> str:
        return self.world.account_id

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings_overrides(self) -> dict[str, str]:
        """Keyword arguments for `Settings(...)` that point ringsync at this sandbox."""
        return {
            "rc_server_url": self.url,
            "rc_client_id": self.client_id,
            "rc_client_secret": self.client_secret,
            "rc_jwt": self.jwt,
        }

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url!r}, account_id={self.account_id!r})"

    def account(self, account_id: str) -> World:
        """The World of one account."""
        return next(world for world in self.worlds if world.account_id == account_id)

    async def start(self) -> None:
        if self._users:
            for world in self.worlds:
                world.seed(self._users)
            if self._users * len(self.worlds) >= FREEZE_AT:
                # Full collections would walk every seeded user again and again (60-90 ms
                # stalls while paging 100,000 users); they live as long as the process anyway.
                gc.freeze()
        self._client = httpx.AsyncClient(timeout=self._delivery_timeout)
        slots = asyncio.Semaphore(DELIVERIES_AT_ONCE)
        for world in self.worlds:
            world.deliverer = Deliverer(
                self._client,
                _faults_of(world),
                world.clock.now,
                blacklist_after=self._blacklist_after,
                timeout=self._delivery_timeout,
                slots=slots,
            )
        app = create_app(self.world) if len(self.worlds) == 1 else AccountRouter(self.worlds)
        self._running = await start_uvicorn(app, self.host, self.port)
        self.port = self._running.port
        for world in self.worlds:
            world.base_url = self.url
        self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        """Reminders and expiry also follow real time, not only `advance_clock`."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for world in self.worlds:
                world.tick()

    async def wait(self, stop: asyncio.Event) -> None:
        """Block until `stop` is set (standalone use: on SIGINT/SIGTERM) or the server ends."""
        if self._running is None:
            return
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, self._running.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for world in self.worlds:
            if world.deliverer is not None:
                await world.deliverer.close()
        if self._running is not None:
            await self._running.stop()
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
