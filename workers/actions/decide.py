"""The pure decisions about an action: may it be proposed, may it be approved, and — given
RingCentral's fresh answer — what may its execution do now?

No I/O here. The store and the job read the action, the user and the protection facts, ask here,
and act on the answer. Rules, in the order they are checked:

- Only `type=User` extensions are acted on, and never a protected one: the account's operator,
  the extension our credential belongs to, or any holder of the `Super Admin` role (by name or
  by its id). Protection fails closed: an unknown operator or unreadable roles refuse.
- The user must be where the kind starts from: a suspend from active or pending, a reactivate
  from suspended, a deprovision from any live state.
- At execution, RingCentral's status must still be the snapshot's (the user as mirrored when
  proposed): anything else, the target state included, means someone else moved them, and the
  action fails rather than act on a stale picture. The one exception is an action a crashed
  attempt already started (`resumed`): when the fresh read shows its own write landed, it is done
  without writing again. Type and protection are checked on the fresh read before any write,
  resumed or not; a deprovision whose suspend went out and whose user is live again was
  reactivated by someone meanwhile and fails rather than suspend them twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Kind(StrEnum):
    SUSPEND = "suspend"
    DEPROVISION = "deprovision"
    REACTIVATE = "reactivate"


class ActionState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FINISHED: Final = frozenset(
    {ActionState.DONE, ActionState.FAILED, ActionState.REJECTED, ActionState.CANCELLED}
)
# What a policy may approve on its own: deprovisions always need a person.
AUTO_APPROVABLE: Final = frozenset({Kind.SUSPEND})
POLICY: Final = "policy"
SUPER_ADMIN: Final = "Super Admin"
# RingCentral's id of the predefined Super Admin role (its name may be localised or missing).
SUPER_ADMIN_ID: Final = "1"

# RingCentral statuses each kind may start from.
_STARTS: Final = {
    Kind.SUSPEND: frozenset({"Enabled", "NotActivated"}),
    Kind.REACTIVATE: frozenset({"Disabled"}),
    Kind.DEPROVISION: frozenset({"Enabled", "NotActivated", "Disabled", "Frozen"}),
}
# The status a kind's PUT sets; a deprovision ends with the extension gone.
_TARGET: Final = {Kind.SUSPEND: "Disabled", Kind.REACTIVATE: "Enabled"}


class Step(StrEnum):
    """One write against RingCentral."""

    SUSPEND = "suspend"  # PUT …/extension/{id} status Disabled (Medium)
    REACTIVATE = "reactivate"  # PUT …/extension/{id} status Enabled (Medium)
    DELETE = "delete"  # DELETE /restapi/v2/accounts/{a}/extensions (Heavy, ≤ 50 ids a call)


@dataclass(frozen=True)
class Protection:
    """Who must never be acted on in one account, besides `Super Admin` holders."""

    operator_id: str | None
    owner_id: str | None


@dataclass(frozen=True)
class Subject:
    """One extension as seen now (a fresh read) or as mirrored (a snapshot)."""

    extension_id: str
    type: str | None
    status: str | None
    roles: Sequence[str] = ()
    role_ids: Sequence[str] = ()
    # False when RingCentral would not say which roles the extension holds.
    roles_known: bool = True

    @classmethod
    def from_snapshot(cls, extension_id: str, snapshot: Mapping[str, Any]) -> Subject:
        roles = [r for r in snapshot.get("roles") or () if isinstance(r, Mapping)]
        return cls(
            extension_id=extension_id,
            type=snapshot.get("type"),
            status=snapshot.get("status"),
            roles=tuple(str(r.get("name") or "") for r in roles),
            role_ids=tuple(str(r["id"]) for r in roles if r.get("id") is not None),
        )


@dataclass(frozen=True)
class Run:
    """Write these steps, in order (none: the action's own earlier write already landed)."""

    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Refuse:
    """Do not write; the action fails with `reason`."""

    reason: str


def protected(subject: Subject, protection: Protection) -> str | None:
    """Why `subject` may never be acted on, or None (unknown facts protect)."""
    if protection.operator_id is None:
        return "protected: the account's operator extension is not known"
    if not subject.roles_known:
        return "protected: the extension's roles could not be read"
    if subject.extension_id == protection.operator_id:
        return "protected: the account's operator extension"
    if subject.extension_id == protection.owner_id:
        return "protected: the extension ringsync's credential belongs to"
    if SUPER_ADMIN in subject.roles or SUPER_ADMIN_ID in subject.role_ids:
        return "protected: holds the Super Admin role"
    return None


def refusal(kind: Kind, subject: Subject, protection: Protection) -> str | None:
    """Why `kind` may not be done to `subject` as it stands, or None (proposal and execution)."""
    reason = _untouchable(subject, protection)
    if reason is not None:
        return reason
    if subject.status not in _STARTS[kind]:
        return f"cannot {kind} an extension whose status is {subject.status or 'unknown'}"
    return None


def steps_for(kind: Kind, status: str | None) -> tuple[Step, ...]:
    """The writes `kind` takes from `status` (a deprovision suspends first when needed)."""
    if kind is Kind.SUSPEND:
        return (Step.SUSPEND,)
    if kind is Kind.REACTIVATE:
        return (Step.REACTIVATE,)
    if status in ("Disabled", "Frozen"):
        return (Step.DELETE,)
    return (Step.SUSPEND, Step.DELETE)


def preflight(kind: Kind, subject: Subject, protection: Protection) -> Run | Refuse:
    """What a proposal would do if it ran now (`--dry-run`, and the gate at proposal)."""
    reason = refusal(kind, subject, protection)
    return Refuse(reason) if reason is not None else Run(steps_for(kind, subject.status))


def execution(
    kind: Kind,
    snapshot: Subject,
    fresh: Subject | None,
    protection: Protection,
    *,
    resumed: bool = False,
    suspended: bool = False,
) -> Run | Refuse:
    """What the execution may do given RingCentral's fresh read (`None`: the extension is gone).

    `resumed`: an earlier attempt of this action went running and may have written before it
    died; a fresh read showing that write's result completes the action without a new write.
    `suspended`: this deprovision's suspend was sent (it waits for, or is at, its delete).
    """
    if resumed or suspended:
        landed = _landed(kind, fresh, suspended=suspended)
        if isinstance(landed, Refuse) or (landed is not None and not landed.steps):
            return landed
    else:
        landed = None
    if fresh is None:
        return Refuse("changed since proposed: the extension no longer exists")
    if fresh.type != snapshot.type:
        return Refuse(f"changed since proposed: type {snapshot.type} → {fresh.type}")
    reason = _untouchable(fresh, protection)
    if reason is not None:
        return Refuse(reason)
    if landed is not None:
        return landed
    if fresh.status != snapshot.status:
        return Refuse(f"changed since proposed: status {snapshot.status} → {fresh.status}")
    reason = refusal(kind, fresh, protection)
    if reason is not None:
        return Refuse(reason)
    return Run(steps_for(kind, fresh.status))


def _untouchable(subject: Subject, protection: Protection) -> str | None:
    if subject.type != "User":
        return f"not a user: extension type is {subject.type or 'unknown'}"
    return protected(subject, protection)


def _landed(kind: Kind, fresh: Subject | None, *, suspended: bool) -> Run | Refuse | None:
    """What is left of `kind` when a crashed attempt's writes are visible in `fresh`."""
    if kind is Kind.DEPROVISION:
        if fresh is None or fresh.status == "Unassigned":
            return Run(())
        # Suspended by this action: only the delete is left.
        if fresh.status == "Disabled":
            return Run((Step.DELETE,))
        if suspended:
            # Our suspend went out, yet the user is live: a person reactivated them meanwhile.
            return Refuse(f"reactivated while waiting to be deleted: status is {fresh.status}")
        return None
    if fresh is not None and fresh.status == _TARGET[kind]:
        return Run(())
    return None


def may_approve(proposed_by: str, approver: str) -> bool:
    """A person, named, approves someone else's proposal ("policy" approves only inside the
    gate, never by a caller's say-so)."""
    name = approver.strip().casefold()
    return bool(name) and not reserved(name) and name != proposed_by.strip().casefold()


def reserved(name: str) -> bool:
    """Whether `name` is the policy's: no person decides or proposes under it."""
    return name.strip().casefold() == POLICY


def waiting(approved: int, started_last_hour: int, max_per_hour: int) -> int:
    """How many approved actions the hourly cap holds back."""
    return max(0, approved - max(0, max_per_hour - started_last_hour))
