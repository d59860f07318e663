"""The PostgreSQL engine's pool: no round trip to test a connection before each transaction, and
a connection the server closed while pooled replaced before anything uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from api.app import open_state
from events.settings import Settings
from tests.chaos.proxy import TcpProxy, proxy_to
from tests.fixtures.pipeline import eventually
from workers.store.identity import Store


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    async with proxy_to(postgres_url) as cut:
        yield cut


def _through(postgres_url: str, proxy: TcpProxy) -> str:
    netloc = urlsplit(postgres_url).netloc
    return postgres_url.replace(netloc, f"postgres@127.0.0.1:{proxy.port}", 1)


@pytest.fixture
async def proxied_store(postgres_url: str, proxy: TcpProxy) -> AsyncIterator[Store]:
    store = await Store.open(_through(postgres_url, proxy))
    yield store
    await store.close()


async def test_a_transaction_sends_no_ping_first(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    dialect: Any = store.engine.sync_engine.dialect
    pings: list[object] = []
    ping = dialect.do_ping

    def counted(connection: object) -> bool:
        pings.append(connection)
        return bool(ping(connection))

    dialect.do_ping = counted
    try:
        for n in range(3):
            await store.set_state("k", str(n))
        assert await store.get_state("k") == "2"
    finally:
        await store.close()
    assert pings == []


def _pooled(store: Store) -> list[Any]:
    """The asyncpg connections the store has returned to its pool so far."""
    seen: list[Any] = []

    def checked_in(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            seen.append(dbapi_connection.driver_connection)

    event.listen(store.engine.sync_engine, "checkin", checked_in)
    return seen


async def test_a_connection_the_server_closed_while_pooled_is_replaced_unused(
    proxied_store: Store, proxy: TcpProxy
) -> None:
    """Not every database call is in a job that is retried (the account rows a job reads first,
    the crons arq runs once): a restart must not fail the first statement after it."""
    pooled = _pooled(proxied_store)
    await proxied_store.set_state("k", "before")  # a connection now waits in the pool
    assert pooled
    await proxy.stop()  # the server "restarts": every open connection is cut
    await proxy.start()

    async def seen_closed() -> bool:
        return all(connection.is_closed() for connection in pooled)

    await eventually(seen_closed, within=5, what="the client to see the cut")
    await proxied_store.set_state("k", "after")  # no exception: replaced at checkout
    assert await proxied_store.get_state("k") == "after"


async def test_the_apis_store_pings_so_a_restart_fails_no_request(
    postgres_url: str, proxy: TcpProxy, make_settings: Callable[..., Settings]
) -> None:
    """A person's request is not retried the way a job is: the API's store tests a pooled
    connection before using it."""
    settings = make_settings(database_url=_through(postgres_url, proxy))
    async with open_state(settings) as state:
        store = state.deps.store
        await store.set_state("k", "before")
        await proxy.stop()
        await proxy.start()
        await store.set_state("k", "after")  # no exception: the dead connection was replaced
        assert await store.get_state("k") == "after"
