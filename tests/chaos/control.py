"""The sandbox process seen from the test: its HTTP control API under `/sandbox/...`."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxControl:
    """Change users, inject faults and read the truth of a sandbox running in another process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(base_url=f"{base_url}/sandbox", timeout=30.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    async def info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/info")
        return result

    async def users(self) -> list[dict[str, Any]]:
        """The truth, every extension in list order."""
        result: list[dict[str, Any]] = await self._call("GET", "/users")
        return result

    async def create_user(self, **fields: Any) -> str:
        created: dict[str, Any] = await self._call("POST", "/users", fields)
        return str(created["extension_id"])

    async def update_user(self, extension_id: str, **fields: Any) -> None:
        await self._call("PATCH", f"/users/{extension_id}", fields)

    async def act(self, extension_id: str, action: str) -> None:
        """`disable`, `freeze`, `enable` or `unassign`."""
        await self._call("POST", f"/users/{extension_id}/{action}", {})

    async def delete_user(self, extension_id: str) -> None:
        await self._call("DELETE", f"/users/{extension_id}")

    async def bulk_update(self, ids: list[str], **fields: Any) -> None:
        await self._call("POST", "/users/bulk", {"ids": ids, "fields": fields})

    async def faults(self, **faults: Any) -> None:
        """Replace the fault settings (no arguments: no faults)."""
        await self._call("POST", "/faults", faults)

    async def blacklist(self, subscription_id: str) -> None:
        await self._call("POST", f"/subscriptions/{subscription_id}/blacklist", {})

    async def drain(self) -> None:
        """Wait until every notification scheduled so far has been attempted."""
        await self._call("POST", "/drain", {})

    async def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt: uuid, subscription_id, event, status, outcome."""
        result: list[dict[str, Any]] = await self._call("GET", "/deliveries")
        return result

    async def calls(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/calls")
        return result
