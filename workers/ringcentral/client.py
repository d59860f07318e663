"""The RingCentral API client every ringsync process uses: typed calls over one shared budget.

Every call goes through `workers.ringcentral.session.Session` (shared token, shared rate-limit
budget, retries, typed errors); this module only knows RingCentral's endpoints and resource shapes.
Values read from RingCentral carry `read_at`, the moment their request was sent, on Redis's
clock (shared by every process; see `workers.ringcentral.budget`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from events.settings import Settings
from workers.ringcentral.budget import Budget
from workers.ringcentral.errors import ApiError, AuthError
from workers.ringcentral.resources import (
    Account,
    AssignedRolePage,
    AssignedRoles,
    BulkDeleteResult,
    Extension,
    ExtensionPage,
    Gone,
    Page,
    ScimUser,
    ScimUserPage,
    Subscription,
    SubscriptionList,
)
from workers.ringcentral.session import Params, Session, error_body, parse

EXTENSIONS = "/restapi/v1.0/account/~/extension"
# RingCentral's bulk delete takes at most this many extensions a call.
DELETE_CHUNK = 50
ASSIGNED_ROLES = "/restapi/v1.0/account/~/assigned-role"
SUBSCRIPTIONS = "/restapi/v1.0/subscription"
SCIM_USERS = "/scim/v2/Users"


P = TypeVar("P", bound=Page)


class RingCentral:
    """Typed RingCentral calls sharing one token and one rate-limit budget through Redis."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_wait: float = 30.0,
        attempts: int = 4,
        timeout: float = 20.0,
        backoff: float = 0.25,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[AuthError], Awaitable[None]] | None = None,
    ) -> None:
        # `max_wait` caps how long one call waits for budget before raising RateLimited, so jobs
        # retry later instead of holding a worker slot; `clock` only decides token freshness.
        self._server = settings.rc_server_url
        self._session = Session(
            settings,
            redis,
            transport=transport,
            max_wait=max_wait,
            attempts=attempts,
            timeout=timeout,
            backoff=backoff,
            clock=clock,
            on_refused=on_refused,
        )
        self.budget: Budget = self._session.budget

    def __repr__(self) -> str:
        return f"RingCentral(server={self._server!r})"

    @property
    def on_refused(self) -> Callable[[AuthError], Awaitable[None]] | None:
        """Called when RingCentral refuses the credentials themselves (see `Session`)."""
        return self._session.on_refused

    @on_refused.setter
    def on_refused(self, callback: Callable[[AuthError], Awaitable[None]] | None) -> None:
        self._session.on_refused = callback

    async def aclose(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> RingCentral:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def account(self) -> Account:
        """The account behind the credentials; `id` is the numeric id, never `~`."""
        response, _ = await self._session.send("GET", "/restapi/v1.0/account/~")
        return parse(Account, response)

    async def list_extensions(
        self,
        *,
        types: Sequence[str] | None = ("User",),
        status: str | None = None,
        per_page: int = 1000,
    ) -> AsyncIterator[ExtensionPage]:
        """Every page of extensions, following `navigation.nextPage` until there is none."""
        params: Params = [("page", 1), ("perPage", per_page)]
        params += [("type", kind) for kind in types or ()]
        if status is not None:
            params.append(("status", status))
        async for page in self._pages(ExtensionPage, EXTENSIONS, params):
            yield page

    async def list_assigned_roles(self, *, per_page: int = 1000) -> AsyncIterator[AssignedRolePage]:
        """Every page of the account's role assignments (Medium): extensions with no role are
        not listed, so only a listing read to its end says who has none."""
        params: Params = [("page", 1), ("perPage", per_page)]
        async for page in self._pages(AssignedRolePage, ASSIGNED_ROLES, params):
            yield page

    async def get_assigned_roles(self, extension_id: str) -> AssignedRoles | Gone:
        """One extension's roles (Light), or Gone when the extension no longer exists."""
        path = f"{EXTENSIONS}/{quote(str(extension_id), safe='')}/assigned-role"
        response, sent_at = await self._session.send("GET", path, allow=frozenset({404}))
        if response.status_code == 404:
            return Gone(id=str(extension_id), read_at=sent_at, error_code=error_body(response).code)
        return parse(AssignedRoles, response, read_at=sent_at)

    async def _pages(self, model: type[P], path: str, params: Params) -> AsyncIterator[P]:
        """Pages of `model`, following `navigation.nextPage` until there is none."""
        while True:
            response, sent_at = await self._session.send("GET", path, params=params)
            page = parse(model, response, read_at=sent_at)
            yield page
            following = page.navigation.next_page
            if following is None or not page.records:
                return
            # Only the path and query are taken: the token never goes to a host from a body.
            url = httpx.URL(following.uri)
            path, params = url.path, list(url.params.multi_items())

    async def get_extension(self, extension_id: str) -> Extension | Gone:
        """One extension's current state, or Gone when RingCentral says it no longer exists."""
        path = f"{EXTENSIONS}/{quote(str(extension_id), safe='')}"
        response, sent_at = await self._session.send("GET", path, allow=frozenset({404}))
        if response.status_code == 404:
            error = error_body(response)
            if error.code != "CMN-102":
                raise ApiError(
                    f"GET {path}: HTTP 404 {error.code} {error.text}",
                    status=404,
                    error_code=error.code,
                )
            return Gone(id=str(extension_id), read_at=sent_at, error_code=error.code)
        return parse(Extension, response, read_at=sent_at)

    async def own_extension(self) -> Extension:
        """The extension our credential belongs to (the token's owner)."""
        response, sent_at = await self._session.send("GET", f"{EXTENSIONS}/~")
        return parse(Extension, response, read_at=sent_at)

    async def set_extension_status(
        self, extension_id: str, status: str, *, reason: str | None = None, comment: str = ""
    ) -> Extension:
        """Set an extension's status (`Disabled` with a `statusInfo` reason, or `Enabled`)."""
        path = f"{EXTENSIONS}/{quote(str(extension_id), safe='')}"
        body: dict[str, object] = {"status": status}
        if reason is not None:
            body["statusInfo"] = {"reason": reason, "comment": comment}
        response, sent_at = await self._session.send("PUT", path, json=body)
        return parse(Extension, response, read_at=sent_at)

    async def delete_extensions(
        self, account_id: str, extension_ids: Sequence[str]
    ) -> BulkDeleteResult:
        """Delete up to `DELETE_CHUNK` extensions in one Heavy call, keeping their phone numbers
        and devices in the account's inventory; each id has its own outcome."""
        if not 0 < len(extension_ids) <= DELETE_CHUNK:
            raise ValueError(f"between 1 and {DELETE_CHUNK} extensions a call")
        path = f"/restapi/v2/accounts/{quote(str(account_id), safe='')}/extensions"
        body = {"keepAssetsInInventory": True, "records": [{"id": i} for i in extension_ids]}
        response, sent_at = await self._session.send("DELETE", path, json=body)
        return parse(BulkDeleteResult, response, read_at=sent_at)

    async def create_subscription(
        self,
        *,
        event_filters: Sequence[str],
        address: str,
        verification_token: SecretStr | str,
        expires_in: int,
    ) -> Subscription:
        """A new WebHook subscription (RingCentral first checks the address with a handshake)."""
        if isinstance(verification_token, SecretStr):
            verification_token = verification_token.get_secret_value()
        body = {
            "eventFilters": list(event_filters),
            "deliveryMode": {
                "transportType": "WebHook",
                "address": address,
                "verificationToken": verification_token,
            },
            "expiresIn": expires_in,
        }
        response, _ = await self._session.send("POST", SUBSCRIPTIONS, json=body)
        return parse(Subscription, response)

    async def list_subscriptions(self) -> list[Subscription]:
        response, _ = await self._session.send("GET", SUBSCRIPTIONS)
        return parse(SubscriptionList, response).records

    async def get_subscription(self, subscription_id: str) -> Subscription | Gone:
        path = f"{SUBSCRIPTIONS}/{quote(subscription_id, safe='')}"
        response, sent_at = await self._session.send("GET", path, allow=frozenset({404}))
        if response.status_code == 404:
            return Gone(id=subscription_id, read_at=sent_at, error_code=error_body(response).code)
        return parse(Subscription, response)

    async def update_subscription(
        self, subscription_id: str, *, event_filters: Sequence[str], expires_in: int
    ) -> Subscription:
        """Change filters or lifetime in place (the address and token cannot change)."""
        path = f"{SUBSCRIPTIONS}/{quote(subscription_id, safe='')}"
        body = {"eventFilters": list(event_filters), "expiresIn": expires_in}
        response, _ = await self._session.send("PUT", path, json=body)
        return parse(Subscription, response)

    async def renew_subscription(self, subscription_id: str) -> Subscription:
        path = f"{SUBSCRIPTIONS}/{quote(subscription_id, safe='')}/renew"
        response, _ = await self._session.send("POST", path)
        return parse(Subscription, response)

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete it; one already gone counts as deleted."""
        path = f"{SUBSCRIPTIONS}/{quote(subscription_id, safe='')}"
        await self._session.send("DELETE", path, allow=frozenset({404}))

    async def scim_get_user(self, user_id: str) -> ScimUser | Gone:
        path = f"{SCIM_USERS}/{quote(user_id, safe='')}"
        response, sent_at = await self._session.send("GET", path, allow=frozenset({404}))
        if response.status_code == 404:
            return Gone(id=user_id, read_at=sent_at, error_code=error_body(response).code)
        return parse(ScimUser, response, read_at=sent_at)

    async def scim_search_users(
        self, filter: str, start_index: int = 1, count: int = 100
    ) -> ScimUserPage:
        """One page of SCIM users matching a SCIM filter (`userName eq "a@b.c"`)."""
        params: Params = [("filter", filter), ("startIndex", start_index), ("count", count)]
        response, sent_at = await self._session.send("GET", SCIM_USERS, params=params)
        return parse(ScimUserPage, response, read_at=sent_at)
