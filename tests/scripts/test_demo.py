"""`ringsync demo --no-interactive` from start to finish, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import redis

from tests.fixtures.services import free_port

STEPS = (
    "1. hire",
    "2. rename",
    "3. suspend",
    "4. reactivate",
    "5. delete",
    "6. bulk change",
    "8. two accounts: one in a 429 storm",
)


def run_demo(redis_url: str, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGSYNC_", "RC_"))}
    env.pop("DATABASE_URL", None)
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", "demo", "--no-interactive"],
        env=env, cwd=directory, capture_output=True, text=True, timeout=55,
    )  # fmt: skip


def test_the_demo_plays_the_story_and_cleans_up(redis_url: str, tmp_path: Path) -> None:
    result = run_demo(redis_url, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    for line in (*STEPS, "a lost notification, repaired by a resync", "baseline resync"):
        assert line in out
    assert out.count("converged in") == 8
    for event in ("user.created", "user.updated", "user.suspended", "user.reactivated"):
        assert event in out
    assert "user.deprovisioned" in out
    assert re.search(r"events delivered\s*│\s*17", out)
    assert re.search(r"change of user \d+ was mirrored in \d", out)
    assert "demo complete" in out
    assert "Traceback" not in result.stderr
    namespace = re.search(r"Redis namespace (ringsync-demo-\w+)", out)
    assert namespace is not None
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{namespace.group(1)}*")) == []
    finally:
        client.close()
    assert not any(tmp_path.iterdir())  # nothing left in the caller's directory


def test_the_demo_starts_its_own_redis_when_none_answers(tmp_path: Path) -> None:
    result = run_demo(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "demo complete" in result.stdout
