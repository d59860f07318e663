"""A dead delivery holds its user's later events back: `status` says who is blocked and why,
`replay --outbox` sends the dead one first, `replay --outbox --skip ID` gives it up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fixtures.commands import ringsync
from tests.fixtures.sink import DeliveryRig, MakeRig, Received, Sink, new_secret
from workers.delivery.store import Delivery
from workers.store.identity import OutboxRow

SECRET = "s3cret-in-the-url"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """`status` covers every account: these tests keep a database of their own."""
    return sqlite_url


async def _blocked_user(
    make_delivery_rig: MakeRig, sink: Sink, later: int
) -> tuple[DeliveryRig, str, Delivery, list[OutboxRow]]:
    """User 7's `user.suspended` is dead at /a and `later` events of theirs wait behind it."""
    url = f"{sink.url}/a?token={SECRET}".replace("://", f"://ops:{SECRET}@")
    rig = await make_delivery_rig(
        offboarding_urls=[url], offboarding_secret=new_secret(), delivery_max_age=2
    )
    sink.rule = lambda r: 500 if r.type == "user.suspended" else None
    await rig.change("7")
    (suspended,) = await rig.change("7", "Disabled")
    waiting: list[OutboxRow] = []
    for n in range(later):
        waiting += await rig.change("7", "Enabled" if n % 2 == 0 else "Disabled")
    dead = await rig.wait_status(suspended, url, "dead")
    return rig, url, dead, waiting


def _env(rig: DeliveryRig, url: str) -> dict[str, str]:
    return rig.settings.process_env(RINGSYNC_OFFBOARDING_URLS=url)


def _of_user_7(sink: Sink) -> Iterator[Received]:
    return (r for r in sink.requests() if r.json["data"]["extension_id"] == "7")


async def test_status_shows_the_block_and_skip_lets_the_later_events_flow(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    rig, url, dead, (reactivated,) = await _blocked_user(make_delivery_rig, sink, later=1)
    env = _env(rig, url)

    ran = await ringsync(env, "status", "--json")
    assert ran.code == 1
    report = json.loads(ran.out)
    [hold] = report["blocked"]["holds"]
    assert report["blocked"]["count"] == 1
    assert hold["delivery_id"] == dead.id
    assert (hold["extension_id"], hold["endpoint"], hold["type"]) == (
        "7",
        f"{sink.url}/a",
        "user.suspended",
    )
    assert SECRET not in ran.out
    assert hold["reason"].startswith("HTTP 500")
    assert hold["waiting"] == 1
    assert any("block later events" in reason for reason in report["attention"])
    table = await ringsync(env, "status")
    assert f"1 events wait behind dead delivery {dead.id}" in table.out
    assert SECRET not in table.out

    # The later event's own lifetime has passed while it waited: skipping gives it a fresh one,
    # so one failure of its own is retried, not fatal.
    sink.plan("/a", 503)
    skipped = await ringsync(env, "replay", "--outbox", "--skip", str(dead.id))
    assert skipped.code == 0, skipped.err
    assert f"skipped delivery {dead.id} (user.suspended of user 7" in skipped.out
    assert SECRET not in skipped.out + skipped.err

    done = await rig.wait_status(reactivated, url, "delivered")
    assert done.attempts == 2
    given_up = await rig.deliveries.get(dead.outbox_id, url)
    assert given_up is not None
    assert given_up.status == "skipped"
    sent = [(r.type, r.status) for r in _of_user_7(sink)]
    assert ("user.suspended", 200) not in sent
    assert sent[-2:] == [("user.reactivated", 503), ("user.reactivated", 200)]
    assert [
        x for x in await rig.d.store.list_dead_letters() if x.account_id == rig.account_id
    ] == []
    after = json.loads((await ringsync(env, "status", "--json")).out)
    assert after["blocked"] == {"count": 0, "holds": []}
    assert after["deliveries"]["skipped"] == 1
    assert not any("dead" in reason for reason in after["attention"])

    again = await ringsync(env, "replay", "--outbox", "--skip", str(dead.id))
    assert (again.code, again.one_clear_line()) == (1, True)
    assert "is skipped, not dead" in again.err
    unknown = await ringsync(env, "replay", "--outbox", "--skip", "999999")
    assert (unknown.code, unknown.one_clear_line()) == (1, True)
    alone = await ringsync(env, "replay", "--skip", str(dead.id))
    assert alone.code == 2
    narrowed = await ringsync(env, "replay", "--outbox", "--extension", "7", "--skip", "1")
    assert narrowed.code == 2


async def test_a_replayed_dead_event_is_sent_before_those_that_waited_behind_it(
    make_delivery_rig: MakeRig, sink: Sink
) -> None:
    rig, url, dead, waiting = await _blocked_user(make_delivery_rig, sink, later=2)
    assert not [r for r in _of_user_7(sink) if r.type != "user.created" and r.status == 200]

    sink.rule = None
    ran = await ringsync(_env(rig, url), "replay", "--outbox")
    assert ran.code == 0, ran.err
    assert "sending 3 undelivered events" in ran.out

    await rig.wait_status(waiting[-1], url, "delivered")
    delivered = [r.json["data"]["sequence"] for r in _of_user_7(sink) if r.status == 200]
    assert delivered == [1, 2, 3, 4]
    replayed = await rig.deliveries.get(dead.outbox_id, url)
    assert replayed is not None
    assert replayed.status == "delivered"
