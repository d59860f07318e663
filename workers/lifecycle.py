"""A user's lifecycle: RingCentral statuses mapped to our states, and the event each move emits.

This is the README's table ("Offboarding: what downstream hears") written as code, in full,
so the decision in `workers.decide` and its tests read the same facts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class State(StrEnum):
    """Where a user is in its life, as downstream systems see it."""

    ACTIVE = "active"
    PENDING = "pending"
    SUSPENDED = "suspended"
    DEPROVISIONED = "deprovisioned"


class EventType(StrEnum):
    """What the outbox tells downstream."""

    CREATED = "user.created"
    UPDATED = "user.updated"
    ACTIVATED = "user.activated"
    SUSPENDED = "user.suspended"
    REACTIVATED = "user.reactivated"
    DEPROVISIONED = "user.deprovisioned"
    ROLES_CHANGED = "user.roles_changed"


LIVE: Final = frozenset({State.ACTIVE, State.PENDING, State.SUSPENDED})

# RingCentral extension statuses. `Unassigned` is an extension no person holds any more.
UNASSIGNED: Final = "Unassigned"
_STATES: Final = {
    "Enabled": State.ACTIVE,
    "NotActivated": State.PENDING,
    "Disabled": State.SUSPENDED,
    "Frozen": State.SUSPENDED,
    UNASSIGNED: State.DEPROVISIONED,
}

_MOVES: Final = {
    (State.PENDING, State.ACTIVE): EventType.ACTIVATED,
    (State.ACTIVE, State.SUSPENDED): EventType.SUSPENDED,
    (State.PENDING, State.SUSPENDED): EventType.SUSPENDED,
    (State.SUSPENDED, State.ACTIVE): EventType.REACTIVATED,
    (State.SUSPENDED, State.PENDING): EventType.UPDATED,
    # Not in the README's table; an admin can move a user back to "not activated". Downstream only
    # needs to know the profile moved, as for suspended → pending.
    (State.ACTIVE, State.PENDING): EventType.UPDATED,
}


def state_for(status: str) -> State | None:
    """Our state for a RingCentral status; None for a status RingCentral has not documented."""
    return _STATES.get(status)


def transition_event(before: State | None, after: State) -> EventType | None:
    """The event a move between two different states emits (None when nothing is said)."""
    if before == after:
        return None
    if before is None or before is State.DEPROVISIONED:
        # A new user, or an extension reassigned to (possibly) a new person.
        return EventType.CREATED if after in LIVE else None
    if after is State.DEPROVISIONED:
        return EventType.DEPROVISIONED
    return _MOVES.get((before, after))
