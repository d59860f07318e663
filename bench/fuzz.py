"""The receiver fuzz property of tests/events/test_fuzz_receiver.py, at scale: 100,000+ cases.

    python -m bench.fuzz [--cases 100000] [--raw 10000] [--json FILE]

Starts `ringsync serve` as its own process (Redis in REDIS_URL, a namespace of its own), runs
the HTTP-level property for --cases examples and the raw-socket one (header values and
Content-Length no client would send) for --raw examples, and reports how many ran, how long it
took and which statuses came back. Any 5xx, or any job queued for an invalid request, stops the
run with hypothesis's minimal failing example.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import redis

from bench.stack import free_port
from events.settings import Settings
from tests.events.test_fuzz_receiver import LIMIT, TOKEN, Probe, run_property, run_raw_property

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHUNK = 2_500


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("ringsync serve exited")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("ringsync serve did not start")


def _forget(namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"{namespace}*", f"arq:*:{namespace}*"):
        keys = list(client.scan_iter(match=pattern, count=5000))
        for start in range(0, len(keys), 5000):
            client.delete(*keys[start : start + 5000])
    client.close()


def _chunks(total: int) -> list[int]:
    """Independent hypothesis runs of CHUNK cases: one run's bookkeeping grows with its length
    (measured: ~300 cases/s in runs of 2,500, under 30/s deep into a single 100,000-case run)."""
    sizes = [CHUNK] * (total // CHUNK)
    return [*sizes, total % CHUNK] if total % CHUNK else sizes


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--raw", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # A plain SIGTERM would skip the clean-up below (server process, Redis keys).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    namespace = f"bench-fuzz-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,
        redis_url=REDIS_URL,
        redis_namespace=namespace,
        verification_token=TOKEN,
        max_body_bytes=LIMIT,
    )
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "RINGSYNC_VERIFICATION_TOKEN": TOKEN,
        "RINGSYNC_MAX_BODY_BYTES": str(LIMIT),
        "RINGSYNC_LOG_LEVEL": "ERROR",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "serve", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    probe = Probe(url, REDIS_URL, settings)
    try:
        _wait_ready(f"{url}/healthz", server)
        started = time.perf_counter()
        for size in _chunks(args.cases):
            run_property(probe, size)
            print(f"  {probe.cases:,} cases, {time.perf_counter() - started:.0f} s", flush=True)
        http_cases, http_seconds = probe.cases, time.perf_counter() - started
        raw_started = time.perf_counter()
        for size in _chunks(args.raw):
            run_raw_property(probe, port, size)
        raw_seconds = time.perf_counter() - raw_started
    finally:
        probe.close()
        server.terminate()
        server.wait(timeout=10)
        _forget(namespace)
    raw_cases = probe.cases - http_cases
    print(f"HTTP cases: {http_cases:,} in {http_seconds:.1f} s ({http_cases / http_seconds:.0f}/s)")
    print(f"raw cases:  {raw_cases:,} in {raw_seconds:.1f} s")
    print(f"statuses:   {dict(sorted(probe.statuses.items()))}")
    print("no 5xx; nothing queued for an invalid or unauthenticated request")
    if args.json:
        doc = {
            "http_cases": http_cases,
            "http_seconds": http_seconds,
            "raw_cases": raw_cases,
            "raw_seconds": raw_seconds,
            "statuses": {str(k): v for k, v in probe.statuses.items()},
        }
        args.json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
