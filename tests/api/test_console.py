"""The console over HTTP (its browser tests are in test_console_browser.py): the login page for
a stranger, sessions and their cookie, CSRF, escaping, and search and paging over many accounts,
on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import httpx
from redis.asyncio import Redis

from api.console.facts import PAGE_SIZE
from api.console.session import COOKIE
from tests.api.conftest import Served
from tests.api.mirror import API_TOKEN
from workers.accounts.store import AccountStore
from workers.decide import Observation
from workers.resync.store import PENDING, find_plan, record_plan
from workers.store.identity import Store

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def log_in(http: httpx.AsyncClient) -> str:
    """Log in; returns the session's CSRF token as the dashboard's forms carry it."""
    answer = await http.post("/login", data={"token": API_TOKEN})
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    page = await http.get("/")
    assert page.status_code == 200
    found = _CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def test_a_stranger_gets_the_login_page_and_a_wrong_token_nothing(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        first = await http.get("/")
        assert (first.status_code, first.headers["location"]) == (303, "/login")
        login = await http.get("/login")
        assert login.status_code == 200
        assert re.search(r'<input[^>]*type="password"[^>]*name="token"', login.text)
        for path in ("/accounts/1", f"/accounts/{served.account_id}/users/1000"):
            assert (await http.get(path)).headers["location"] == "/login"
        wrong = await http.post("/login", data={"token": API_TOKEN[::-1]})
        assert wrong.status_code == 401
        assert "Wrong token" in wrong.text
        assert API_TOKEN[::-1] not in wrong.text  # what was typed is never echoed
        assert "set-cookie" not in wrong.headers
        forged = {"Cookie": f"{COOKIE}=made-up.0000"}
        assert (await http.get("/", headers=forged)).status_code == 303


async def test_the_session_cookie_and_logout(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        answer = await http.post("/login", data={"token": API_TOKEN})
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags
        assert "secure" not in flags  # plain HTTP here
        assert API_TOKEN not in cookie
        csrf = _CSRF.search((await http.get("/")).text)
        assert csrf is not None
        stolen = http.cookies[COOKIE]
        out = await http.post("/logout", data={"csrf_token": csrf.group(1)})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        # Ended on the server: the old cookie opens nothing any more.
        again = await http.get("/", headers={"Cookie": f"{COOKIE}={stolen}"})
        assert again.headers["location"] == "/login"
    async with httpx.AsyncClient(base_url=served.url) as http:
        behind_https = await http.post(
            "/login", data={"token": API_TOKEN}, headers={"X-Forwarded-Proto": "https"}
        )
        flags = {p.strip().lower() for p in behind_https.headers["set-cookie"].split(";")[1:]}
        assert "secure" in flags


async def test_state_changes_need_the_sessions_csrf_token(
    served: Served, store: Store, redis: Redis
) -> None:
    plan_id = "plan-console"
    await record_plan(store, plan_id, served.account_id, ["1000", "1007"], 0.5)
    await store.add_dead_letter(job="reconcile", arguments={}, error="boom", attempts=3)
    async with httpx.AsyncClient(base_url=served.url) as http:
        csrf = await log_in(http)
        # The default account's letter, under its id.
        shown = f'dead-account">account {served.account_id}: 1<'
        assert shown in (await http.get("/")).text
        approve = f"/plans/{plan_id}/approve"
        for fields in ({"by": "Ada"}, {"by": "Ada", "csrf_token": csrf[::-1]}):
            refused = await http.post(approve, data=fields)
            assert refused.status_code == 403
            assert "CSRF" in refused.text
            assert (await http.post("/dead-letters/replay", data=fields)).status_code == 403
            assert (await http.post("/logout", data=fields)).status_code == 403
            for verb in ("approve", "reject"):
                assert (await http.post(f"/actions/a1/{verb}", data=fields)).status_code == 403
        no_name = await http.post(approve, data={"csrf_token": csrf, "by": "  "})
        assert no_name.status_code == 422
        huge = await http.post(approve, data={"csrf_token": csrf, "by": "x" * 20_000})
        assert huge.status_code == 413
        found = await find_plan(store, plan_id)
        assert found is not None
        assert found.status == PENDING
        assert len(await store.list_dead_letters()) == 1
        assert await redis.zcard(served.settings.queue_name) == 0
        approved = await http.post(approve, data={"csrf_token": csrf, "by": "Ada Lovelace"})
        assert approved.status_code == 303
        assert approved.headers["location"].startswith("/?notice=approved")
        replayed = await http.post("/dead-letters/replay", data={"csrf_token": csrf})
        assert replayed.status_code == 303
    assert await store.list_dead_letters() == []
    # The approval is queued for a worker (the worker's own checks decide; see the browser test).
    assert await redis.zcard(served.settings.queue_name) == 2


async def test_nothing_from_the_mirror_is_rendered_unescaped(served: Served, store: Store) -> None:
    evil = "<script>alert(1)</script>"
    # Recent: the dashboard shows the transitions of the last 30 days.
    recently = datetime.now(UTC) - timedelta(minutes=5)
    seen = Observation(
        read_at=recently,
        status="Enabled",
        type="User",
        first_name=evil,
        last_name='"><img src=x onerror=alert(2)>',
        email="evil@example.com",
        extension_number="666",
    )
    await store.reconcile(served.account_id, "666", seen, evil)
    later = dataclasses.replace(seen, read_at=recently + timedelta(minutes=1), status="Disabled")
    await store.reconcile(served.account_id, "666", later, evil)
    async with httpx.AsyncClient(base_url=served.url) as http:
        await log_in(http)
        pages = [
            await http.get("/"),
            await http.get(f"/accounts/{served.account_id}", params={"q": evil}),
            await http.get(f"/accounts/{served.account_id}/users/666"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "suspended" in pages[2].text
    # The seed's own transitions (January) are older than the dashboard's 30 days.
    assert pages[0].text.count('<td class="move">') == 1


async def test_hundreds_of_accounts_are_searched_and_paged(served: Served, store: Store) -> None:
    book = AccountStore(store)
    for n in range(45):
        added = await book.add(str(900_000 + n), f"Branch {n:02d}", "https://rc.example", "sealed")
        assert added is not None
    await book.mark_failing("900040", "the token endpoint refused the JWT")
    async with httpx.AsyncClient(base_url=served.url) as http:
        await log_in(http)
        first = await http.get("/")
        last = await http.get("/", params={"page": "999"})
        found = await http.get("/", params={"q": "branch 07"})
        by_id = await http.get("/", params={"q": "900044"})
        users = await http.get(f"/accounts/{served.account_id}", params={"q": "smith"})
    blocks = re.compile(r'<section class="account[^"]*" id="account-([^"]+)"')
    # 46 accounts: the default one (the seeded mirror's) first, then by numeric id.
    every = [served.account_id, *(str(900_000 + n) for n in range(45))]
    pages = -(-len(every) // PAGE_SIZE)
    assert blocks.findall(first.text) == every[:PAGE_SIZE]
    assert f"page 1 of {pages}" in first.text
    assert blocks.findall(last.text) == every[(pages - 1) * PAGE_SIZE :]
    assert f"page {pages} of {pages}" in last.text
    assert blocks.findall(found.text) == ["900007"]
    # What needs a look shows on every page, worst first: here an account on the last page.
    look = re.search(r'<section class="attention-list">.*?</section>', first.text, re.S)
    assert look is not None
    items = re.findall(r"<li>(.*?)</li>", look.group(0), re.S)
    assert "900040 Branch 40</a>: failing: the token endpoint refused the JWT" in items[0]
    assert "no subscription" in items[1]
    assert blocks.findall(by_id.text) == ["900044"]
    smiths = [p for p in served.people if "smith" in (p.last or "").lower()]
    assert f"{len(smiths)} users" in users.text
    assert smiths
