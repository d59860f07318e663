"""The receiver's account routing, table by table: which account a notification is for and
whether its token opens that account (none / wrong / right), against a real Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from events.models import Notification
from events.routing import SUBSCRIPTION_ACCOUNTS, Router, named_account
from events.settings import Settings
from tests.fixtures.services import PrivateRedis

BASE = "a-deployment-verification-token"
DEFAULT, OTHER = "400000000004", "500000000004"


def note(event: str, subscription: str | None = None) -> Notification:
    return Notification.model_validate(
        {
            "uuid": "u-1",
            "event": event,
            "timestamp": "2026-11-23T10:00:00Z",
            "subscriptionId": subscription,
            "body": {"extensionId": "1"},
        }
    )


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (f"/restapi/v1.0/account/{OTHER}/extension", OTHER),
        (f"/restapi/v1.0/account/{OTHER}/extension/7", OTHER),
        ("/restapi/v1.0/account/~/extension", None),
        ("/restapi/v1.0/subscription/~?threshold=60", None),
    ],
)
def test_the_account_is_the_number_in_the_event_path(event: str, named: str | None) -> None:
    assert named_account(event) == named


async def test_tokens_open_their_own_account_only(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    settings = make_settings(verification_token=BASE)
    await redis.set(settings.root_key("account_id"), DEFAULT)
    router = Router(settings, redis)
    other = settings.account_token(OTHER).get_secret_value()
    default_path = f"/restapi/v1.0/account/{DEFAULT}/extension"
    other_path = f"/restapi/v1.0/account/{OTHER}/extension"

    assert other != BASE
    assert len(other) == 64
    assert await router.check(note(default_path), BASE) == ""
    assert await router.check(note(other_path), other) == OTHER
    assert await router.check(note(other_path), BASE) is None  # the default's token
    assert await router.check(note(default_path), other) is None
    assert await router.check(note(other_path), None, None) is None
    assert await router.check(note(other_path), "x" * 64) is None


async def test_a_tilde_path_follows_its_subscription_and_else_the_default(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    settings = make_settings(verification_token=BASE)
    await redis.hset(settings.root_key(*SUBSCRIPTION_ACCOUNTS), "sub-b", OTHER)  # type: ignore[misc]
    router = Router(settings, redis)
    other = settings.account_token(OTHER).get_secret_value()
    tilde = "/restapi/v1.0/account/~/extension"

    assert await router.check(note(tilde, "sub-b"), other) == OTHER
    assert await router.check(note(tilde, "sub-unknown"), BASE) == ""
    assert await router.check(note(tilde, "sub-unknown"), other) is None
    assert await router.check(note(tilde, "sub-b"), "wrong") is None


async def test_an_unknown_default_account_is_not_asked_for_on_every_notification(
    make_settings: Callable[..., Settings], private_redis: PrivateRedis
) -> None:
    settings = make_settings(verification_token=BASE, redis_url=private_redis.url)
    client = aioredis.Redis.from_url(private_redis.url)
    router = Router(settings, client)
    path = f"/restapi/v1.0/account/{OTHER}/extension"
    token = settings.account_token(OTHER).get_secret_value()
    try:
        for _ in range(200):
            assert await router.check(note(path), token) == OTHER
        stats = await client.info("commandstats")
        # No worker has learned the default account yet: asked once, not once a notification.
        assert stats["cmdstat_get"]["calls"] == 1
    finally:
        await client.aclose()


async def test_the_default_token_stops_opening_other_accounts_once_a_worker_learns_the_default(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    settings = make_settings(verification_token=BASE)
    router = Router(settings, redis)
    other = f"/restapi/v1.0/account/{OTHER}/extension"
    # Before any worker ran, which number is the default account's is unknown: its token opens
    # numeric paths (a one-account deployment's first notifications).
    assert await router.check(note(other), BASE) == ""
    await redis.set(settings.root_key("account_id"), DEFAULT)
    # At once, not after a cached "unknown" has run out.
    assert await router.check(note(other), BASE) is None
    assert await router.check(note(f"/restapi/v1.0/account/{DEFAULT}/extension"), BASE) == ""


def test_a_stored_account_s_keys_are_its_own_and_the_queue_is_shared(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(verification_token=BASE)
    scoped = settings.for_account(OTHER, server_url="https://rc.example.com", jwt="j" * 40)
    assert scoped.key("rc", "token") != settings.key("rc", "token")
    assert scoped.key("ratelimit", "light") != settings.key("ratelimit", "light")
    assert scoped.queue_name == settings.queue_name
    assert (
        scoped.verification_token.get_secret_value()
        == settings.account_token(OTHER).get_secret_value()
    )
    assert "j" * 40 not in repr(scoped)
