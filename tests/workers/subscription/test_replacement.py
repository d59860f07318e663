"""Replacing our subscription never leaves us without one: the new one is created (through the
handshake) before a working old one is deleted, so a failed creation keeps the old one ours."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from events.app import create_app
from sandbox.subscriptions import MAX_PER_APP
from sandbox.subscriptions import Subscription as SandboxSubscription
from tests.fixtures.receiver import serve_app
from tests.fixtures.renewal import Keeping, MakeKeeping
from tests.fixtures.services import free_port
from workers.context import Deps
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import ApiError, ServerUnavailable
from workers.ringcentral.resources import Subscription
from workers.subscription.plan import Action
from workers.subscription.renewal import ensure_subscription
from workers.subscription.store import load

CREATE = ("POST", "/restapi/v1.0/subscription")
RENEW = "POST /restapi/v1.0/subscription/*/renew"
DAY = 86_400


async def _subscribed(k: Keeping) -> tuple[Deps, Subscription]:
    """Our subscription, made through the handshake, and the deps that made it (with quick
    retries, so a refused call fails fast)."""
    d = await k.deps()
    d.client = RingCentral(k.settings, k.redis, backoff=0.01)
    k.stack.push_async_callback(d.client.aclose)
    made = (await ensure_subscription(d)).subscription
    assert made is not None
    return d, made


async def _near_expiry(k: Keeping, d: Deps) -> None:
    """Inside the renewal margin, with renewals refused by RingCentral."""
    k.sandbox.world.advance_clock(13 * DAY)
    await d.client.account()  # the access token aged too: refresh it before the check
    k.sandbox.world.set_faults(refuse={RENEW: 403})


async def _still_ours(k: Keeping, old: Subscription) -> None:
    [sub] = k.ours()
    assert (sub.id, sub.status) == (old.id, "Active")
    stored = await load(k.store, k.sandbox.account_id)
    assert stored is not None
    assert (stored.id, stored.deleted_at) == (old.id, None)
    assert not [c for c in k.changes() if c[0] == "DELETE"]


async def test_a_refused_renewal_keeps_the_old_one_until_the_new_one_passes_the_handshake(
    make_keeping: MakeKeeping,
) -> None:
    port = free_port()
    k = await make_keeping(webhook_url=f"http://127.0.0.1:{port}/webhook")
    async with serve_app(create_app(k.settings), port=port):
        d, old = await _subscribed(k)
    await _near_expiry(k, d)  # and the receiver is down: no handshake can pass

    with pytest.raises(ApiError) as refused:
        await ensure_subscription(d)
    assert refused.value.error_code == "SUB-525"
    await _still_ours(k, old)

    async with serve_app(create_app(k.settings), port=port):  # the receiver is back
        again = await ensure_subscription(d)

    assert again.action is Action.RECREATE
    assert again.gap == "renew failed"
    [sub] = k.ours()
    assert again.subscription is not None
    assert sub.id == again.subscription.id != old.id
    assert again.deleted == (old.id,)
    assert k.changes()[-2:] == [CREATE, ("DELETE", f"/restapi/v1.0/subscription/{old.id}")]
    stored = await load(k.store, k.sandbox.account_id)
    assert stored is not None
    assert (stored.id, stored.deleted_at) == (sub.id, None)


async def test_a_refused_renewal_keeps_the_old_one_when_creating_answers_5xx(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d, old = await _subscribed(k)
    await _near_expiry(k, d)
    k.sandbox.world.set_faults(refuse={RENEW: 403, " ".join(CREATE): 503})

    with pytest.raises(ServerUnavailable):
        await ensure_subscription(d)

    await _still_ours(k, old)


async def test_a_changed_token_creates_the_new_one_before_deleting_the_old(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d, old = await _subscribed(k)
    rotated = k.settings.model_copy(
        update={"verification_token": SecretStr("a-rotated-verification-token")}
    )
    rotated_deps = await k.deps(rotated)
    rotated_deps.client = d.client
    k.sandbox.world.set_faults(refuse={" ".join(CREATE): 503})

    with pytest.raises(ServerUnavailable):
        await ensure_subscription(rotated_deps)
    await _still_ours(k, old)

    k.sandbox.world.set_faults()
    again = await ensure_subscription(rotated_deps)

    assert (again.action, again.gap, again.deleted) == (Action.RECREATE, "token changed", (old.id,))
    [sub] = k.ours()
    assert again.subscription is not None
    assert sub.id == again.subscription.id != old.id
    assert k.changes()[-2:] == [CREATE, ("DELETE", f"/restapi/v1.0/subscription/{old.id}")]


async def test_a_dead_one_is_deleted_first_to_make_room_under_the_limit(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d, old = await _subscribed(k)
    world = k.sandbox.world
    for n in range(MAX_PER_APP - 1):  # other integrations of the same user and app
        now = world.clock.now()
        world.subscriptions[f"theirs-{n}"] = SandboxSubscription(
            id=f"theirs-{n}",
            event_filters=["/restapi/v1.0/account/~/extension"],
            address="https://elsewhere.example.com/hook",
            verification_token="",
            expires_in=DAY,
            created_at=now,
            expires_at=now + DAY,
        )
    world.blacklist(old.id)

    again = await ensure_subscription(d)

    assert (again.action, again.deleted) == (Action.RECREATE, (old.id,))
    [sub] = k.ours()
    assert sub.status == "Active"
    assert k.changes()[-2:] == [("DELETE", f"/restapi/v1.0/subscription/{old.id}"), CREATE]
