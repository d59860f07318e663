"""What every execution step ends with: RingCentral's answer written through the mirror's
normal path (so downstream hears `user.*` as usual), and the action's own record."""

from __future__ import annotations

import logging

from workers.actions.action import Action
from workers.actions.store import ActionStore
from workers.context import Deps
from workers.decide import Gone
from workers.delivery.outbox import announce
from workers.observe import observe
from workers.reconcile import policy
from workers.ringcentral.resources import Extension
from workers.ringcentral.resources import Gone as ClientGone

log = logging.getLogger(__name__)


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
