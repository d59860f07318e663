"""The pure decision at the heart of the mirror: given what RingCentral says now and what we
stored, what row do we keep, what changed, and what must downstream hear?

No I/O here. Jobs read RingCentral and the store, call `decide`, and hand the `Decision` to the
store, which writes it in one transaction (and decides again if the row moved in between).

Rules beyond the transition table (`workers.lifecycle`), chosen here:
- A deprovisioned row keeps the profile of the person who left (so offboarding knows who it
  was); later reads of the still-unassigned or deleted extension only refresh status, type and
  raw, and emit nothing.
- A stored user whose extension changes to a type we do not mirror is deprovisioned: as far as
  downstream is concerned, that user is gone.
- A status RingCentral has not documented changes nothing (no write), rather than guessing.
- A move between two statuses of the same state (Disabled → Frozen) is recorded in the history
  but emits no event; profile changes in a live state emit `user.updated`.
- Roles come from their own reads (`Roles`), on their own clock (`roles_observed_at`): a roles
  read never refreshes the profile, and an extension read never touches roles. A change of
  `roles` or `admin` in a live state emits `user.roles_changed`; a user's first roles (or admin)
  read is a baseline and emits nothing, unless `Policy.announce_first_roles`. Someone taking over
  a deprovisioned extension starts without roles: their first roles read is a baseline again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from workers.lifecycle import LIVE, EventType, State, state_for, transition_event

# Profile fields: a change in a live state is a `user.updated`.
PROFILE_FIELDS: Final = (
    "extension_number",
    "first_name",
    "last_name",
    "email",
    "email_as_login",
    "department",
    "job_title",
    "international_calling",
    "site",
    "type",
)
# Who may do what: a change in a live state is a `user.roles_changed`.
ROLE_FIELDS: Final = ("roles", "admin")
# Fields whose changes are recorded in the history and carried as diffs.
TRACKED_FIELDS: Final = (*PROFILE_FIELDS, "status", *ROLE_FIELDS)
# Profile fields a partial observation may leave out (status and type are always known).
OPTIONAL_FIELDS: Final = (*(name for name in PROFILE_FIELDS if name != "type"), "admin")

# A role as mirrored: `{"id": ..., "name": ...}`; a site likewise.
Role = Mapping[str, str]


@dataclass(frozen=True)
class Observation:
    """RingCentral's view of one extension, read at `read_at`: when the request was sent, on
    Redis's clock (shared by every process; see `workers.ringcentral.budget`), never a time a
    notification claims nor a host's own clock, since the stale-write guard compares it across
    processes.

    `present` names the optional fields this read carries; None means a full read, where a
    missing value really is empty. List pages carry fewer fields than single reads.
    """

    read_at: datetime
    status: str
    type: str
    extension_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_as_login: bool | None = None
    department: str | None = None
    job_title: str | None = None
    international_calling: bool | None = None
    site: Mapping[str, str] | None = None
    admin: bool | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    present: frozenset[str] | None = None

    @property
    def partial(self) -> bool:
        return self.present is not None

    def carries(self, name: str) -> bool:
        return self.present is None or name in self.present


@dataclass(frozen=True)
class Gone:
    """RingCentral answered 404 `CMN-102` for the extension (or a complete listing lacked it)."""

    read_at: datetime


@dataclass(frozen=True)
class Roles:
    """The roles RingCentral lists for one extension, read at `read_at` (same clock as above).

    From a complete account-wide sweep, a user the sweep does not list has `roles=()`.
    """

    read_at: datetime
    roles: tuple[Role, ...]


def role_list(roles: tuple[Role, ...]) -> list[dict[str, str]]:
    """Roles in one order (by id), so an order RingCentral happened to answer in is no change."""
    return sorted(({"id": r["id"], "name": r["name"]} for r in roles), key=lambda r: r["id"])


@dataclass(frozen=True)
class UserRow:
    """One stored user, without its key (account id and extension id)."""

    state: State
    status: str | None
    type: str | None
    observed_at: datetime
    first_seen_at: datetime
    updated_at: datetime
    extension_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_as_login: bool | None = None
    department: str | None = None
    job_title: str | None = None
    international_calling: bool | None = None
    site: Mapping[str, str] | None = None
    admin: bool | None = None
    roles: list[dict[str, str]] | None = None  # None: never read
    roles_observed_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    deprovisioned_at: datetime | None = None
    sequence: int = 0


@dataclass(frozen=True)
class Policy:
    """What the deployment mirrors, and whether this is an account's baseline resync."""

    user_types: frozenset[str] = frozenset({"User"})
    baseline: bool = False
    announce_first_roles: bool = False  # RINGSYNC_EMIT_BASELINE


DEFAULT_POLICY: Final = Policy()


@dataclass(frozen=True)
class Decision:
    """What to write. `row` is None when nothing is written; `observation`, `stored` and `policy`
    are kept so the store can decide again against the row it finds under its lock."""

    observation: Observation | Gone | Roles
    stored: UserRow | None
    policy: Policy
    row: UserRow | None
    diffs: Mapping[str, tuple[Any, Any]]
    old_state: State | None
    new_state: State | None
    events: tuple[EventType, ...]
    history: bool


def decide(
    observation: Observation | Gone | Roles,
    stored: UserRow | None,
    policy: Policy = DEFAULT_POLICY,
) -> Decision:
    """Decide how `observation` changes the `stored` row (see the module docstring)."""
    old_state = stored.state if stored is not None else None
    nothing = Decision(observation, stored, policy, None, {}, old_state, old_state, (), False)
    if isinstance(observation, Roles):
        return _decide_roles(observation, stored, policy, nothing)
    if stored is not None and observation.read_at < stored.observed_at:
        return nothing  # the stale-write guard: an older read never replaces a newer one
    target = _target_state(observation, policy)
    if target is None:
        return nothing
    if stored is None:
        if target is State.DEPROVISIONED or not isinstance(observation, Observation):
            return nothing  # never a user
        row = _first_row(observation, target)
        diffs = {name: (None, getattr(row, name)) for name in TRACKED_FIELDS}
        diffs = {name: pair for name, pair in diffs.items() if pair[1] is not None}
        events = () if policy.baseline else (EventType.CREATED,)
        return Decision(observation, stored, policy, row, diffs, None, target, events, True)

    row = _next_row(observation, stored, target)
    diffs = {
        name: (getattr(stored, name), getattr(row, name))
        for name in TRACKED_FIELDS
        if getattr(stored, name) != getattr(row, name)
    }
    changed = bool(diffs) or target != stored.state
    if changed:
        row = dataclasses.replace(row, updated_at=observation.read_at)
    if row == stored:
        return nothing
    event = transition_event(stored.state, target)
    if target == stored.state and target in LIVE and any(n in diffs for n in PROFILE_FIELDS):
        event = EventType.UPDATED
    events = (event,) if event is not None else ()
    if target in LIVE and stored.state in LIVE and _roles_news(diffs, policy):
        events = (*events, EventType.ROLES_CHANGED)
    return Decision(observation, stored, policy, row, diffs, old_state, target, events, changed)


def _decide_roles(
    observation: Roles, stored: UserRow | None, policy: Policy, nothing: Decision
) -> Decision:
    """Roles for a stored user in a live state; anyone else's are not ours to keep."""
    if stored is None or stored.state not in LIVE:
        return nothing
    if stored.roles_observed_at is not None and observation.read_at < stored.roles_observed_at:
        return nothing  # the stale-write guard, on the roles' own clock
    roles = role_list(observation.roles)
    row = dataclasses.replace(stored, roles=roles, roles_observed_at=observation.read_at)
    diffs: dict[str, tuple[Any, Any]] = {}
    if stored.roles != roles and not (stored.roles is None and not roles):
        diffs["roles"] = (stored.roles, roles)
        row = dataclasses.replace(row, updated_at=observation.read_at)
    events = (EventType.ROLES_CHANGED,) if _roles_news(diffs, policy) else ()
    state = stored.state
    return Decision(observation, stored, policy, row, diffs, state, state, events, bool(diffs))


def _roles_news(diffs: Mapping[str, tuple[Any, Any]], policy: Policy) -> bool:
    """Whether a change of who may do what is news: a first read is a baseline."""
    return any(
        name in diffs and (diffs[name][0] is not None or policy.announce_first_roles)
        for name in ROLE_FIELDS
    )


def _target_state(observation: Observation | Gone, policy: Policy) -> State | None:
    if isinstance(observation, Gone) or observation.type not in policy.user_types:
        return State.DEPROVISIONED
    return state_for(observation.status)


def _first_row(observation: Observation, state: State) -> UserRow:
    values = {name: getattr(observation, name) for name in OPTIONAL_FIELDS}
    return UserRow(
        state=state,
        status=observation.status,
        type=observation.type,
        observed_at=observation.read_at,
        first_seen_at=observation.read_at,
        updated_at=observation.read_at,
        raw=dict(observation.raw),
        **values,
    )


def _next_row(observation: Observation | Gone, stored: UserRow, state: State) -> UserRow:
    """The stored row moved to `state`, taking from `observation` what it may take."""
    moves: dict[str, Any] = {"state": state, "observed_at": observation.read_at}
    if state is State.DEPROVISIONED:
        if stored.state is not State.DEPROVISIONED:
            moves["deprovisioned_at"] = observation.read_at
    else:
        moves["deprovisioned_at"] = None
        if stored.state is State.DEPROVISIONED:
            moves.update(roles=None, admin=None)  # perhaps another person: a new baseline
    if isinstance(observation, Gone):
        moves["status"] = None
        return dataclasses.replace(stored, **moves)
    moves["status"] = observation.status
    moves["type"] = observation.type
    moves["raw"] = (
        {**stored.raw, **observation.raw} if observation.partial else dict(observation.raw)
    )
    if state is not State.DEPROVISIONED:
        for name in OPTIONAL_FIELDS:
            if observation.carries(name):
                moves[name] = getattr(observation, name)
    return dataclasses.replace(stored, **moves)


def event_payload(
    *,
    event_type: EventType,
    event_id: str,
    account_id: str,
    extension_id: str,
    sequence: int,
    decision: Decision,
    cause: str | None,
) -> dict[str, Any]:
    """The outbox payload for one event of `decision` (JSON-ready)."""
    row = decision.row
    assert row is not None  # only written decisions have events
    user: dict[str, Any] = {name: getattr(row, name) for name in TRACKED_FIELDS}
    user.update(account_id=account_id, extension_id=extension_id, state=str(row.state))
    # Each event carries its own diffs: who may do what for `user.roles_changed`, the rest else.
    roles_event = event_type is EventType.ROLES_CHANGED
    diffs = {n: list(p) for n, p in decision.diffs.items() if (n in ROLE_FIELDS) == roles_event}
    return {
        "type": str(event_type),
        "event_id": event_id,
        "occurred_at": decision.observation.read_at.isoformat(),
        "sequence": sequence,
        "cause": cause,
        "account_id": account_id,
        "extension_id": extension_id,
        "state": str(row.state),
        "previous_state": str(decision.old_state) if decision.old_state else None,
        "user": user,
        "diffs": diffs,
    }
