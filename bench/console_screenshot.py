"""The README's picture of the console: the sandbox's account mirrored by a real pipeline, beside
a few stored accounts, photographed by the system's headless Chromium.

    python -m bench.console_screenshot [--out docs/console.png]

The sandbox account is mirrored (`ringsync resync`), subscribed through the real handshake, and
then changes in the sandbox (a suspension, a deprovisioning, renamed users) reach the mirror
through notifications; the other accounts are written straight into the store with three hours of
activity and, for one, a held resync plan; a suspension waits for approval. Needs
/usr/bin/chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import async_playwright
from pydantic import SecretStr

from bench.console import TOKEN, seed_accounts
from bench.stack import running_stack
from scripts.connections import open_deps
from tests.fixtures.receiver import serve_app
from workers.actions import gate
from workers.actions.decide import Kind
from workers.subscription.renewal import ensure_subscription

OTHERS = ["401234567", "401234590", "409000112"]


async def changes_arrive(stack: object, ids: list[str]) -> None:
    """Sandbox changes, waited for in the mirror (through notifications, the worker's reads)."""
    from bench.stack import Stack

    assert isinstance(stack, Stack)
    world = stack.sandbox.world
    world.disable(ids[0], reason="Involuntarily")
    world.delete(ids[1])
    for ext in ids[2:6]:
        world.update_user(ext, last_name="Renamed")
    await stack.wait_for("Renamed", 4, within=60)


async def shoot(out: Path) -> None:
    async with running_stack(database_kind="sqlite", users=24, workers=1) as stack:
        async with open_deps(stack.settings) as d:
            await ensure_subscription(d)
        ids = [user.id for user in stack.sandbox.world.ordered()]
        await changes_arrive(stack, ids)
        async with open_deps(stack.settings) as d:
            await gate.propose(d, Kind.SUSPEND, ids[7], reason="left on Friday", by="Ada (HR)")
        await seed_accounts(stack.store, OTHERS, 30, datetime.now(UTC))
        settings = stack.settings.model_copy(update={"api_token": SecretStr(TOKEN)})
        from api.app import create_app

        async with serve_app(create_app(settings)) as url, async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 1200})
            await page.goto(f"{url}/login")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/")
            await page.screenshot(path=str(out), full_page=False)
            await browser.close()
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/console.png"))
    asyncio.run(shoot(parser.parse_args().out))


if __name__ == "__main__":
    main()
