"""The console in a real headless Chromium, over a real pipeline: the sandbox, the receiver, a
worker, the store, Redis and `ringsync api` on uvicorn."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from events.queue import RESYNC
from scripts.connections import open_deps
from tests.api.mirror import API_TOKEN, api_settings, running_api
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.resync import resync
from workers.actions import gate
from workers.actions.action import Action
from workers.actions.decide import ActionState, Kind
from workers.actions.store import ActionStore
from workers.resync.store import PENDING, Plan, find_plan, list_plans, pending_plans
from workers.subscription.renewal import ensure_subscription


async def log_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/")
    await expect(page).to_have_url(f"{url}/login")
    await page.fill("input[name=token]", API_TOKEN)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{url}/")


async def mirrored(p: Pipeline, users: int) -> None:
    """Our own subscription (stored, as the worker keeps it) and a baseline resync."""
    async with open_deps(p.settings) as d:
        await ensure_subscription(d)
    await resync(p)
    assert len(await p.mirror()) == users


async def test_login_the_sandbox_account_cookie_flags_and_logout(
    make_pipeline: MakePipeline, sqlite_url: str, browser: Browser
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=8)
    await mirrored(p, 8)
    world = p.sandbox.world
    changed = world.ordered()[0].id
    world.disable(changed)  # a notification → the worker's read → a transition in the mirror

    async def suspended() -> bool:
        return bool((await p.mirror())[changed].state.value == "suspended")

    await eventually(suspended, what="the suspension mirrored")
    account = p.sandbox.account_id
    async with running_api(api_settings(p.settings)) as url:
        context = await browser.new_context()
        page = await context.new_page()
        await page.clock.install()  # the page's own timers, moved on by the test below
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{url}/")
        await expect(page).to_have_url(f"{url}/login")
        await page.fill("input[name=token]", API_TOKEN[::-1])
        await page.click("button[type=submit]")
        await expect(page.locator(".error")).to_have_text("Wrong token.")
        assert await context.cookies() == []

        await log_in(page, url)
        block = page.locator(f"section.account[data-account-id='{account}']")
        await expect(block.locator(".account-id")).to_have_text(account)
        await expect(block.locator(".subscription-status")).to_have_text("Active")
        await expect(block.locator(".user-count")).to_have_text("8")
        await expect(block.locator(".remaining")).to_have_text(re.compile(r"\d+ (min|h|d)"))
        await expect(block.locator("table.transitions")).to_contain_text("active → suspended")
        await expect(block.locator(".key-notifications")).to_have_text(
            re.compile(r"notifications [1-9]")
        )
        (cookie,) = await context.cookies()
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # plain HTTP; Secure behind HTTPS (test_console.py)
        assert API_TOKEN not in cookie["value"]
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

        # It refreshes itself within a minute, in place (no reload).
        world.disable(world.ordered()[1].id)
        await eventually(lambda: _suspended_count(p, 2), what="a second suspension mirrored")
        await page.evaluate("window.stillHere = true")
        await page.clock.run_for("00:31")
        await expect(block.locator(".users-suspended")).to_have_text("suspended 2")
        assert await page.evaluate("window.stillHere") is True

        await block.locator(".user-count").click()
        await page.click(f"a[href='/accounts/{account}/users/{changed}']")
        await expect(page.locator("table.history")).to_contain_text("active → suspended")
        await expect(page.locator("table.events")).to_contain_text("user.suspended")

        # The stylesheet, the script and the inline charts all pass the Content-Security-Policy.
        assert not [e for e in errors if "Content Security Policy" in e]
        assert await page.evaluate("getComputedStyle(document.body).margin") == "0px"

        await page.click("text=Log out")
        await expect(page).to_have_url(f"{url}/login")
        assert await context.cookies() == []
        await page.goto(f"{url}/")
        await expect(page).to_have_url(f"{url}/login")
        await context.close()


async def _suspended_count(p: Pipeline, count: int) -> bool:
    mirror = await p.mirror()
    suspended = [ext for ext, row in mirror.items() if row.state.value == "suspended"]
    return len(suspended) == count


async def held_plan(p: Pipeline) -> tuple[Plan, list[str]]:
    """A resync that would deprovision 3 of 10 users, held by the safeguard."""
    world = p.sandbox.world
    gone = [user.id for user in world.ordered()[:3]]
    world.set_faults(drop=1.0)  # deleted without a notification: only a resync notices
    for ext in gone:
        world.delete(ext)
    await world.drain()
    world.set_faults(drop=0.0)
    async with open_deps(p.settings) as d:
        assert await d.queue.enqueue(RESYNC, "test")

    async def planned() -> list[Plan]:
        return await pending_plans(p.store, p.sandbox.account_id)

    return (await eventually(planned, what="the held plan"))[0], gone


async def test_a_held_plan_is_approved_from_the_page_and_never_without_csrf(
    make_pipeline: MakePipeline, sqlite_url: str, browser: Browser
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=10)
    await mirrored(p, 10)
    plan, gone = await held_plan(p)
    async with running_api(api_settings(p.settings)) as url:
        context = await browser.new_context()
        page = await context.new_page()
        await log_in(page, url)
        form = page.locator(f"form[data-plan-id='{plan.id}']")
        await expect(form).to_contain_text("3 deprovisionings")

        # The same form without its CSRF token: refused, nothing queued.
        await form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
        await form.locator("input[name=by]").fill("Mallory")
        async with page.expect_response(f"{url}/plans/{plan.id}/approve") as answer:
            await form.locator("button").click()
        assert (await answer.value).status == 403
        await expect(page.locator(".error")).to_contain_text("CSRF")
        found = await find_plan(p.store, plan.id)
        assert found is not None
        assert found.status == PENDING

        await page.goto(f"{url}/")
        await form.locator("input[name=by]").fill("Grace Hopper")
        await form.locator("button").click()
        await expect(page.locator(".notice")).to_contain_text("Approval queued")

        async def settled() -> list[Plan] | None:
            plans = await list_plans(p.store, p.sandbox.account_id)
            return plans if [x.status for x in plans] == ["approved"] else None

        await eventually(settled, what="the plan approved by the worker")
        await page.reload()
        await expect(page.locator(f"form[data-plan-id='{plan.id}']")).to_have_count(0)
        await context.close()
    mirror = await p.mirror()
    deprovisioned = [e for e, row in mirror.items() if row.state.value == "deprovisioned"]
    assert sorted(deprovisioned) == sorted(gone)


async def test_a_proposed_action_approved_in_the_page_suspends_the_user_in_the_sandbox(
    make_pipeline: MakePipeline, sqlite_url: str, browser: Browser
) -> None:
    p = await make_pipeline(database_url=sqlite_url, users=4)
    await mirrored(p, 4)
    world = p.sandbox.world
    ext = world.create_user(first_name="Leaving", email="leaving@example.com")

    async def held() -> bool:
        await world.drain()
        return await p.store.get_user(p.sandbox.account_id, ext) is not None

    await eventually(held, what="the new user mirrored")
    async with open_deps(p.settings) as d:
        action = await gate.propose(d, Kind.SUSPEND, ext, reason="left the company", by="Ada")
    async with running_api(api_settings(p.settings)) as url:
        context = await browser.new_context()
        page = await context.new_page()
        await log_in(page, url)
        form = page.locator(f"form[data-action-id='{action.id}']")
        await expect(form).to_contain_text("suspend")
        await expect(form).to_contain_text("leaving@example.com")
        await expect(form).to_contain_text("proposed by Ada")

        # The proposer may not approve their own proposal.
        await form.locator("input[name=by]").fill("Ada")
        await form.locator("button", has_text="Approve").click()
        await expect(page.locator(".error")).to_contain_text("another person")
        assert world.user(ext)["status"] == "Enabled"

        await page.goto(f"{url}/")
        await form.locator("input[name=by]").fill("Grace Hopper")
        await form.locator("button", has_text="Approve").click()
        await expect(page.locator(".notice")).to_contain_text("Action approved")

        async def suspended() -> bool:
            row = await p.store.get_user(p.sandbox.account_id, ext)
            return (
                world.user(ext)["status"] == "Disabled"
                and row is not None
                and (row.state.value == "suspended")
            )

        await eventually(suspended, within=30, what="the user suspended in the sandbox")
        assert world.user(ext)["status_reason"] == "Involuntarily"

        async def done() -> Action | None:
            found = await ActionStore(p.store).get(action.id)
            return found if found is not None and found.state is ActionState.DONE else None

        finished = await eventually(done, what="the action recorded done")
        assert finished.approved_by == "Grace Hopper"
        await page.goto(f"{url}/accounts/{p.sandbox.account_id}/users/{ext}")
        await expect(page.locator("table.actions")).to_contain_text("done")
        await expect(page.locator("table.history")).to_contain_text("active → suspended")
        await context.close()
