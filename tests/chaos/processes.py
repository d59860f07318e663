"""Child processes of a chaos scenario: started with their logs in files, always ended after.

A scenario kills and restarts parts on purpose, so each process is kept by name; `close()`
ends every one still running (SIGTERM, then SIGKILL) whatever happened in the test.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Processes:
    """Named children of this test, each logging to `<directory>/<name>.log`."""

    directory: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        """Start `python -m <args...>` as `name` (which must not be running)."""
        if name in self.running and self.running[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        with self.log(name).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running[name] = process
        self.started.append(process)

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def alive(self, name: str) -> bool:
        process = self.running.get(name)
        return process is not None and process.poll() is None

    async def kill(self, name: str) -> None:
        """SIGKILL: no clean-up at all, as when a machine dies."""
        await self._end(self.running.pop(name), signal.SIGKILL)

    async def terminate(self, name: str) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        await self._end(self.running.pop(name), signal.SIGTERM)

    async def close(self) -> None:
        """Kill everything still running: whatever they hold is thrown away with the test."""
        live = [p for p in self.started if p.poll() is None]
        await asyncio.gather(*(self._end(p, signal.SIGKILL) for p in live))
        self.running.clear()

    def tail(self, lines: int = 30) -> str:
        """The end of every log, for a failing test's message."""
        out = []
        for path in sorted(self.directory.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    @staticmethod
    async def _end(process: subprocess.Popen[bytes], signum: int, grace: float = 10.0) -> None:
        """Signal `process` and wait for it; SIGKILL if it outlives `grace` seconds."""
        if process.poll() is None:
            process.send_signal(signum)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while process.poll() is None:
            if loop.time() > deadline:
                process.kill()
                deadline = loop.time() + grace
            await asyncio.sleep(0.02)


async def wait_http(url: str, *, within: float = 20.0, process: str = "") -> None:
    """Poll `url` until it answers (any status), or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if loop.time() > deadline:
                    raise TimeoutError(f"{process or url} did not start listening") from None
                await asyncio.sleep(0.05)
