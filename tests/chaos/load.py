"""A steady stream of user changes through the sandbox's control API, while a fault happens.

Every lifecycle move appears (hire, rename, suspend, reactivate, unassign, delete); the mix is
seeded so a failing run can be replayed. `async with ChangeStream(...).running():` runs it in the
background and stops it cleanly at the end of the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.chaos.control import SandboxControl

# (action, weight): mostly profile edits, some state moves, a few hires and departures.
MIX = (
    ("rename", 40),
    ("disable", 10),
    ("enable", 12),
    ("freeze", 5),
    ("hire", 15),
    ("bulk", 6),
    ("unassign", 6),
    ("delete", 6),
)


@dataclass
class ChangeStream:
    control: SandboxControl
    ids: list[str]
    interval: float = 0.05
    seed: int = 1
    changes: int = 0
    _random: random.Random = field(init=False, repr=False)
    _step: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.ids = list(self.ids)

    async def step(self) -> None:
        """Make one change (a hire when nobody is left to change)."""
        self._step += 1
        actions, weights = zip(*MIX, strict=True)
        action = self._random.choices(actions, weights)[0] if self.ids else "hire"
        n = self._step
        if action == "hire":
            self.ids.append(await self.control.create_user(first_name=f"Hire{n}", last_name="New"))
        elif action == "bulk":
            some = self._random.sample(self.ids, min(5, len(self.ids)))
            await self.control.bulk_update(some, department=f"Team{n}")
        elif action == "rename":
            target = self._random.choice(self.ids)
            await self.control.update_user(target, last_name=f"Name{n}")
        elif action == "delete":
            target = self.ids.pop(self._random.randrange(len(self.ids)))
            await self.control.delete_user(target)
        else:
            await self.control.act(self._random.choice(self.ids), action)
        self.changes += 1

    async def burst(self, n: int) -> None:
        for _ in range(n):
            await self.step()

    async def _run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ChangeStream]:
        task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
