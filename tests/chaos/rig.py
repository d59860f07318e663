"""One deployment of ringsync as real processes: sandbox, receiver and workers, each its own
`python -m ...`, wired through one Redis and one database, plus an offboarding sink.

The test drives users through the sandbox's control API, hurts one part, and then asks two
questions: does the mirror equal the sandbox's truth, and did every lifecycle event reach
downstream exactly once?
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select

from events.queue import RESYNC, Queue
from events.settings import Settings
from sandbox.tokens import Credentials
from tests.chaos.control import SandboxControl
from tests.chaos.processes import Processes, wait_http
from tests.chaos.sink import OffboardingSink
from tests.fixtures.pipeline import eventually as poll
from tests.fixtures.pipeline import expected_state
from tests.fixtures.services import free_port
from workers.store import tables
from workers.store.identity import Store

TOKEN = "chaos-verification-token"
COMMAND_SECONDS = 60.0

# arq's log line for a deliver job: "<job id>:deliver(...)" where the job id holds the event id.
_DELIVER_JOB = re.compile(r":deliver:([0-9a-f-]{36})[^ ]*:deliver")
# "→ <job id>:<function>(args)" starts a job; "←", "↻" or "!" then "<job id>:<function> " ends it.
_JOB_LINE = re.compile(r"([→←↻!]) ([^ (]+)")


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float, what: str, every: float = 0.1
) -> Any:
    """Poll at a gentler pace than in-process tests: each check here crosses processes."""
    return await poll(check, within=within, what=what, every=every)


@dataclass
class Rig:
    processes: Processes
    redis_url: str
    namespace: str
    database_url: str  # what ringsync processes use (perhaps through a proxy)
    store: Store  # the test's own view of the same database (never through the proxy)
    env_overrides: dict[str, str] = field(default_factory=dict)
    sink: OffboardingSink | None = None
    credentials: Credentials = field(default_factory=Credentials.make)
    sandbox_port: int = field(default_factory=free_port)
    receiver_port: int = field(default_factory=free_port)
    control: SandboxControl = field(init=False)
    account_id: str = ""
    subscription_id: str = ""
    workers: int = 0

    def __post_init__(self) -> None:
        self.control = SandboxControl(f"http://127.0.0.1:{self.sandbox_port}")

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}/webhook"

    def settings(self) -> Settings:
        """The same configuration as the processes', for the test's own clients."""
        return Settings(_env_file=None, **self.env())  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        values = {
            "REDIS_URL": self.redis_url,
            "RINGSYNC_REDIS_NAMESPACE": self.namespace,
            "DATABASE_URL": self.database_url,
            "RC_SERVER_URL": self.control.base_url,
            "RC_APP_CLIENT_ID": self.credentials.client_id,
            "RC_APP_CLIENT_SECRET": self.credentials.client_secret,
            "RC_USER_JWT": self.credentials.jwt,
            "RINGSYNC_VERIFICATION_TOKEN": TOKEN,
            "RINGSYNC_WEBHOOK_URL": self.webhook_url,
            "RINGSYNC_METRICS_PORT": "0",
            "RINGSYNC_RESYNC_AT": "off",
            "RINGSYNC_LOG_FORMAT": "json",
            # A few deletions among a small test account exceed the 10% resync safeguard, which
            # would hold them for a human; the safeguard has tests of its own.
            "RINGSYNC_MAX_DEPROVISION_RATIO": "1",
        }
        if self.sink is not None:
            values["RINGSYNC_OFFBOARDING_URLS"] = self.sink.url
            values["RINGSYNC_OFFBOARDING_SECRET"] = self.sink.secret
        values.update(self.env_overrides)
        return values

    def process_env(self) -> dict[str, str]:
        # PATH and friends, but none of the caller's RC_*/RINGSYNC_* settings.
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("RC_", "RINGSYNC_"))}
        return {**keep, **self.env()}

    # -- starting parts -------------------------------------------------------------------
    async def start_sandbox(self, *, users: int, rate_limits: str = "off") -> None:
        self.processes.spawn(
            "sandbox",
            ["sandbox", "--port", str(self.sandbox_port), "--users", str(users),
             "--rate-limits", rate_limits],
            self.process_env(),
        )  # fmt: skip
        await wait_http(f"{self.control.base_url}/sandbox/info", process="the sandbox")
        self.account_id = str((await self.control.info())["account_id"])

    async def start_receiver(self) -> None:
        self.processes.spawn(
            "receiver",
            ["scripts.cli", "serve", "--port", str(self.receiver_port)],
            self.process_env(),
        )
        await wait_http(f"http://127.0.0.1:{self.receiver_port}/healthz", process="the receiver")

    def start_worker(self) -> str:
        self.workers += 1
        name = f"worker-{self.workers}"
        self.processes.spawn(name, ["scripts.cli", "worker"], self.process_env())
        return name

    async def subscribe(self) -> dict[str, Any]:
        """`ringsync subscribe --json`: create, renew or repair our subscription (the sandbox
        checks the receiver with the handshake); returns what it printed."""
        code, out, err = await self.run("subscribe", "--json")
        assert code == 0, err
        shown: dict[str, Any] = json.loads(out)
        self.subscription_id = str(shown["id"])
        return shown

    async def run(self, *args: str) -> tuple[int, str, str]:
        """`ringsync <args>` as a process; returns (exit code, stdout, stderr)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "scripts.cli", *args,
            env=self.process_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return process.returncode or 0, out.decode(), err.decode()

    async def resync(self) -> None:
        """Queue a full resync, as the worker's cron or a gap detector does."""
        settings = self.settings()
        redis = aioredis.Redis.from_url(self.redis_url)
        queue = Queue(redis, settings.queue_name)
        try:
            await queue.enqueue(RESYNC, "chaos", job_id=settings.key("resync", uuid.uuid4().hex))
        finally:
            await queue.close()
            await redis.aclose()

    # -- judging ---------------------------------------------------------------------------
    async def differences(self) -> list[str]:
        """How the mirror differs from the sandbox's truth (empty when they agree)."""
        truth = {u["extension_id"]: u for u in await self.control.users() if u["type"] == "User"}
        mirror = {
            u.extension_id: u.row for u in await self.store.list_users(account_id=self.account_id)
        }
        problems = []
        for ext_id, user in truth.items():
            want = expected_state(user["status"])
            row = mirror.get(ext_id)
            if row is None:
                if want != "deprovisioned":
                    problems.append(f"{ext_id} missing")
                continue
            if want == "deprovisioned":
                got: tuple[Any, ...] = (row.state.value,)
                expected: tuple[Any, ...] = (want,)
            else:
                got = (row.state.value, row.first_name, row.last_name, row.email, row.department)
                expected = (
                    want, user["first_name"], user["last_name"], user["email"], user["department"]
                )  # fmt: skip
            if got != expected:
                problems.append(f"{ext_id}: mirror {got} != truth {expected}")
        for ext_id, row in mirror.items():
            if ext_id not in truth and row.state.value != "deprovisioned":
                problems.append(f"{ext_id} deleted upstream but {row.state.value} here")
        return problems

    async def converged(self, *, within: float = 30.0) -> None:
        """Wait until the mirror equals the truth; then check `ringsync users --json` agrees."""

        async def agree() -> bool:
            await self.control.drain()
            return not await self.differences()

        try:
            await eventually(agree, within=within, what="the mirror to converge", every=0.25)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {(await self.differences())[:20]}\n{self.processes.tail()}"
            ) from None
        # Work still in flight (a late listing page, say) may change rows the truth no longer
        # names: compare the command with the store until both agree with each other and the truth.
        views: list[Any] = []

        async def command_agrees() -> bool:
            code, out, err = await self.run("users", "--json")
            assert code == 0, err
            rows = map(json.loads, out.splitlines())
            listed = {row["extension_id"]: row["state"] for row in rows}
            stored = await self.store.list_users(account_id=self.account_id)
            shown = {u.extension_id: u.row.state.value for u in stored}
            views[:] = [listed, shown]
            return listed == shown and not await self.differences()

        try:
            await eventually(command_agrees, within=within, what="`ringsync users --json`")
        except AssertionError:
            raise AssertionError(
                f"`ringsync users --json` {views[0]} != store {views[1]}"
            ) from None

    async def stored_uuids(self) -> set[str]:
        async with self.store.engine.connect() as conn:
            result = await conn.execute(select(tables.events.c.uuid))
            return {row[0] for row in result}

    async def acknowledged(self) -> set[str]:
        """uuids of notifications the receiver answered 200 to, per the sandbox's deliverer."""
        return {a["uuid"] for a in await self.control.deliveries() if 200 <= a["status"] < 300}

    async def no_acknowledged_loss(self, *, within: float = 20.0) -> int:
        """Every notification answered 200 ends up in the `events` table. Returns how many."""
        acknowledged = await self.acknowledged()

        async def stored() -> set[str]:
            return acknowledged - await self.stored_uuids()

        async def none_missing() -> bool:
            return not await stored()

        try:
            await eventually(none_missing, within=within, what="acknowledged events to be stored")
        except AssertionError:
            raise AssertionError(
                f"acknowledged but never stored: {sorted(await stored())}"
            ) from None
        return len(acknowledged)

    def worker_lines(self, containing: str) -> list[str]:
        """Log lines of every worker that contain `containing`."""
        return [
            line
            for log in sorted(self.processes.directory.glob("worker-*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if containing in line
        ]

    def jobs_in_flight(self, process: str) -> set[str]:
        """Jobs `process` has started and not finished, from arq's log lines."""
        started: set[str] = set()
        ended: set[str] = set()
        for line in self.processes.log(process).read_text(errors="replace").splitlines():
            found = _JOB_LINE.search(line)
            if found is not None:
                (started if found.group(1) == "→" else ended).add(found.group(2))
        return started - ended

    def disturbed_deliveries(self) -> set[str]:
        """Event ids whose deliver job was cut (its worker killed) or failed part-way."""
        disturbed: set[str] = set()
        for log in self.processes.directory.glob("worker-*.log"):
            started: set[str] = set()
            ended: set[str] = set()
            for line in log.read_text(errors="replace").splitlines():
                found = _DELIVER_JOB.search(line)
                if found is None:
                    continue
                (started if "→" in line else ended).add(found.group(1))
                if "↻" in line or " ! " in line:
                    disturbed.add(found.group(1))
            disturbed |= started - ended
        return disturbed

    async def delivered_exactly_once(self, *, within: float = 30.0) -> int:
        """Every outbox row reached the sink, each webhook-id once. Returns how many rows.

        The one allowed exception is at-least-once's own: a sender that died, or lost its
        database, between the POST and recording it sends the same webhook-id again (consumers
        deduplicate on it). Only deliveries whose job was cut or failed may repeat."""
        if self.sink is None:
            return 0
        sink = self.sink

        async def all_arrived() -> bool:
            rows = await self.store.list_outbox(self.account_id)
            return {row.event_id for row in rows} <= set(sink.receipts)

        await eventually(all_arrived, within=within, what="every outbox row to reach downstream")
        rows = await self.store.list_outbox(self.account_id)
        unknown = set(sink.receipts) - {row.event_id for row in rows}
        assert not unknown, f"webhook-ids that match no outbox row: {unknown}"
        disturbed = self.disturbed_deliveries()
        repeated = {k: n for k, n in sink.duplicates().items() if k not in disturbed}
        assert not repeated, f"delivered more than once: {repeated}"
        assert sink.forged == 0, f"{sink.forged} deliveries with a bad signature"
        return len(rows)

    async def close(self) -> None:
        await self.control.aclose()  # first: the sandbox waits for open connections to close
        await self.processes.close()


@contextlib.asynccontextmanager
async def offboarding_sink(enabled: bool) -> AsyncIterator[OffboardingSink | None]:
    if not enabled:
        yield None
        return
    async with OffboardingSink().serving() as sink:
        yield sink
