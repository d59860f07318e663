"""A seeded mirror served by the real API app on uvicorn, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from events.settings import Settings
from tests.api.mirror import Person, api_settings, people, running_api, seed
from workers.accounts.store import AccountStore
from workers.store.identity import Store


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings
    account_id: str
    people: list[Person]


@pytest.fixture
async def served(
    make_settings: Callable[..., Settings],
    database_url: str,
    account_id: str,
    store: Store,
    redis: Redis,
) -> AsyncIterator[Served]:
    """60 users of every state in this test's own account, the default account of the API."""
    persons = people()
    await seed(store, account_id, persons)
    settings = api_settings(make_settings(database_url=database_url))
    # As the worker records it once it learned the account from RingCentral.
    await redis.set(settings.key("account_id"), account_id)
    await AccountStore(store).register_default(account_id, settings.rc_server_url)
    async with running_api(settings) as url:
        yield Served(url, settings, account_id, persons)
