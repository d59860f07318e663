"""Whose notification is this: the account it names, and the token that account's subscription
was given, checked without a database round trip.

A notification's account is the numeric id in its `event` path; where the path says `~`, its
`subscriptionId` decides (renewal records which account each of our subscriptions belongs to,
in Redis), and an unknown one means the default account. The default account (the RC_*
environment) keeps RINGSYNC_VERIFICATION_TOKEN itself; every other account's token is derived
from it (`Settings.account_token`), so a token that opens one account opens no other.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Final

from pydantic import SecretStr
from redis.asyncio import Redis

from events.models import Notification
from events.settings import Settings
from events.verify import token_matches

_ACCOUNT = re.compile(r"/restapi/v1\.0/account/(\d+)(?:/|$|\?)")
# What `Settings.account_token` makes: 64 lowercase hex characters.
_DERIVED = re.compile(r"[0-9a-f]{64}")
# Redis hash: subscription id → the stored account it belongs to (absent: the default).
SUBSCRIPTION_ACCOUNTS = ("subscription", "accounts")
# How long "no worker has learned the default account yet" is believed before Redis is asked
# again. Asking on every request cost a Redis round trip each (a quarter of the receiver's CPU
# under load). Only the default token on a numeric path asks afresh (see `Router.check`).
DEFAULT_UNKNOWN_FOR: Final = 1.0
# Accounts whose derived token is kept (an HMAC a request otherwise); any number in a path can
# ask, so the memory is bounded and simply forgotten when full.
_TOKENS_KEPT: Final = 4096


def named_account(event: str) -> str | None:
    """The numeric account id an event path names, or None (`~`, or no account in it)."""
    found = _ACCOUNT.search(event)
    return None if found is None else found.group(1)


@dataclass
class Router:
    """Decides a notification's account and checks its token; "" stands for the default."""

    settings: Settings
    redis: Redis
    _default: str | None = field(default=None, repr=False)
    _unknown_until: float = field(default=0.0, repr=False)
    _tokens: dict[str, SecretStr] = field(default_factory=dict, repr=False)

    def account_token(self, account: str) -> SecretStr:
        """`Settings.account_token`, remembered."""
        token = self._tokens.get(account)
        if token is None:
            if len(self._tokens) >= _TOKENS_KEPT:
                self._tokens.clear()
            token = self._tokens[account] = self.settings.account_token(account)
        return token

    async def default_account(self, *, fresh: bool = False) -> str | None:
        """The default account's id once a worker has learned it (it never changes after);
        while none has, Redis is asked again at most every `DEFAULT_UNKNOWN_FOR` seconds, or
        at once when `fresh` (where a stale "unknown" would open a door)."""
        if self._default is None and (fresh or time.monotonic() >= self._unknown_until):
            known = await self.redis.get(self.settings.root_key("account_id"))
            if known is None:
                self._unknown_until = time.monotonic() + DEFAULT_UNKNOWN_FOR
            else:
                self._default = known.decode()
        return self._default

    async def _subscription_owner(self, notification: Notification) -> str:
        if notification.subscription_id is None:
            return ""
        owner = await self.redis.hget(  # type: ignore[misc]
            self.settings.root_key(*SUBSCRIPTION_ACCOUNTS), notification.subscription_id
        )
        return "" if owner is None else owner.decode()

    async def check(self, notification: Notification, *candidates: str | None) -> str | None:
        """The notification's account ("" = default) when a candidate is its token, else None.

        Redis is asked only once a token matched something (or for a `~` path): a request
        without a right token is refused at no cost.
        """
        base = self.settings.verification_token
        if not base.get_secret_value():
            return ""  # no token configured: one account, nothing to tell apart
        named = named_account(notification.event)
        if named is None:
            if token_matches(base, *candidates):
                return ""
            if not any(_DERIVED.fullmatch(c or "") for c in candidates):
                return None  # not even shaped like an account's token: no lookup needed
            owner = await self._subscription_owner(notification)
            if owner and token_matches(self.account_token(owner), *candidates):
                return owner
            return None
        if token_matches(self.account_token(named), *candidates):
            return "" if named == await self.default_account() else named
        if not token_matches(base, *candidates):
            return None
        # The default account's own token opens the default account only (or any numeric path
        # before a worker learned which account that is: asked afresh, so no receiver keeps that
        # door open after one has).
        default = await self.default_account(fresh=True)
        return "" if default is None or default == named else None
