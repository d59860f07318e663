"""Who an account's actions must never touch: its operator extension and the extension our
credential belongs to (Super Admin holders are judged from each user's roles).

Both come from RingCentral (`GET /restapi/v1.0/account/~` names the operator, `GET
…/extension/~` is the credential's own extension; Light calls) and are kept in Redis, per
account, for a few minutes: a bulk proposal asks once, not once per user. `accounts update`
forgets them (new credentials may belong to another extension).
"""

from __future__ import annotations

import json
from typing import Final

from events.settings import Settings
from workers.actions.decide import Protection
from workers.context import Deps

KEEP_SECONDS: Final = 300


async def protection(d: Deps, *, fresh: bool = False) -> Protection:
    """The account's protected extensions (cached up to `KEEP_SECONDS`, forgotten by `accounts
    update`; `fresh` reads RingCentral again)."""
    key = protection_key(d.settings)
    if not fresh:
        cached = await d.redis.get(key)
        if cached is not None:
            found = json.loads(cached)
            return Protection(operator_id=found["operator_id"], owner_id=found["owner_id"])
    account = await d.client.account()
    own = await d.client.own_extension()
    operator = account.operator.id if account.operator is not None else None
    facts = Protection(operator_id=operator, owner_id=own.id)
    await d.redis.set(
        key, json.dumps({"operator_id": operator, "owner_id": own.id}), ex=KEEP_SECONDS
    )
    return facts


def protection_key(settings: Settings) -> str:
    """Where the account's facts are kept (`settings` scoped to the account)."""
    return settings.key("actions", "protection")
