"""httpcore asks which event loop runs each request through sniffio. Without sniffio installed
every ask is a failed import (a search of sys.path, ~50 us, several times a request)."""

from __future__ import annotations

import sys

from httpcore._synchronization import current_async_library


async def test_the_event_loop_is_learned_without_a_failed_import() -> None:
    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules  # imported once, found there on every later ask
