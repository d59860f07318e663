"""The pure decision, table by table: every status transition, field diffs, stale and partial
observations, and the outbox payload."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workers.decide import (
    Decision,
    Gone,
    Observation,
    Policy,
    UserRow,
    decide,
    event_payload,
)
from workers.lifecycle import EventType, State, state_for, transition_event

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
STATUS_OF = {
    State.ACTIVE: "Enabled",
    State.PENDING: "NotActivated",
    State.SUSPENDED: "Disabled",
    State.DEPROVISIONED: "Unassigned",
}


def seen(status: str = "Enabled", read_at: datetime = T1, **fields: Any) -> Observation:
    profile: dict[str, Any] = {
        "type": "User",
        "extension_number": "101",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "department": "Engineering",
    }
    profile.update(fields)
    return Observation(read_at=read_at, status=status, raw={"status": status}, **profile)


def stored(state: State, status: str | None = None, **fields: Any) -> UserRow:
    row = decide(seen(status or STATUS_OF[state], read_at=T0), None).row
    if row is None:  # a deprovisioned user was once live
        row = decide(seen("Enabled", read_at=T0), None).row
        assert row is not None
        row = replace(row, state=state, status=status or STATUS_OF[state], deprovisioned_at=T0)
    return replace(row, sequence=3, **fields)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Enabled", State.ACTIVE),
        ("NotActivated", State.PENDING),
        ("Disabled", State.SUSPENDED),
        ("Frozen", State.SUSPENDED),
        ("Unassigned", State.DEPROVISIONED),
        ("SomethingNew", None),
    ],
)
def test_status_maps_to_state(status: str, state: State | None) -> None:
    assert state_for(status) == state


# (stored state or None, observation: a status or "gone") -> (new state, events)
TRANSITIONS: list[tuple[State | None, str, State | None, tuple[EventType, ...]]] = [
    (None, "Enabled", State.ACTIVE, (EventType.CREATED,)),
    (None, "NotActivated", State.PENDING, (EventType.CREATED,)),
    (None, "Disabled", State.SUSPENDED, (EventType.CREATED,)),
    (None, "Frozen", State.SUSPENDED, (EventType.CREATED,)),
    (None, "Unassigned", None, ()),
    (None, "gone", None, ()),
    (State.PENDING, "Enabled", State.ACTIVE, (EventType.ACTIVATED,)),
    (State.ACTIVE, "Disabled", State.SUSPENDED, (EventType.SUSPENDED,)),
    (State.ACTIVE, "Frozen", State.SUSPENDED, (EventType.SUSPENDED,)),
    (State.PENDING, "Disabled", State.SUSPENDED, (EventType.SUSPENDED,)),
    (State.SUSPENDED, "Enabled", State.ACTIVE, (EventType.REACTIVATED,)),
    (State.SUSPENDED, "NotActivated", State.PENDING, (EventType.UPDATED,)),
    (State.ACTIVE, "NotActivated", State.PENDING, (EventType.UPDATED,)),
    (State.ACTIVE, "Unassigned", State.DEPROVISIONED, (EventType.DEPROVISIONED,)),
    (State.PENDING, "Unassigned", State.DEPROVISIONED, (EventType.DEPROVISIONED,)),
    (State.SUSPENDED, "Unassigned", State.DEPROVISIONED, (EventType.DEPROVISIONED,)),
    (State.ACTIVE, "gone", State.DEPROVISIONED, (EventType.DEPROVISIONED,)),
    (State.SUSPENDED, "gone", State.DEPROVISIONED, (EventType.DEPROVISIONED,)),
    (State.DEPROVISIONED, "Enabled", State.ACTIVE, (EventType.CREATED,)),
    (State.DEPROVISIONED, "NotActivated", State.PENDING, (EventType.CREATED,)),
    (State.DEPROVISIONED, "Disabled", State.SUSPENDED, (EventType.CREATED,)),
    (State.DEPROVISIONED, "gone", State.DEPROVISIONED, ()),
    (State.ACTIVE, "Enabled", State.ACTIVE, ()),
    (State.SUSPENDED, "Disabled", State.SUSPENDED, ()),
]


@pytest.mark.parametrize(("before", "observed", "after", "events"), TRANSITIONS)
def test_transition_emits_the_designed_event(
    before: State | None, observed: str, after: State | None, events: tuple[EventType, ...]
) -> None:
    row = stored(before) if before is not None else None
    observation = Gone(T1) if observed == "gone" else seen(observed)

    decision = decide(observation, row)

    assert decision.events == events
    assert decision.old_state == before
    if after is None:
        assert decision.row is None
        assert not decision.history
    else:
        assert decision.row is not None
        assert decision.row.state == after
        assert decision.new_state == after
        assert decision.row.observed_at == T1
        assert decision.history == (after != before or bool(decision.diffs))


def test_transition_table_matches_design() -> None:
    assert transition_event(None, State.ACTIVE) is EventType.CREATED
    assert transition_event(State.DEPROVISIONED, State.DEPROVISIONED) is None
    assert transition_event(State.DEPROVISIONED, State.SUSPENDED) is EventType.CREATED
    assert transition_event(State.ACTIVE, State.DEPROVISIONED) is EventType.DEPROVISIONED


def test_a_new_user_carries_every_known_field_as_a_diff() -> None:
    decision = decide(seen(), None)
    assert decision.diffs["email"] == (None, "ada@example.com")
    assert decision.diffs["status"] == (None, "Enabled")
    assert "job_title" not in decision.diffs  # unknown stays unknown
    assert decision.row is not None
    assert decision.row.first_seen_at == decision.row.updated_at == T1


def test_baseline_writes_users_without_events() -> None:
    decision = decide(seen(), None, Policy(baseline=True))
    assert decision.row is not None
    assert decision.history
    assert decision.events == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Augusta"),
        ("last_name", "King"),
        ("email", "augusta@example.com"),
        ("extension_number", "202"),
        ("department", "Research"),
        ("job_title", "Analyst"),
        ("email_as_login", True),
        ("international_calling", True),
        ("type", "User"),  # unchanged: no event
    ],
)
def test_profile_change_in_the_same_state_is_an_update(field: str, value: Any) -> None:
    before = stored(State.ACTIVE)
    decision = decide(seen(**{field: value}), before)
    if getattr(before, field) == value:
        assert decision.events == ()
        assert decision.diffs == {}
        return
    assert decision.events == (EventType.UPDATED,)
    assert decision.diffs == {field: (getattr(before, field), value)}
    assert decision.history
    assert decision.row is not None
    assert decision.row.updated_at == T1


def test_a_state_change_with_profile_changes_emits_the_state_event_with_the_diffs() -> None:
    decision = decide(seen("Disabled", email="new@example.com"), stored(State.ACTIVE))
    assert decision.events == (EventType.SUSPENDED,)
    assert decision.diffs == {
        "email": ("ada@example.com", "new@example.com"),
        "status": ("Enabled", "Disabled"),
    }


def test_moving_between_statuses_of_one_state_is_history_without_an_event() -> None:
    decision = decide(seen("Frozen"), stored(State.SUSPENDED, "Disabled"))
    assert decision.diffs == {"status": ("Disabled", "Frozen")}
    assert decision.history
    assert decision.events == ()


def test_nothing_changed_only_advances_the_guard_clock() -> None:
    before = stored(State.ACTIVE)
    decision = decide(seen(), before)
    assert decision.row == replace(before, observed_at=T1)
    assert decision.row.updated_at == T0
    assert (decision.history, decision.events, decision.diffs) == (False, (), {})


def test_the_same_read_applied_twice_writes_nothing() -> None:
    first = decide(seen(), None).row
    assert first is not None
    assert decide(seen(), first).row is None


@pytest.mark.parametrize(
    "observation", [seen("Disabled", read_at=T0 - timedelta(1)), Gone(T0 - timedelta(1))]
)
def test_a_stale_observation_never_replaces_a_newer_one(observation: Observation | Gone) -> None:
    decision = decide(observation, stored(State.ACTIVE))
    assert decision.row is None
    assert decision.events == ()
    assert not decision.history


def test_an_observation_read_at_the_same_instant_is_not_stale() -> None:
    decision = decide(seen("Disabled", read_at=T0), stored(State.ACTIVE))
    assert decision.events == (EventType.SUSPENDED,)


def test_a_partial_observation_never_blanks_fields_it_does_not_carry() -> None:
    before = stored(State.ACTIVE, job_title="Countess", raw={"status": "Enabled", "regional": 1})
    page = Observation(
        read_at=T1,
        status="Enabled",
        type="User",
        extension_number="101",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        raw={"status": "Enabled"},
        present=frozenset({"extension_number", "first_name", "last_name", "email"}),
    )
    decision = decide(page, before)
    assert decision.row is not None
    assert decision.row.job_title == "Countess"
    assert decision.row.department == "Engineering"
    assert decision.row.raw == {"status": "Enabled", "regional": 1}
    assert decision.events == ()


def test_a_full_observation_does_blank_a_removed_field() -> None:
    decision = decide(seen(department=None), stored(State.ACTIVE))
    assert decision.diffs == {"department": ("Engineering", None)}
    assert decision.events == (EventType.UPDATED,)


def test_deprovisioning_keeps_who_the_user_was() -> None:
    unassigned = seen("Unassigned", first_name=None, last_name=None, email=None)
    decision = decide(unassigned, stored(State.ACTIVE))
    assert decision.row is not None
    assert decision.row.email == "ada@example.com"
    assert decision.row.deprovisioned_at == T1
    assert decision.diffs == {"status": ("Enabled", "Unassigned")}


def test_gone_clears_the_status_and_stamps_deprovisioned_at() -> None:
    decision = decide(Gone(T1), stored(State.SUSPENDED))
    assert decision.row is not None
    assert decision.row.status is None
    assert decision.row.deprovisioned_at == T1
    assert decision.diffs == {"status": ("Disabled", None)}


def test_reassigned_extension_is_created_again_with_a_fresh_profile() -> None:
    before = stored(State.DEPROVISIONED)
    decision = decide(seen(first_name="Grace", email="grace@example.com"), before)
    assert decision.events == (EventType.CREATED,)
    assert decision.row is not None
    assert decision.row.deprovisioned_at is None
    assert decision.row.first_seen_at == before.first_seen_at
    assert decision.diffs["email"] == ("ada@example.com", "grace@example.com")


def test_types_not_mirrored_are_ignored_and_a_user_changing_type_is_deprovisioned() -> None:
    assert decide(seen(type="Department"), None).row is None
    decision = decide(seen(type="Department"), stored(State.ACTIVE))
    assert decision.events == (EventType.DEPROVISIONED,)
    assert decision.diffs["type"] == ("User", "Department")
    mirrored = decide(seen(type="Department"), None, Policy(user_types=frozenset({"Department"})))
    assert mirrored.events == (EventType.CREATED,)


def test_an_undocumented_status_changes_nothing() -> None:
    assert decide(seen("Mystery"), stored(State.ACTIVE)).row is None
    assert decide(seen("Mystery"), None).row is None


def test_payload_carries_the_user_the_transition_and_the_diffs() -> None:
    decision: Decision = decide(seen("Disabled"), stored(State.ACTIVE))
    payload = event_payload(
        event_type=decision.events[0],
        event_id="evt-1",
        account_id="400",
        extension_id="101",
        sequence=4,
        decision=decision,
        cause="uuid-1",
    )
    assert payload["type"] == "user.suspended"
    assert payload["previous_state"] == "active"
    assert payload["state"] == "suspended"
    assert payload["sequence"] == 4
    assert payload["occurred_at"] == T1.isoformat()
    assert payload["user"]["email"] == "ada@example.com"
    assert payload["user"]["extension_id"] == "101"
    assert payload["diffs"] == {"status": ["Enabled", "Disabled"]}
