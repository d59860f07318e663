"""An actions rig: a pipeline (sandbox, receiver, real arq worker) with a signed offboarding
sink, and `ringsync` run as a real process against it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.commands import Ran, ringsync
from tests.fixtures.pipeline import MakePipeline, Pipeline, eventually
from tests.fixtures.sink import Received, Sink, new_secret, signature_valid
from workers.actions.action import Action
from workers.actions.decide import ActionState
from workers.actions.store import ActionStore


@dataclass
class Rig:
    p: Pipeline
    sink: Sink
    secret: str
    extra_env: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **self.p.env(),
            "RINGSYNC_OFFBOARDING_URLS": f"{self.sink.url}/hook",
            "RINGSYNC_OFFBOARDING_SECRET": self.secret,
            **self.extra_env,
            **extra,
        }

    async def cli(self, *args: str, **extra: str) -> Ran:
        return await ringsync(self.env(**extra), *args)

    async def propose(self, kind: str, extension_id: str, by: str = "ada") -> str:
        ran = await self.cli(
            "actions", "propose", kind, "--extension", extension_id, "--reason", "left", "--by", by
        )
        assert ran.code == 0, ran.err
        return ran.out.strip()

    async def approve(self, action_id: str, by: str = "bob") -> Ran:
        return await self.cli("actions", "approve", action_id, "--by", by)

    async def action(self, action_id: str) -> Action:
        found = await ActionStore(self.p.store).get(action_id)
        assert found is not None
        return found

    async def settled(self, action_id: str, within: float = 30.0) -> Action:
        """The action once it is done or failed."""

        async def check() -> Action | None:
            found = await self.action(action_id)
            return found if found.state in (ActionState.DONE, ActionState.FAILED) else None

        found: Action = await eventually(check, within=within, what=f"action {action_id}")
        return found

    async def user(self, **fields: Any) -> str:
        """A sandbox user the mirror holds."""
        extension_id = self.p.sandbox.world.create_user(**fields)

        async def mirrored() -> bool:
            await self.p.sandbox.world.drain()
            return await self.p.store.get_user(self.p.sandbox.account_id, extension_id) is not None

        await eventually(mirrored, what=f"user {extension_id} mirrored")
        return extension_id

    def writes(self, extension_id: str | None = None) -> list[dict[str, Any]]:
        """The PUTs and bulk DELETEs the sandbox answered (for one extension, if named)."""
        found = []
        for call in self.p.sandbox.world.calls:
            if call["method"] == "PUT" and "/extension/" in call["path"]:
                if extension_id is None or call["path"].endswith(f"/{extension_id}"):
                    found.append(call)
            elif call["method"] == "DELETE" and "/v2/" in call["path"]:
                found.append(call)
        return found

    def events(self) -> list[Received]:
        """Every delivered event, each checked to be signed."""
        delivered = self.sink.delivered("/hook")
        for received in delivered:
            assert signature_valid(self.secret, received.headers, received.body)
        return delivered

    def types_for(self, extension_id: str) -> list[str]:
        return [r.type for r in self.events() if r.json["data"]["extension_id"] == extension_id]


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def make_rig(make_pipeline: MakePipeline, sink: Sink) -> MakeRig:
    async def make(*, workers: int = 1, env: dict[str, str] | None = None, **settings: Any) -> Rig:
        secret = new_secret()
        p = await make_pipeline(
            workers=workers,
            offboarding_urls=[f"{sink.url}/hook"],
            offboarding_secret=secret,
            **settings,
        )
        return Rig(p, sink, secret, env or {})

    return make


def sequences_in_order(events: list[Received]) -> bool:
    """Each user's events arrive in strictly increasing sequence."""
    last: dict[str, int] = {}
    for received in events:
        data = received.json["data"]
        key = data["extension_id"]
        if data["sequence"] <= last.get(key, 0):
            return False
        last[key] = data["sequence"]
    return True
