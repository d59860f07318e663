"""Rate limits: sliding windows per group, the headers on every response, 429 CMN-301 with
Retry-After, and the penalty that restarts whenever a request arrives inside it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from sandbox.limits import RateLimiter, build_limiter
from sandbox.server import SandboxServer
from tests.fixtures.sandbox import sandbox_login


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_allows_the_limit_then_refuses() -> None:
    clock = FakeTime()
    limiter = RateLimiter({"light": 3}, window=60, now=clock)
    remaining = [limiter.check("Light").remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    refused = limiter.check("light")
    assert not refused.allowed
    assert refused.retry_after == 60
    assert refused.headers()["Retry-After"] == "60"
    assert refused.headers()["X-Rate-Limit-Group"] == "light"


def test_window_slides() -> None:
    clock = FakeTime()
    limiter = RateLimiter({"medium": 2}, window=60, penalty=10, now=clock)
    limiter.check("medium")
    clock.now += 30
    limiter.check("medium")
    clock.now += 31  # the first request has left the window
    assert limiter.check("medium").allowed
    assert not limiter.check("medium").allowed


def test_penalty_restarts_on_any_request_inside_it() -> None:
    clock = FakeTime()
    limiter = RateLimiter({"heavy": 1}, window=60, penalty=60, now=clock)
    assert limiter.check("heavy").allowed
    assert not limiter.check("heavy").allowed  # penalty until t+60
    clock.now += 50
    inside = limiter.check("heavy")  # restarts it: now until t+110
    assert not inside.allowed
    assert inside.retry_after == 60
    clock.now += 20  # t+70: the first penalty would be over, the restarted one is not
    assert not limiter.check("heavy").allowed  # and restarts again, until t+130
    clock.now += 61
    assert limiter.check("heavy").allowed


def test_groups_are_independent_and_unknown_groups_unlimited() -> None:
    limiter = RateLimiter({"auth": 1}, now=FakeTime())
    assert limiter.check("auth").allowed
    assert not limiter.check("auth").allowed
    assert limiter.check("light").allowed


def test_off_reports_generous_headers() -> None:
    decision = build_limiter("off").check("light")
    assert decision.allowed
    assert int(decision.headers()["X-Rate-Limit-Limit"]) >= 1000


def test_default_limits() -> None:
    limiter = build_limiter("default")
    limits = {g: limiter.check(g).limit for g in ("light", "medium", "heavy", "auth")}
    assert limits == {"light": 50, "medium": 40, "heavy": 10, "auth": 5}
    assert limiter.check("light").window == 60


def test_limits_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_bytes(orjson.dumps({"Light": 7, "window": 5}))
    decision = build_limiter(str(path)).check("light")
    assert (decision.limit, decision.window) == (7, 5)


def test_a_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_bytes(b"[1]")
    with pytest.raises(ValueError, match="JSON object"):
        build_limiter(str(path))


async def test_http_429_with_cmn_301_and_a_restarting_penalty() -> None:
    limits = {"light": 2, "auth": 5, "window": 0.8, "penalty": 0.8}
    async with SandboxServer(rate_limits=limits) as sb, httpx.AsyncClient() as client:
        client.headers["Authorization"] = f"Bearer {await sandbox_login(client, sb)}"
        url = f"{sb.url}/restapi/v1.0/account/~"
        first, second = [await client.get(url) for _ in range(2)]
        assert first.headers["X-Rate-Limit-Remaining"] == "1"
        assert second.headers["X-Rate-Limit-Remaining"] == "0"
        assert first.headers["X-Rate-Limit-Limit"] == "2"
        refused = await client.get(url)
        assert refused.status_code == 429
        assert refused.json()["errorCode"] == "CMN-301"
        assert refused.json()["errors"][0]["errorCode"] == "CMN-301"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["X-Rate-Limit-Group"] == "light"
        await asyncio.sleep(0.4)
        assert (await client.get(url)).status_code == 429  # inside: restarts the penalty
        await asyncio.sleep(0.5)  # past the first penalty's end, inside the restarted one
        assert (await client.get(url)).status_code == 429
        await asyncio.sleep(0.9)  # quiet for a whole penalty
        assert (await client.get(url)).status_code == 200
        counters = sb.world.counters()
        assert counters["throttled"]["light"] == 3
        assert counters["requests"]["light"] == 6
        throttled = [c for c in sb.world.calls if c["throttled"]]
        assert [c["status"] for c in throttled] == [429, 429, 429]
        assert throttled[0]["group"] == "light"
        assert throttled[0]["path"] == "/restapi/v1.0/account/~"


async def test_auth_group_is_limited_too() -> None:
    async with SandboxServer(rate_limits={"auth": 1}) as sb, httpx.AsyncClient() as client:
        await sandbox_login(client, sb)
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await sandbox_login(client, sb)
        assert raised.value.response.status_code == 429


async def test_scim_429_has_the_scim_shape() -> None:
    async with SandboxServer(rate_limits={"light": 0}) as sb, httpx.AsyncClient() as client:
        client.headers["Authorization"] = f"Bearer {await sandbox_login(client, sb)}"
        response = await client.get(f"{sb.url}/scim/v2/Users")
        assert response.status_code == 429
        assert response.json()["status"] == "429"
        assert "Retry-After" in response.headers
