"""The in-process delivery endpoint: `RINGSYNC_OFFBOARDING_HOOK=module:function`.

For teams who act in Python directly. The hook is an endpoint like a URL (endpoint name
`hook:module:function`) under the same order, retry and dead-letter rules; an exception or a
timeout is a failed attempt.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Final

from workers.delivery.signing import LifecycleEvent

PREFIX: Final = "hook:"
# A hook that takes longer than this is a failed attempt (and may be running still).
TIMEOUT: Final = 10.0

Hook = Callable[[LifecycleEvent], Awaitable[None]]


class HookError(Exception):
    """The hook setting names nothing callable."""


def endpoint_for(spec: str) -> str:
    return PREFIX + spec


def is_hook(endpoint: str) -> bool:
    return endpoint.startswith(PREFIX)


@functools.cache
def resolve(spec: str) -> Hook:
    """Import `module:function` once per process."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise HookError(f"hook {spec!r} is not of the form module:function")
    try:
        target = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise HookError(f"hook {spec!r} cannot be imported: {exc}") from exc
    if not inspect.iscoroutinefunction(target) and not inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects count too
    ):
        raise HookError(f"hook {spec!r} is not an async callable")
    hook: Hook = target
    return hook


async def call(endpoint: str, event: LifecycleEvent) -> None:
    """Run the hook named by `endpoint` for `event`; raises whatever it raised."""
    hook = resolve(endpoint.removeprefix(PREFIX))
    async with asyncio.timeout(TIMEOUT):
        await hook(event)
