"""Actions in the identity store: the gate's rules and the `action.*` outbox rows they write."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from workers.actions.decide import ActionState, Kind, Protection
from workers.actions.store import ActionStore, Finished, NotFound, Refused, SameApprover
from workers.decide import Observation, Policy, Roles, decide
from workers.delivery.signing import event_for
from workers.store.identity import Store

FACTS = Protection(operator_id="1", owner_id="2")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def mirrored(store: Store, account_id: str, extension_id: str, **fields: Any) -> None:
    profile: dict[str, Any] = {"type": "User", "status": "Enabled", "email": "a@example.com"}
    profile.update(fields)
    seen = Observation(read_at=T0, raw={}, **profile)
    # Mirroring departments too, as a deployment may (RINGSYNC_USER_TYPES).
    policy = Policy(user_types=frozenset({"User", "Department"}))
    await store.apply(account_id, extension_id, decide(seen, None, policy), "seed")


async def propose(book: ActionStore, account_id: str, ext: str = "101", **kw: Any) -> Any:
    kw.setdefault("reason", "left")
    kw.setdefault("by", "ada")
    kw.setdefault("protection", FACTS)
    return await book.propose(account_id, ext, kw.pop("kind", Kind.SUSPEND), **kw)


async def test_propose_then_approve_writes_signed_shaped_events_in_user_order(
    store: Store, account_id: str
) -> None:
    await mirrored(store, account_id, "101")
    book = ActionStore(store)

    proposed = await propose(book, account_id)
    approved = await book.approve(proposed.action.id, "bob")

    assert approved.action.state is ActionState.APPROVED
    assert approved.action.approved_by == "bob"
    assert approved.action.snapshot["status"] == "Enabled"
    rows = [r for r in await store.list_outbox(account_id) if r.type.startswith("action.")]
    assert [r.type for r in rows] == ["action.proposed", "action.approved"]
    # After the user's own user.created (sequence 1): one order per user.
    assert [r.sequence for r in rows] == [2, 3]
    event = event_for(rows[1])  # the shape every delivered event has
    assert event.data.account_id == account_id
    assert event.data.model_extra is not None
    assert event.data.model_extra["action"]["id"] == proposed.action.id
    assert event.data.model_extra["action"]["state"] == "approved"


async def test_the_proposer_cannot_approve_and_nothing_changes(
    store: Store, account_id: str
) -> None:
    await mirrored(store, account_id, "101")
    book = ActionStore(store)
    proposed = await propose(book, account_id)

    with pytest.raises(SameApprover):
        await book.approve(proposed.action.id, " Ada ")

    found = await book.get(proposed.action.id)
    assert found is not None
    assert found.state is ActionState.PROPOSED
    assert [r.type for r in await store.list_outbox(account_id)][-1] == "action.proposed"


async def test_decisions_on_finished_actions_are_refused(store: Store, account_id: str) -> None:
    await mirrored(store, account_id, "101")
    book = ActionStore(store)
    proposed = await propose(book, account_id)
    rejected = await book.reject(proposed.action.id, "bob")
    assert rejected.action.state is ActionState.REJECTED
    assert rejected.action.finished_at is not None

    for decide_again in (book.approve, book.reject, book.cancel):
        with pytest.raises(Finished):
            await decide_again(proposed.action.id, "carol")
    with pytest.raises(NotFound):
        await book.approve("nope", "carol")


async def test_an_approved_action_may_still_be_cancelled(store: Store, account_id: str) -> None:
    await mirrored(store, account_id, "101")
    book = ActionStore(store)
    proposed = await propose(book, account_id)
    await book.approve(proposed.action.id, "bob")
    cancelled = await book.cancel(proposed.action.id, "ada")
    assert cancelled.action.state is ActionState.CANCELLED
    assert cancelled.rows[0].type == "action.rejected"


@pytest.mark.parametrize(
    ("fields", "ext", "phrase"),
    [
        ({}, "1", "operator"),
        ({}, "2", "credential"),
        ({"type": "Department"}, "101", "not a user"),
        ({"roles": [{"id": "1", "name": "Super Admin"}]}, "101", "Super Admin"),
    ],
)
async def test_protected_and_non_user_extensions_are_refused_at_proposal(
    store: Store, account_id: str, fields: dict[str, Any], ext: str, phrase: str
) -> None:
    fields = dict(fields)  # the parameters are shared by both databases' runs
    roles = fields.pop("roles", None)
    await mirrored(store, account_id, ext, **fields)
    if roles is not None:
        await store.reconcile(account_id, ext, Roles(read_at=T0, roles=roles), "roles")
    book = ActionStore(store)

    with pytest.raises(Refused, match=phrase):
        await propose(book, account_id, ext)
    assert await book.list(account_id=account_id) == []


async def test_a_policy_approves_suspends_only(store: Store, account_id: str) -> None:
    await mirrored(store, account_id, "101")
    await mirrored(store, account_id, "102")
    book = ActionStore(store)
    policy = frozenset(Kind)  # even when asked for more, deprovisions wait for a person

    suspend = await propose(book, account_id, "101", auto_approve=policy)
    deprovision = await propose(book, account_id, "102", kind=Kind.DEPROVISION, auto_approve=policy)

    assert suspend.action.state is ActionState.APPROVED
    assert suspend.action.approved_by == "policy"
    assert [r.type for r in suspend.rows] == ["action.proposed", "action.approved"]
    assert deprovision.action.state is ActionState.PROPOSED


async def test_claims_respect_the_hourly_cap_and_happen_once(store: Store, account_id: str) -> None:
    book = ActionStore(store)
    ids = []
    for n in range(4):
        await mirrored(store, account_id, str(200 + n))
        moved = await propose(book, account_id, str(200 + n))
        await book.approve(moved.action.id, "bob")
        ids.append(moved.action.id)

    # Two claimers race for each action: each runs once, and only 3 run this hour.
    claims = await asyncio.gather(*(book.claim(i, 3) for i in ids for _ in range(2)))
    assert sum(c is not None for c in claims) == 3
    counts = await book.counts(3, account_id)
    assert counts["running"] == 3
    assert counts["approved"] == 1
    assert counts["waiting"] == 1

    running = next(c for c in claims if c is not None)
    assert (await book.finish(running.id)) is not None
    assert (await book.finish(running.id)) is None  # recorded once


async def test_the_hourly_cap_is_per_account(store: Store, account_id: str) -> None:
    book = ActionStore(store)
    other = f"{account_id}-b"
    ids = {}
    for account in (account_id, other):
        await mirrored(store, account, "300")
        moved = await propose(book, account, "300")
        await book.approve(moved.action.id, "bob")
        ids[account] = moved.action.id
    assert await book.claim(ids[account_id], 1) is not None
    # The first account's hour is full; the other's is not.
    assert await book.claim(ids[other], 1) is not None
    assert (await book.counts(1, account_id))["running"] == 1
    assert (await book.counts(1, other))["running"] == 1


async def test_one_open_action_a_user(store: Store, account_id: str) -> None:
    await mirrored(store, account_id, "101")
    book = ActionStore(store)
    first = await propose(book, account_id, kind=Kind.DEPROVISION)

    for kind in (Kind.DEPROVISION, Kind.SUSPEND):  # proposed, then approved: still open
        with pytest.raises(Refused, match=f"action {first.action.id} .* still open"):
            await propose(book, account_id, kind=kind)
        if kind is Kind.DEPROVISION:
            await book.approve(first.action.id, "bob")
    await book.cancel(first.action.id, "bob")

    again = await propose(book, account_id, kind=Kind.DEPROVISION)  # the first is closed
    assert again.action.state is ActionState.PROPOSED
    assert len(await book.list(extension_id="101")) == 2
