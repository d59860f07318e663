"""The official `ringcentral` Python SDK logs in with JWT against the sandbox and lists
extensions. The SDK is synchronous (requests), so it runs in a thread while the sandbox serves
from the test's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from ringcentral import SDK

from sandbox.server import SandboxServer


def _login_and_list(sb: SandboxServer) -> tuple[list[Any], Any]:
    platform = SDK(sb.client_id, sb.client_secret, sb.url).platform()
    platform.login(jwt=sb.jwt)
    records: list[Any] = []
    page = platform.get("/restapi/v1.0/account/~/extension", {"perPage": 2}).json_dict()
    records += page["records"]
    while "nextPage" in page["navigation"]:
        page = platform.get(page["navigation"]["nextPage"]["uri"]).json_dict()
        records += page["records"]
    account = platform.get("/restapi/v1.0/account/~").json_dict()
    platform.logout()
    return records, account


async def test_official_sdk_logs_in_and_lists_extensions() -> None:
    async with SandboxServer(users=5) as sb:
        records, account = await asyncio.to_thread(_login_and_list, sb)
        assert [str(r["id"]) for r in records] == [u["id"] for u in sb.world.users()]
        assert account["id"] == int(sb.account_id)
        statuses = {(c["path"], c["status"]) for c in sb.world.calls}
        assert ("/restapi/oauth/token", 200) in statuses
        assert ("/restapi/oauth/revoke", 200) in statuses
