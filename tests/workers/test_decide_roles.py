"""The pure decision for who may do what, table by table: roles reads (baseline, changes, order,
stale reads, users not ours), admin from extension reads, site as a profile field, and the
diffs each event carries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.workers.test_decide import T1, seen, stored
from workers.decide import Policy, Roles, decide, event_payload
from workers.lifecycle import EventType, State

ADMIN = {"id": "1", "name": "Super Admin"}
STANDARD = {"id": "2", "name": "Standard"}
ANNOUNCE = Policy(announce_first_roles=True)
CHANGED = EventType.ROLES_CHANGED


def roles(*held: dict[str, str], read_at: Any = T1) -> Roles:
    return Roles(read_at=read_at, roles=tuple(held))


# (roles stored, roles read, policy) -> (roles kept, events, history written)
ROLE_READS: list[tuple[Any, Roles, Policy, Any, tuple[EventType, ...], bool]] = [
    # A first read is a baseline: kept, not announced (unless the deployment asks).
    (None, roles(STANDARD), Policy(), [STANDARD], (), True),
    (None, roles(STANDARD), ANNOUNCE, [STANDARD], (EventType.ROLES_CHANGED,), True),
    (None, roles(), Policy(), [], (), False),
    # A change is news, an unchanged read is not, whatever order RingCentral answers in.
    ([STANDARD], roles(STANDARD, ADMIN), Policy(), [ADMIN, STANDARD], (CHANGED,), True),
    ([ADMIN, STANDARD], roles(STANDARD, ADMIN), Policy(), [ADMIN, STANDARD], (), False),
    ([ADMIN], roles(), Policy(), [], (CHANGED,), True),
]  # fmt: skip


@pytest.mark.parametrize(("before", "read", "policy", "after", "events", "history"), ROLE_READS)
def test_roles_reads(
    before: Any,
    read: Roles,
    policy: Policy,
    after: Any,
    events: tuple[EventType, ...],
    history: bool,
) -> None:
    row = stored(State.ACTIVE, roles=before)
    decision = decide(read, row, policy)
    assert decision.row is not None
    assert decision.row.roles == after
    assert decision.row.roles_observed_at == T1
    assert decision.events == events
    assert decision.history is history
    # A roles read touches nothing else: not the profile, nor the extension read's clock.
    assert (
        replace(decision.row, roles=before, roles_observed_at=None, updated_at=row.updated_at)
        == row
    )
    if events:
        assert decision.diffs == {"roles": (before, after)}


def test_a_roles_read_older_than_the_stored_one_changes_nothing() -> None:
    row = stored(State.ACTIVE, roles=[ADMIN], roles_observed_at=T1)
    assert decide(roles(read_at=T1 - timedelta(seconds=1)), row).row is None
    # ...but an extension read newer than the roles read does not stand in its way.
    row = stored(State.ACTIVE, roles=[ADMIN], observed_at=T1 + timedelta(hours=1))
    assert decide(roles(read_at=T1), row).events == (EventType.ROLES_CHANGED,)


@pytest.mark.parametrize("state", [None, State.DEPROVISIONED])
def test_roles_of_users_we_do_not_hold_live_are_not_kept(state: State | None) -> None:
    row = None if state is None else stored(state)
    assert decide(roles(ADMIN), row).row is None


@pytest.mark.parametrize("state", [State.ACTIVE, State.PENDING, State.SUSPENDED])
def test_roles_changes_are_news_in_every_live_state(state: State) -> None:
    decision = decide(roles(ADMIN), stored(state, roles=[STANDARD]))
    assert decision.events == (EventType.ROLES_CHANGED,)


# (admin stored, admin read, status read) -> events
ADMIN_READS: list[tuple[bool | None, bool | None, str, tuple[EventType, ...]]] = [
    (False, True, "Enabled", (EventType.ROLES_CHANGED,)),
    (True, False, "Enabled", (EventType.ROLES_CHANGED,)),
    (None, True, "Enabled", ()),  # the first read: a baseline
    (True, True, "Enabled", ()),
    (False, True, "Disabled", (EventType.SUSPENDED, EventType.ROLES_CHANGED)),
    (True, False, "Unassigned", (EventType.DEPROVISIONED,)),  # a leaver keeps what they had
]


@pytest.mark.parametrize(("before", "after", "status", "events"), ADMIN_READS)
def test_admin_from_extension_reads(
    before: bool | None, after: bool | None, status: str, events: tuple[EventType, ...]
) -> None:
    decision = decide(seen(status, admin=after), stored(State.ACTIVE, admin=before))
    assert decision.events == events


def test_a_partial_read_without_admin_keeps_the_stored_admin_and_site() -> None:
    site = {"id": "7", "name": "Paris"}
    row = stored(State.ACTIVE, admin=True, site=site, roles=[ADMIN])
    decision = decide(seen(first_name="Augusta", present=frozenset({"first_name"})), row)
    assert decision.row is not None
    assert (decision.row.admin, decision.row.site, decision.row.roles) == (True, site, [ADMIN])
    assert decision.events == (EventType.UPDATED,)


def test_a_site_move_is_a_profile_change() -> None:
    decision = decide(seen(site={"id": "7", "name": "Paris"}), stored(State.ACTIVE))
    assert decision.events == (EventType.UPDATED,)
    assert decision.diffs == {"site": (None, {"id": "7", "name": "Paris"})}


def test_someone_taking_over_a_deprovisioned_extension_starts_without_roles() -> None:
    row = stored(State.DEPROVISIONED, admin=True, roles=[ADMIN])
    decision = decide(seen(admin=False), row)
    assert decision.events == (EventType.CREATED,)
    assert decision.row is not None
    assert decision.row.roles is None
    # Their first roles read is a baseline again.
    assert decide(roles(ADMIN, read_at=T1 + timedelta(1)), decision.row).events == ()


def test_each_event_carries_its_own_diffs() -> None:
    row = stored(State.ACTIVE, admin=False)
    decision = decide(seen("Disabled", admin=True, job_title="CTO"), row)
    assert decision.events == (EventType.SUSPENDED, EventType.ROLES_CHANGED)
    payloads = [
        event_payload(
            event_type=event,
            event_id=str(n),
            account_id="1",
            extension_id="2",
            sequence=n,
            decision=decision,
            cause=None,
        )
        for n, event in enumerate(decision.events)
    ]
    assert set(payloads[0]["diffs"]) == {"status", "job_title"}
    assert payloads[1]["diffs"] == {"admin": [False, True]}
    assert payloads[1]["user"]["admin"] is True
