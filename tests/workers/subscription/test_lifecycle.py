"""Our subscription's life against the sandbox and its clock, with the real receiver answering
the handshake: created once, left alone, renewed in time, re-created when dead or moved, and
never doubled by racing workers and CLI runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson

from events.queue import Queue
from tests.fixtures.pipeline import eventually
from tests.fixtures.receiver import serve_app
from tests.fixtures.renewal import MakeKeeping
from workers.resync.run import run_resync
from workers.store import tables
from workers.subscription.plan import Action, normalise_filter
from workers.subscription.renewal import ensure_subscription
from workers.subscription.store import last_gap, load, subscription_status

CREATE = ("POST", "/restapi/v1.0/subscription")
DAY = 86_400


async def test_created_once_through_the_handshake_then_left_alone(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d = await k.deps()

    first = await ensure_subscription(d)

    assert first.action is Action.CREATE
    [sub] = k.ours()
    assert first.subscription is not None
    assert sub.id == first.subscription.id
    assert sub.status == "Active"
    assert sub.expires_in == k.settings.subscription_ttl
    assert {normalise_filter(f) for f in sub.event_filters} == {
        "/restapi/v1.0/account/~/extension",
        "/restapi/v1.0/subscription/~?threshold=172800&interval=900",
    }
    status = await subscription_status(k.store)
    assert (status["id"], status["status"], status["address"]) == (sub.id, "Active", sub.address)
    assert abs(status["remaining_seconds"] - k.settings.subscription_ttl) < 60
    assert status["last_gap"] is None
    stored = await load(k.store, k.sandbox.account_id)
    assert stored is not None
    assert stored.token_hash is not None
    assert k.settings.verification_token.get_secret_value() not in stored.token_hash

    changes = k.changes()
    second = await ensure_subscription(d)

    assert second.action is Action.NOTHING
    assert k.changes() == changes == [CREATE]
    assert not await k.resync_queued()


async def test_renewed_before_expiry_as_the_clock_advances(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    d = await k.deps()
    await ensure_subscription(d)
    world = k.sandbox.world

    world.advance_clock(11 * DAY)  # 3 days left: more than the 2-day margin
    assert (await ensure_subscription(d)).action is Action.NOTHING
    world.advance_clock(DAY + 3600)  # 23 hours left
    renewed = await ensure_subscription(d)

    assert renewed.action is Action.RENEW
    [sub] = k.ours()
    assert sub.expires_at - world.clock.now() > 13 * DAY
    assert k.changes() == [CREATE, ("POST", f"/restapi/v1.0/subscription/{sub.id}/renew")]
    assert renewed.gap is None
    assert not await k.resync_queued()


async def test_missed_expiry_is_re_created_and_repaired(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    d = await k.deps()
    old = (await ensure_subscription(d)).subscription
    assert old is not None

    k.sandbox.world.advance_clock(15 * DAY)  # nobody renewed it: RingCentral forgot it
    again = await ensure_subscription(d)

    assert again.action is Action.RECREATE
    [sub] = k.ours()
    assert sub.id != old.id
    assert sub.status == "Active"
    assert again.gap in {"missing", "expired"}
    assert await k.resync_queued()
    gap = await last_gap(k.store, k.sandbox.account_id)
    assert gap is not None
    assert gap.reason == again.gap
    assert gap.ended_at is not None


async def test_blacklisted_is_re_created_and_the_resync_repairs_the_mirror(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping(users=3)
    d = await k.deps()
    old = (await ensure_subscription(d)).subscription
    assert old is not None
    k.sandbox.world.blacklist(old.id)
    k.start_worker()

    again = await ensure_subscription(d)

    assert again.action is Action.RECREATE
    assert again.deleted == (old.id,)
    assert again.gap == "blacklisted"
    assert again.resync_queued
    [sub] = k.ours()
    assert sub.id != old.id
    assert sub.status == "Active"
    assert k.sandbox.world.subscription(old.id) is None

    async def mirrored() -> bool:
        users = await k.store.list_users(account_id=k.sandbox.account_id)
        return len(users) == 3

    await eventually(mirrored, within=20, what="the gap resync to fill the mirror")
    status = await subscription_status(k.store)
    assert status["id"] == sub.id
    assert status["last_gap"]["reason"] == "blacklisted"


async def test_racing_workers_and_a_cli_run_leave_exactly_one(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    workers = [await k.deps() for _ in range(3)]
    world = k.sandbox.world
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_request(path: str) -> None:
        # The CLI's first request to RingCentral: it holds the lock, mid-check, while the
        # workers start and queue up behind it.
        if not inside.is_set():
            inside.set()
            await release.wait()

    world.before_reply = hold_the_first_request
    cli = asyncio.create_task(k.ringsync("subscribe", "--json"))
    await asyncio.wait_for(inside.wait(), timeout=30)
    racers = [asyncio.create_task(ensure_subscription(d)) for d in workers]
    lock = k.settings.key("lock", "subscription")
    assert await k.redis.exists(lock)
    for _ in range(50):  # let every racer reach the lock
        await asyncio.sleep(0)
    assert not any(r.done() for r in racers)
    release.set()
    code, out, err = await cli
    outcomes = await asyncio.gather(*racers)

    assert code == 0, err
    shown = orjson.loads(out)
    assert shown["action"] == "create"
    assert [o.action for o in outcomes] == [Action.NOTHING] * 3
    [sub] = k.ours()
    assert shown["id"] == sub.id
    assert k.changes() == [CREATE]


async def test_a_changed_address_is_re_created_and_the_old_one_deleted(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    old = (await ensure_subscription(await k.deps())).subscription
    assert old is not None
    from events.app import create_app

    async with serve_app(create_app(k.settings)) as moved_url:
        moved = k.settings.model_copy(update={"webhook_url": f"{moved_url}/webhook"})
        again = await ensure_subscription(await k.deps(moved))

        assert again.action is Action.RECREATE
        assert again.deleted == (old.id,)
        assert again.gap == "address changed"
        assert k.ours() == []
        [sub] = k.ours(moved.webhook_url)
        assert sub.status == "Active"
        assert k.changes() == [CREATE, CREATE, ("DELETE", f"/restapi/v1.0/subscription/{old.id}")]


async def test_a_reminder_event_renews_through_the_worker(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    await ensure_subscription(await k.deps())
    k.start_worker()
    world = k.sandbox.world

    world.advance_clock(12 * DAY + 60)  # inside the reminder's threshold: RingCentral reminds us

    async def renewed() -> bool:
        [sub] = k.ours()
        return sub.expires_at - world.clock.now() > 13 * DAY

    await eventually(renewed, within=20, what="the reminder to renew the subscription")
    assert [c for c in k.changes() if c[1].endswith("/renew")]
    assert len(k.ours()) == 1


async def test_a_renewal_refused_because_it_vanished_is_re_created(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d = await k.deps()
    await ensure_subscription(d)
    world = k.sandbox.world
    world.advance_clock(13 * DAY)
    await d.client.account()  # the access token aged too: refresh it before arming
    armed = True

    async def vanish(path: str) -> None:
        nonlocal armed
        if armed and path == "/restapi/v1.0/subscription":
            armed = False  # listed as alive, gone by the time we renew it
            world.subscriptions.clear()

    world.before_reply = vanish
    again = await ensure_subscription(d)

    assert again.action is Action.RECREATE
    assert again.gap == "renew failed"
    assert again.resync_queued
    assert len(k.ours()) == 1


async def test_the_gap_resync_is_queued_once(make_keeping: MakeKeeping) -> None:
    k = await make_keeping()
    d = await k.deps()
    first = (await ensure_subscription(d)).subscription
    assert first is not None
    k.sandbox.world.blacklist(first.id)
    assert (await ensure_subscription(d)).resync_queued
    [second] = k.ours()
    k.sandbox.world.blacklist(second.id)

    again = await ensure_subscription(d)

    assert again.gap == "blacklisted"
    assert not again.resync_queued
    queue = Queue(k.redis, k.settings.queue_name)
    assert await k.redis.zcard(queue.name) == 1


async def test_one_made_before_our_records_is_adopted_with_one_put(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping()
    d = await k.deps()
    made = await d.client.create_subscription(
        event_filters=["/restapi/v1.0/account/~/extension"],
        address=k.settings.webhook_url,
        verification_token=k.settings.verification_token,
        expires_in=3600,
    )

    adopted = await ensure_subscription(d)

    assert adopted.action is Action.UPDATE
    assert adopted.gap is None
    assert k.changes() == [CREATE, ("PUT", f"/restapi/v1.0/subscription/{made.id}")]
    [sub] = k.ours()
    assert sub.expires_in == k.settings.subscription_ttl
    assert len(sub.event_filters) == 2
    assert (await ensure_subscription(d)).action is Action.NOTHING


async def test_a_long_silence_while_users_exist_is_a_gap_reported_once(
    make_keeping: MakeKeeping,
) -> None:
    k = await make_keeping(users=2, max_silence=3600)
    d = await k.deps()
    await ensure_subscription(d)
    await run_resync(d)  # the mirror now holds the account's users
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    await k.store.set_state("last_event_at", two_hours_ago.isoformat())
    async with k.store.engine.begin() as conn:  # as if subscribed long ago
        await conn.execute(tables.subscriptions.update().values(created_at=two_hours_ago))

    silent = await ensure_subscription(d)

    assert silent.action is Action.NOTHING
    assert silent.gap == "silence"
    assert silent.resync_queued
    gap = await last_gap(k.store, k.sandbox.account_id)
    assert gap is not None
    assert gap.started_at == two_hours_ago
    assert (await ensure_subscription(d)).gap is None
    assert k.changes() == [CREATE]
