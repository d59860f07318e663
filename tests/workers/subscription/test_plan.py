"""The subscription decision, table by table: every case the renewal cron can meet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.settings import Settings
from workers.ringcentral.resources import DeliveryMode, Subscription
from workers.subscription.plan import (
    Action,
    Facts,
    Wanted,
    after_failure,
    decide,
    event_filters,
    normalise_filter,
    remaining,
    token_hash,
)
from workers.subscription.renewal import cron_times
from workers.subscription.store import StoredSubscription

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
URL = "https://hooks.example.com/webhook"
TTL = 1_209_600
MARGIN = 172_800
REMINDER = f"/restapi/v1.0/subscription/~?threshold={MARGIN}&interval=900"
WANTED = Wanted(
    address=URL,
    token_hash=token_hash("secret-token"),
    event_filters=("/restapi/v1.0/account/~/extension", REMINDER),
    expires_in=TTL,
    renew_margin=MARGIN,
    max_silence=86_400,
)
# What RingCentral returns for WANTED's filters: `~` expanded to the account's numeric id.
EXPANDED = ["/restapi/v1.0/account/400123004/extension", REMINDER]


def listed(
    sub_id: str = "sub-1",
    *,
    address: str = URL,
    status: str = "Active",
    left: float = TTL - 60,
    filters: list[str] | None = None,
) -> Subscription:
    return Subscription(
        id=sub_id,
        status=status,
        event_filters=EXPANDED if filters is None else filters,
        expiration_time=NOW + timedelta(seconds=left),
        expires_in=int(left),
        delivery_mode=DeliveryMode(transport_type="WebHook", address=address),
    )


def stored(sub_id: str = "sub-1", **changes: Any) -> StoredSubscription:
    row = StoredSubscription(
        id=sub_id,
        account_id="400123004",
        address=URL,
        event_filters=tuple(EXPANDED),
        status="Active",
        expiration_time=NOW + timedelta(days=13),
        token_hash=WANTED.token_hash,
        created_at=NOW - timedelta(days=1),
        renewed_at=NOW - timedelta(days=1),
        deleted_at=None,
        expires_in=TTL,
    )
    return replace(row, **changes)


def facts(stored_row: StoredSubscription | None, *subs: Subscription, **more: Any) -> Facts:
    return Facts(stored=stored_row, listed=list(subs), now=NOW, **more)


LAST_EVENT = NOW - timedelta(hours=3)


@pytest.mark.parametrize(
    ("case", "given", "action", "delete_before", "delete_after", "gap"),
    [
        ("first run", facts(None), Action.CREATE, (), (), None),
        (
            "someone else's subscription is left alone",
            facts(None, listed("theirs", address="https://other.example.com/hook")),
            Action.CREATE,
            (),
            (),
            None,
        ),
        ("healthy", facts(stored(), listed()), Action.NOTHING, (), (), None),
        ("near expiry", facts(stored(), listed(left=MARGIN - 1)), Action.RENEW, (), (), None),
        ("exactly at the margin", facts(stored(), listed(left=MARGIN)), Action.RENEW, (), (), None),
        (
            "filters changed",
            facts(stored(), listed(filters=EXPANDED[:1])),
            Action.UPDATE,
            (),
            (),
            None,
        ),
        (
            "lifetime changed",
            facts(stored(expires_in=TTL // 2), listed()),
            Action.UPDATE,
            (),
            (),
            None,
        ),
        (
            "lifetime unknown",
            facts(stored(expires_in=None), listed()),
            Action.UPDATE,
            (),
            (),
            None,
        ),
        (
            "lifetime within a second or so",
            facts(stored(expires_in=TTL - 2), listed()),
            Action.NOTHING,
            (),
            (),
            None,
        ),
        (
            "blacklisted: deleted first, then re-created",
            facts(stored(), listed(status="Blacklisted"), last_event_at=LAST_EVENT),
            Action.RECREATE,
            ("sub-1",),
            (),
            "blacklisted",
        ),
        (
            "suspended (older API)",
            facts(stored(), listed(status="Suspended")),
            Action.RECREATE,
            ("sub-1",),
            (),
            "suspended",
        ),
        (
            "expired and forgotten by RingCentral",
            facts(stored(expiration_time=NOW - timedelta(minutes=1))),
            Action.RECREATE,
            (),
            (),
            "expired",
        ),
        ("missing before its time", facts(stored()), Action.RECREATE, (), (), "missing"),
        (
            "a re-create that deleted the old one but failed to create",
            facts(stored(deleted_at=NOW - timedelta(minutes=5))),
            Action.RECREATE,
            (),
            (),
            "missing",
        ),
        (
            "token changed: the new one is created before the old one is deleted",
            facts(stored(token_hash=token_hash("old-token")), listed()),
            Action.RECREATE,
            (),
            ("sub-1",),
            "token changed",
        ),
        (
            "token changed, with a dead duplicate: the dead one goes first, freeing a slot",
            facts(
                stored(token_hash=token_hash("old-token")),
                listed(),
                listed("dead", status="Blacklisted"),
            ),
            Action.RECREATE,
            ("dead",),
            ("sub-1",),
            "token changed",
        ),
        (
            "blacklisted, with a working duplicate: that one waits for the replacement",
            facts(stored(), listed(status="Blacklisted"), listed("dupe")),
            Action.RECREATE,
            ("sub-1",),
            ("dupe",),
            "blacklisted",
        ),
        (
            "address changed: create at the new address, then delete the old",
            facts(
                stored(address="https://old.example.com/webhook"),
                listed(address="https://old.example.com/webhook"),
            ),
            Action.RECREATE,
            (),
            ("sub-1",),
            "address changed",
        ),
        (
            "address changed and the old one is dead: deleted first",
            facts(
                stored(address="https://old.example.com/webhook"),
                listed(address="https://old.example.com/webhook", status="Blacklisted"),
            ),
            Action.RECREATE,
            ("sub-1",),
            (),
            "address changed",
        ),
        (
            "ours but never recorded: the longest-lived Active one is adopted",
            facts(
                None,
                listed("short", left=3600),
                listed("long"),
                listed("dead", status="Blacklisted"),
            ),
            Action.UPDATE,
            (),
            ("short", "dead"),
            None,
        ),
        (
            "ours, never recorded and dead",
            facts(None, listed("dead", status="Blacklisted"), last_event_at=LAST_EVENT),
            Action.RECREATE,
            ("dead",),
            (),
            "blacklisted",
        ),
        (
            "a duplicate of ours is deleted",
            facts(stored(), listed(), listed("dupe")),
            Action.NOTHING,
            (),
            ("dupe",),
            None,
        ),
        (
            "silence while users exist",
            facts(
                stored(created_at=NOW - timedelta(days=5)),
                listed(),
                has_users=True,
                last_event_at=NOW - timedelta(days=2),
            ),
            Action.NOTHING,
            (),
            (),
            "silence",
        ),
        (
            "silence already reported",
            facts(
                stored(created_at=NOW - timedelta(days=5)),
                listed(),
                has_users=True,
                last_event_at=NOW - timedelta(days=2),
                last_gap_at=NOW - timedelta(hours=1),
            ),
            Action.NOTHING,
            (),
            (),
            None,
        ),
        (
            "silence without users is normal",
            facts(stored(created_at=NOW - timedelta(days=5)), listed()),
            Action.NOTHING,
            (),
            (),
            None,
        ),
    ],
)
def test_decide(
    case: str,
    given: Facts,
    action: Action,
    delete_before: tuple[str, ...],
    delete_after: tuple[str, ...],
    gap: str | None,
) -> None:
    plan = decide(given, WANTED)
    assert (plan.action, plan.delete_before, plan.delete_after, plan.gap) == (
        action,
        delete_before,
        delete_after,
        gap,
    ), case


def test_a_gap_starts_at_the_last_event_else_at_the_last_renewal() -> None:
    with_event = decide(
        facts(stored(), listed(status="Blacklisted"), last_event_at=LAST_EVENT), WANTED
    )
    assert with_event.gap_started_at == LAST_EVENT
    without = decide(facts(stored(), listed(status="Blacklisted")), WANTED)
    assert without.gap_started_at == NOW - timedelta(days=1)


@pytest.mark.parametrize(
    ("case", "given", "delete_before", "delete_after"),
    [
        (
            "renew refused: the new one exists before the old ones go",
            facts(stored(), listed(left=100), listed("dupe")),
            (),
            ("sub-1", "dupe"),
        ),
        (
            "renew refused, with a dead duplicate: the dead one goes first",
            facts(stored(), listed(left=100), listed("dead", status="Blacklisted")),
            ("dead",),
            ("sub-1",),
        ),
        (
            "update refused",
            facts(stored(expires_in=TTL // 2), listed()),
            (),
            ("sub-1",),
        ),
        (
            "adoption refused",
            facts(None, listed("short", left=3600), listed("long")),
            (),
            ("long", "short"),
        ),
    ],
)
def test_a_refused_renewal_or_update_becomes_a_create_first_re_create_with_a_gap(
    case: str, given: Facts, delete_before: tuple[str, ...], delete_after: tuple[str, ...]
) -> None:
    plan = decide(given, WANTED)
    assert plan.action in (Action.RENEW, Action.UPDATE), case
    fallback = after_failure(plan, given, "HTTP 403 CMN-101")
    assert fallback.action is Action.RECREATE, case
    assert (fallback.delete_before, fallback.delete_after) == (delete_before, delete_after), case
    assert fallback.gap == f"{plan.action.value} failed", case


@pytest.mark.parametrize(
    ("returned", "folded"),
    [
        ("/restapi/v1.0/account/400123004/extension", "/restapi/v1.0/account/~/extension"),
        ("/restapi/v1.0/account/~/extension", "/restapi/v1.0/account/~/extension"),
        (
            "/restapi/v1.0/account/400123004/extension/400123005/presence",
            "/restapi/v1.0/account/~/extension/~/presence",
        ),
        (
            "/restapi/v1.0/account/400123004/directory/entries",
            "/restapi/v1.0/account/~/directory/entries",
        ),
        (
            "/restapi/v1.0/subscription/5f1e?threshold=10&interval=5",
            "/restapi/v1.0/subscription/~?threshold=10&interval=5",
        ),
    ],
)
def test_filters_compare_with_ids_folded_back(returned: str, folded: str) -> None:
    assert normalise_filter(returned) == folded


def test_event_filters_follow_the_settings(make_settings: Callable[..., Settings]) -> None:
    plain = event_filters(make_settings(renew_margin=7200, renew_every=600))
    assert plain == (
        "/restapi/v1.0/account/~/extension",
        "/restapi/v1.0/subscription/~?threshold=7200&interval=600",
    )
    directory = event_filters(make_settings(directory_events=True, renew_margin=0))
    assert directory == (
        "/restapi/v1.0/account/~/extension",
        "/restapi/v1.0/account/~/directory/entries",
    )


def test_remaining_trusts_the_smaller_of_expiration_and_expires_in() -> None:
    skewed = listed(left=1000).model_copy(update={"expires_in": 400})
    assert remaining(skewed, NOW) == 400
    assert remaining(listed(left=1000), NOW) == 1000


@pytest.mark.parametrize(
    ("every", "hour", "minute", "second", "period"),
    [
        (900, None, {0, 15, 30, 45}, {0}, 900),
        (60, None, {*range(60)}, {0}, 60),
        (420, None, set(range(0, 60, 6)), {0}, 360),
        (20, None, None, {0, 20, 40}, 20),
        (45, None, None, {0, 30}, 30),
        (3600, set(range(24)), {0}, {0}, 3600),
        (5400, set(range(24)), {0}, {0}, 3600),
        (86_400, {0}, {0}, {0}, 86_400),
        (172_800, {0}, {0}, {0}, 86_400),
    ],
)
def test_cron_times(
    every: int, hour: set[int] | None, minute: set[int] | None, second: set[int], period: int
) -> None:
    """The clock fields, and the period they make (other accounts' jobs are spread over it)."""
    times = cron_times(every)
    assert (times.hour, times.minute, times.second) == (hour, minute, second)
    assert times.period == period


def test_adoption_keeps_the_longest_lived_and_updates_it() -> None:
    plan = decide(facts(None, listed("short", left=3600), listed("long")), WANTED)
    assert plan.target is not None
    assert plan.target.id == "long"
    assert plan.gap is None
