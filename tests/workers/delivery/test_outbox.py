"""The outbox's public side: announcing rows, replaying deliveries, counting them; and the whole
pipeline delivering each transition exactly once to a real HTTP sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures.commands import ringsync
from tests.fixtures.pipeline import MakePipeline, eventually
from tests.fixtures.sink import MakeRig, Sink, new_secret, signature_valid
from workers.delivery.outbox import announce, delivery_counts, replay_outbox


async def test_nothing_is_queued_when_nobody_listens(make_delivery_rig: MakeRig) -> None:
    rig = await make_delivery_rig(workers=0)
    rows = await rig.change("11")
    assert rows
    assert await rig.d.redis.zcard(rig.settings.queue_name) == 0


async def test_announce_queues_one_job_per_row_once(make_delivery_rig: MakeRig, sink: Sink) -> None:
    rig = await make_delivery_rig(
        workers=0, offboarding_urls=[sink.url], offboarding_secret=new_secret()
    )
    rows = await rig.change("12") + await rig.change("12", "Disabled")
    await announce(rig.d, rows)  # the same rows again: the job ids are taken
    assert await rig.d.redis.zcard(rig.settings.queue_name) == 2


async def test_replay_outbox_to_an_endpoint_that_answered_410_subscribes_it_again(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    gone, alive = f"{sink.url}/gone", f"{sink.url}/alive"
    rig = await make_delivery_rig(offboarding_urls=[gone, alive], offboarding_secret=new_secret())
    sink.answer("/gone", 410)
    held = await rig.change("14") + await rig.change("14", "Disabled")
    for row in held:
        await rig.wait_status(row, gone, "unsubscribed")
        await rig.wait_status(row, alive, "delivered")
    mine = rig.account_id
    assert await replay_outbox(rig.d, account_id=mine) == 0  # a plain replay leaves it alone
    assert await replay_outbox(rig.d, account_id=mine, endpoint=gone, dry_run=True) == 2
    env = rig.settings.process_env(RINGSYNC_OFFBOARDING_URLS=f"{gone},{alive}")
    dry = await ringsync(env, "replay", "--outbox", "--endpoint", gone, "--dry-run")
    assert dry.code == 0, dry.err
    assert f"would send 2 undelivered events to {gone} (it answered 410 Gone" in dry.out
    assert await rig.deliveries.unsubscribed([gone]) == {gone}  # a dry run changes nothing

    sink.answer("/gone", 200)
    assert await replay_outbox(rig.d, account_id=mine, endpoint=gone) == 2
    for row in held:
        await rig.wait_status(row, gone, "delivered")
    assert [r.type for r in sink.delivered("/gone")] == ["user.created", "user.suspended"]
    assert await rig.deliveries.unsubscribed([gone]) == frozenset()

    (later,) = await rig.change("15")  # new events reach it again
    await rig.wait_status(later, gone, "delivered")
    assert len(sink.delivered("/gone")) == 3
    assert len(sink.delivered("/alive")) == 3


async def test_a_dead_delivery_is_sent_again_by_replay_outbox(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_max_age=1
    )
    sink.answer("/a", 500)
    (row,) = await rig.change("13")
    await rig.wait_status(row, url, "dead")
    counts = await delivery_counts(rig.d.store, rig.account_id)
    assert counts == {
        "pending": 0, "failed": 0, "dead": 1, "skipped": 0, "delivered": 0, "unsubscribed": 0
    }  # fmt: skip
    letters = [x for x in await rig.d.store.list_dead_letters() if x.account_id == rig.account_id]
    assert len(letters) == 1

    sink.answer("/a", 200)
    mine = rig.account_id
    assert await replay_outbox(rig.d, dry_run=True, account_id=mine) == 1
    assert await replay_outbox(rig.d, type="user.updated", account_id=mine) == 0
    assert await replay_outbox(rig.d, extension_id="other", account_id=mine) == 0
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await replay_outbox(rig.d, since=later, account_id=mine) == 0
    assert await replay_outbox(rig.d, type="user.created", extension_id="13", account_id=mine) == 1
    done = await rig.wait_status(row, url, "delivered")
    assert done.replayed_at is not None
    assert len(sink.delivered()) == 1
    left = [x for x in await rig.d.store.list_dead_letters() if x.account_id == rig.account_id]
    assert left == []  # marked replayed
    assert (await delivery_counts(rig.d.store, rig.account_id))["delivered"] == 1
    assert await replay_outbox(rig.d, account_id=mine) == 0  # nothing left to do


async def test_replay_outbox_sends_a_delivery_in_backoff_at_once(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    url = f"{sink.url}/a"
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_schedule=[3600]
    )
    sink.plan("/a", 503)
    (row,) = await rig.change("14")
    await rig.wait_status(row, url, "failed")
    assert (await delivery_counts(rig.d.store, rig.account_id))["failed"] == 1
    assert await replay_outbox(rig.d, account_id=rig.account_id) == 1
    await rig.wait_status(row, url, "delivered")
    assert [r.status for r in sink.requests()] == [503, 200]


async def test_the_pipeline_delivers_each_transition_once_despite_duplicates(
    make_pipeline: MakePipeline, sqlite_url: str, sink: Sink
) -> None:
    secret = new_secret()
    p = await make_pipeline(
        database_url=sqlite_url,
        workers=2,
        offboarding_urls=[f"{sink.url}/hr"],
        offboarding_secret=secret,
        delivery_schedule=[0.05],
    )
    world = p.sandbox.world
    world.set_faults(duplicate=1.0, seed=3)  # every notification arrives twice
    sink.plan("/hr", 500, 502)
    ada = world.create_user(first_name="Ada", last_name="Lovelace")
    bob = world.create_user(first_name="Bob", last_name="Byte")
    await p.converged()
    world.disable(ada)
    world.update_user(bob, last_name="Bits")
    await p.converged()
    world.enable(ada)
    world.delete(bob)
    await p.converged()

    rows = await p.store.list_outbox(p.sandbox.account_id)
    assert len(rows) >= 6

    async def all_delivered() -> bool:
        counts = await delivery_counts(p.store, p.sandbox.account_id)
        return counts["delivered"] == len(rows)

    await eventually(all_delivered, what="every outbox row delivered")
    delivered = sink.delivered()
    assert sorted(r.headers["webhook-id"] for r in delivered) == sorted(r.event_id for r in rows)
    assert all(signature_valid(secret, r.headers, r.body) for r in sink.requests())
    for ext in (ada, bob):
        sequences = [
            r.json["data"]["sequence"] for r in delivered if r.json["data"]["extension_id"] == ext
        ]
        assert sequences == sorted(sequences)
