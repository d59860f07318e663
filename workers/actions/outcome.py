"""What every execution step starts and ends with: RingCentral's fresh read of the user (with
their roles), RingCentral's answer written through the mirror's normal path (so downstream hears
`user.*` as usual), and the action's own record."""

from __future__ import annotations

import logging

from workers.actions.action import Action
from workers.actions.decide import Subject
from workers.actions.store import ActionStore
from workers.context import Deps
from workers.decide import Gone
from workers.delivery.outbox import announce
from workers.observe import observe
from workers.reconcile import policy
from workers.ringcentral.resources import Extension
from workers.ringcentral.resources import Gone as ClientGone

log = logging.getLogger(__name__)


async def reread(d: Deps, extension_id: str) -> tuple[Extension | ClientGone, Subject | None]:
    """RingCentral's read of the extension now, and the user as the decision sees it (None:
    gone). Roles RingCentral will not give are marked unknown, which protects the user."""
    found = await d.client.get_extension(extension_id)
    if not isinstance(found, Extension):
        return found, None
    roles = await d.client.get_assigned_roles(extension_id)
    if isinstance(roles, ClientGone):
        return found, Subject(extension_id, found.type, found.status, roles_known=False)
    return found, Subject(
        extension_id,
        found.type,
        found.status,
        roles=tuple(r.display_name or "" for r in roles.records),
        role_ids=tuple(str(r.id) for r in roles.records),
    )


async def mirror(
    d: Deps, extension_id: str, found: Extension | ClientGone | Gone, action_id: str
) -> None:
    """Write RingCentral's answer through the mirror's normal path (and announce its events);
    a `Gone` is a bulk delete's own success for this extension."""
    observation = found if isinstance(found, Gone) else observe(found)
    _, rows = await d.store.reconcile(
        await d.account_id(), extension_id, observation, f"action:{action_id}", policy(d)
    )
    await announce(d, rows)


async def finish(d: Deps, book: ActionStore, action: Action, *, error: str | None = None) -> None:
    moved = await book.finish(action.id, error=error)
    if moved is not None:
        await announce(d, moved.rows)
        log.info(
            "action finished",
            extra={
                "action": action.id,
                "extension_id": action.extension_id,
                "state": str(moved.action.state),
                "error": error,
            },
        )
