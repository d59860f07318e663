"""Our subscription rows and gaps on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.ringcentral.resources import DeliveryMode, Subscription
from workers.store.identity import Store
from workers.subscription.store import (
    Gap,
    last_gap,
    list_gaps,
    load,
    mark_deleted,
    record_gap,
    save,
    subscription_status,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def _sub(sub_id: str, status: str = "Active") -> Subscription:
    return Subscription(
        id=sub_id,
        status=status,
        event_filters=["/restapi/v1.0/account/1004/extension"],
        delivery_mode=DeliveryMode(transport_type="WebHook", address="https://h.example/webhook"),
    )


async def test_rows_round_trip_and_the_newest_one_is_ours(store: Store, account_id: str) -> None:
    assert await load(store, account_id) is None
    expires = NOW + timedelta(days=14)
    await save(
        store, account_id, _sub(f"{account_id}-a"), token_hash="h1", expires_at=expires,
        expires_in=1_209_600, now=NOW - timedelta(hours=1), created=True,
    )  # fmt: skip
    await save(
        store, account_id, _sub(f"{account_id}-b"), token_hash="h2", expires_at=expires,
        expires_in=600, now=NOW, created=True,
    )  # fmt: skip

    row = await load(store, account_id)
    assert row is not None
    assert (row.id, row.token_hash, row.expires_in) == (f"{account_id}-b", "h2", 600)
    assert row.event_filters == ("/restapi/v1.0/account/1004/extension",)
    assert row.expiration_time == expires
    assert row.deleted_at is None

    await save(
        store, account_id, _sub(f"{account_id}-b"), token_hash="h2",
        expires_at=expires + timedelta(days=1), expires_in=700, now=NOW + timedelta(minutes=1),
        created=False,
    )  # fmt: skip
    renewed = await load(store, account_id)
    assert renewed is not None
    assert renewed.created_at == NOW
    assert renewed.renewed_at == NOW + timedelta(minutes=1)
    assert renewed.expires_in == 700

    await mark_deleted(store, f"{account_id}-b", NOW)
    deleted = await load(store, account_id)
    assert deleted is not None
    assert deleted.deleted_at == NOW
    assert deleted.expires_in == 700


async def test_gaps_are_kept_in_order(store: Store, account_id: str) -> None:
    assert await last_gap(store, account_id) is None
    await record_gap(store, account_id, Gap(None, NOW, "missing"))
    await record_gap(store, account_id, Gap(NOW - timedelta(hours=2), NOW, "blacklisted"))
    assert await last_gap(store, account_id) == Gap(NOW - timedelta(hours=2), NOW, "blacklisted")
    assert [g.reason for g in await list_gaps(store, account_id)] == ["missing", "blacklisted"]


async def test_status_shows_the_subscription_and_the_last_gap(
    store: Store, account_id: str
) -> None:
    await save(
        store, account_id, _sub(f"{account_id}-s"), token_hash="h",
        expires_at=datetime.now(UTC) + timedelta(hours=1), expires_in=3600,
        now=datetime.now(UTC), created=True,
    )  # fmt: skip
    await record_gap(store, account_id, Gap(NOW - timedelta(hours=2), NOW, "blacklisted"))

    shown = await subscription_status(store, account_id)

    assert shown["id"] == f"{account_id}-s"
    assert shown["status"] == "Active"
    assert shown["address"] == "https://h.example/webhook"
    assert 3500 < shown["remaining_seconds"] <= 3600
    assert datetime.fromisoformat(shown["expires_at"]) > NOW
    assert (await subscription_status(store, "no-such-account"))["id"] is None
    assert shown["last_gap"] == {
        "started_at": (NOW - timedelta(hours=2)).isoformat(),
        "ended_at": NOW.isoformat(),
        "reason": "blacklisted",
    }
