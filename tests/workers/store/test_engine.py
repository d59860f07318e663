"""The PostgreSQL engine's pool: no round trip to test a connection before each transaction,
and a connection gone stale (the server restarted, the network cut) still costs only a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from api.app import open_state
from events.settings import Settings
from tests.chaos.proxy import TcpProxy, proxy_to
from workers.failures import MAX_TRANSIENT_TRIES, retries
from workers.ringcentral.errors import unreachable
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


async def test_a_stale_pooled_connection_is_retried_then_replaced(
    proxied_store: Store, proxy: TcpProxy
) -> None:
    await proxied_store.set_state("k", "before")  # a connection now waits in the pool
    await proxy.stop()  # the server "restarts": every open connection is cut
    await proxy.start()
    failures: list[Exception] = []
    for attempt in range(2):
        try:
            await proxied_store.set_state("k", f"after {attempt}")
            break
        except Exception as exc:  # what a job would see
            failures.append(exc)
    # Unpinged, the first try meets the dead connection: it fails as an outage (retried, never
    # dead-lettered), the pool is emptied, and the next try connects afresh.
    assert len(failures) == 1, failures
    assert unreachable(failures[0])
    assert retries(failures[0], MAX_TRANSIENT_TRIES + 1)
    assert await proxied_store.get_state("k") == f"after {len(failures)}"


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
