"""Licence candidates turned into proposed suspensions, through the actions' approval gate.

Proposals only: nothing here suspends anyone. Each goes through `workers.actions.gate.propose`,
so every approval rule applies (a person other than the proposer approves; a written policy may
approve suspends). A candidate the gate refuses (protected, not a User, no longer active) is
reported with the reason and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workers.actions.decide import Kind
from workers.actions.gate import propose
from workers.actions.protection import protection
from workers.actions.store import NotFound, Refused
from workers.activity.store import Candidate
from workers.context import Deps


@dataclass(frozen=True)
class Proposal:
    """What became of one candidate: the action proposed, or why none was."""

    candidate: Candidate
    action_id: str | None
    refused: str | None


async def propose_suspensions(
    d: Deps, found: Sequence[Candidate], *, by: str, days: int
) -> list[Proposal]:
    """One suspend proposal per candidate of `d`'s account (RingCentral asked once for who is
    protected)."""
    facts = await protection(d)
    reason = f"no call made or answered for {days} days (licence report)"
    made: list[Proposal] = []
    for candidate in found:
        try:
            action = await propose(
                d, Kind.SUSPEND, candidate.extension_id, reason=reason, by=by, facts=facts
            )
        except (Refused, NotFound) as exc:
            made.append(Proposal(candidate, None, str(exc)))
            continue
        made.append(Proposal(candidate, action.id, None))
    return made
