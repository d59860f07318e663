"""The mass-deprovisioning safeguard: when a resync holds its deprovisionings for a person, and
which held plan a person may approve (exactly the one named, still pending, of this account).

A mass deletion is more often a broken upstream or a wrong account than a real layoff, so a plan
is held when it deprovisions more than RINGSYNC_MAX_DEPROVISION_RATIO of the live users, but
only when it also deprovisions at least RINGSYNC_MAX_DEPROVISION_MIN of them: one absence in a
six-user account is 17% and needs nobody. A held plan is stale once a later complete listing
superseded it (that listing held its own plan, or applied what it confirmed): approving it
would act on an old picture.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.settings import Settings
from workers.resync.store import APPROVED, PENDING, Plan


class PlanRefused(Exception):
    """The named plan cannot be approved; the message says why, in one line."""


def ratio(planned: int, live: int) -> float:
    """The share of `live` users `planned` deprovisionings would take (1.0 with nobody live)."""
    return planned / live if live else (1.0 if planned else 0.0)


def holds(planned: int, live: int, settings: Settings) -> bool:
    """Whether `planned` deprovisionings out of `live` users wait for a person."""
    if planned < max(settings.max_deprovision_min, 1):
        return False
    return ratio(planned, live) > settings.max_deprovision_ratio


def approvable(plan_id: str, plan: Plan | None, account_id: str, pending: Sequence[Plan]) -> Plan:
    """`plan` when it may be approved now; else PlanRefused (`pending`: the account's pending
    plans, to name the one that superseded it)."""
    if plan is None:
        raise PlanRefused(
            f"there is no resync plan {plan_id}; `ringsync status` lists the plans waiting for "
            "approval. Nothing was applied"
        )
    if plan.account_id != account_id:
        raise PlanRefused(
            f"plan {plan_id} belongs to account {plan.account_id}, not {account_id}. "
            "Nothing was applied"
        )
    if plan.status == APPROVED:
        raise PlanRefused(f"plan {plan_id} was already approved. Nothing was applied")
    if plan.status != PENDING:
        newer = [other.id for other in pending if other.id != plan_id]
        after = (
            f"plan {newer[-1]} now waits for approval: check it, then "
            f"`ringsync resync --approve {newer[-1]}`"
            if newer
            else "and held nothing back"
        )
        raise PlanRefused(
            f"plan {plan_id} is stale: a later resync listed the account again, {after}. "
            "Nothing was applied"
        )
    return plan
