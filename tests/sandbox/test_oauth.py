"""OAuth: the JWT grant with Basic client credentials, RingCentral's OAuth error shape, token
expiry on the sandbox clock, revoke, and 401 OAU-128 without a live token."""

from __future__ import annotations

import httpx

from sandbox.oauth import JWT_GRANT
from sandbox.server import SandboxServer
from tests.fixtures.sandbox import sandbox_login


async def test_jwt_grant_issues_a_bearer_token(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": sandbox.jwt},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"]
    assert response.headers["X-Rate-Limit-Group"] == "auth"


async def test_wrong_client_secret_is_invalid_client(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, "not-the-secret"),
            data={"grant_type": JWT_GRANT, "assertion": sandbox.jwt},
        )
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["errors"][0]["errorCode"]
    assert "not-the-secret" not in response.text


async def test_wrong_jwt_is_invalid_grant(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": "aaa.bbb.ccc"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unsupported_grant_type(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": "password"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_configured_credentials_are_the_ones_accepted() -> None:
    async with SandboxServer(client_id="cid", client_secret="sec", jwt="h.p.s") as sb:
        assert (sb.client_id, sb.client_secret, sb.jwt) == ("cid", "sec", "h.p.s")
        async with httpx.AsyncClient() as client:
            token = await sandbox_login(client, sb)
        assert token
        assert "sec" not in repr(sb.credentials)
        assert "h.p.s" not in repr(sb.credentials)


async def test_api_needs_a_live_token(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/restapi/v1.0/account/~/extension"
    async with httpx.AsyncClient() as client:
        missing = await client.get(url)
        wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
        token = await sandbox_login(client, sandbox)
        live = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        sandbox.world.advance_clock(3601)
        expired = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert live.status_code == 200
    for response in (missing, wrong, expired):
        assert response.status_code == 401
        assert response.json()["errorCode"] == "OAU-128"
        assert response.json()["errors"][0]["errorCode"] == "OAU-128"


async def test_token_ttl_is_settable() -> None:
    async with SandboxServer(token_ttl=60) as sb, httpx.AsyncClient() as client:
        token = await sandbox_login(client, sb)
        sb.world.advance_clock(61)
        response = await client.get(
            f"{sb.url}/restapi/v1.0/account/~", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401


async def test_revoke_ends_the_token(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        token = await sandbox_login(client, sandbox)
        revoked = await client.post(
            f"{sandbox.url}/restapi/oauth/revoke",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"token": token},
        )
        after = await client.get(
            f"{sandbox.url}/restapi/v1.0/account/~", headers={"Authorization": f"Bearer {token}"}
        )
    assert revoked.status_code == 200
    assert after.status_code == 401


async def test_refresh_token_grant(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as client:
        first = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": JWT_GRANT, "assertion": sandbox.jwt},
        )
        refreshed = await client.post(
            f"{sandbox.url}/restapi/oauth/token",
            auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
        )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != first.json()["access_token"]
