"""What the API's routes share, opened in the lifespan: a worker's dependencies (settings,
store, Redis, queue) and which account the un-prefixed paths serve."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final, cast

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from api.console.kept import Kept
from api.console.minutes import MinuteCounts
from api.console.queries import Overview
from events.settings import Settings
from workers.context import Deps
from workers.store import tables
from workers.store.identity import Store

# How long the default account is remembered (it is set once, by the first resync).
DEFAULT_ACCOUNT_TTL: Final = 30.0
# How long the console's overview of every account is reused (its pages refresh every 30 s).
OVERVIEW_TTL: Final = 3.0


@dataclass
class ApiState:
    """A worker's dependencies (the API queues the same work a worker's jobs do), and more."""

    deps: Deps
    _default: tuple[float, str | None] = field(default=(0.0, None), repr=False)
    # The console's chart counts of complete minutes, and its overview of every account, kept
    # between requests.
    minutes: MinuteCounts = field(default_factory=MinuteCounts, repr=False)
    overview: Kept[Overview] = field(default_factory=lambda: Kept(OVERVIEW_TTL), repr=False)

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def store(self) -> Store:
        return self.deps.store

    @property
    def redis(self) -> Redis:
        return self.deps.redis

    @property
    def engine(self) -> AsyncEngine:
        return self.store.engine

    @property
    def dialect(self) -> str:
        return str(self.store.engine.dialect.name)

    async def default_account(self) -> str | None:
        """The account RingCentral's credentials belong to (as the worker learned it), else the
        only (or first) account the mirror holds users of; None while the mirror is empty."""
        at, account = self._default
        if account is not None and time.monotonic() - at < DEFAULT_ACCOUNT_TTL:
            return account
        cached = await self.redis.get(self.settings.key("account_id"))
        if cached is not None:
            account = cached.decode()
        else:
            query = select(tables.users.c.account_id).order_by(tables.users.c.account_id)
            async with self.store.engine.connect() as conn:
                account = (await conn.execute(query.limit(1))).scalar()
        self._default = (time.monotonic(), account)
        return account

    async def holds_account(self, account_id: str) -> bool:
        return await self.store.account_has_users(account_id)


def api_state(request: Request) -> ApiState:
    return cast(ApiState, request.state.api)
