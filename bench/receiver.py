"""Receiver throughput: bare Starlette vs `ringsync serve` under the same load, in one run.

    python -m bench.receiver [--seconds 10] [--connections 64] [--json FILE]

Each server runs as its own process (uvicorn, uvloop + httptools); the load generator is wrk when
installed (each request a fresh uuid), else a Python keep-alive generator. Prints acknowledged
events/s, p50/p99 and the ratio to bare Starlette, then checks that Redis holds exactly as many
jobs as ringsync acknowledged, and measures a lone notification's latency on an idle receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
import redis

TOKEN = "bench-verification-token"
ACCOUNT = "400386146004"  # the account every notification names (the wrk script's too)
_WRK_SCRIPT = r"""
local counter = 0
local tid = math.random(1, 1e9)
request = function()
  counter = counter + 1
  local body = string.format(
    '{"uuid":"%d-%d","event":"/restapi/v1.0/account/400386146004/extension",' ..
    '"timestamp":"2026-11-23T10:00:00.000Z","subscriptionId":"sub-1","ownerId":"1",' ..
    '"body":{"extensions":[{"extensionId":"%d","eventType":"Update",' ..
    '"hints":["ExtensionInfo"]}]},"padding":"%s"}', tid, counter, counter % 997,
    string.rep("x", 320))
  return wrk.format("POST", "/webhook", {["Content-Type"]="application/json",
    ["Verification-Token"]="bench-verification-token"}, body)
end
"""

_BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def webhook(request):
    await request.body()
    return Response(b'{"status":"ok"}', media_type="application/json")

app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
"""


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    total: int


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(name: str, url: str, seconds: int, connections: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*timeout (\d+)", out)
    non_2xx = (int(bad.group(1)) if bad else 0) + (int(errors.group(1)) if errors else 0)
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Result(name, (total - non_2xx) / seconds, p50, p99, non_2xx, total)


async def _python_load(url: str, seconds: int, connections: int) -> tuple[int, int, list[float]]:
    ok = bad = 0
    latencies: list[float] = []
    end = time.monotonic() + seconds
    headers = {"Verification-Token": TOKEN, "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as http:

        async def one_connection() -> None:
            nonlocal ok, bad
            while time.monotonic() < end:
                body = _notification(str(uuid.uuid4()))
                started = time.perf_counter()
                reply = await http.post(url, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if reply.status_code == 200:
                    ok += 1
                else:
                    bad += 1

        await asyncio.gather(*(one_connection() for _ in range(connections)))
    return ok, bad, latencies


def run_python(name: str, url: str, seconds: int, connections: int) -> Result:
    ok, bad, lat = asyncio.run(_python_load(url, seconds, connections))
    q = statistics.quantiles(lat, n=100)
    return Result(name, ok / seconds, q[49], q[98], bad, ok + bad)


def _notification(uid: str) -> bytes:
    return orjson.dumps(
        {
            "uuid": uid,
            "event": f"/restapi/v1.0/account/{ACCOUNT}/extension",
            "timestamp": "2026-11-23T10:00:00.000Z",
            "subscriptionId": "sub-1",
            "body": {"extensions": [{"extensionId": "1001", "eventType": "Update"}]},
            "padding": "x" * 320,
        }
    )


def idle_latency(url: str, count: int = 500) -> tuple[float, float]:
    """p50/p99 of lone notifications, one at a time, on an otherwise idle receiver."""
    lat: list[float] = []
    headers = {"Verification-Token": TOKEN}
    with httpx.Client() as http:
        for _ in range(count):
            body = _notification(str(uuid.uuid4()))
            started = time.perf_counter()
            reply = http.post(url, content=body, headers=headers)
            lat.append((time.perf_counter() - started) * 1000)
            reply.raise_for_status()
            time.sleep(0.002)
    q = statistics.quantiles(lat, n=100)
    return q[49], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    load = run_wrk if shutil.which("wrk") else run_python
    results: list[Result] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(_BARE_APP)
        port = _free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--loop",
             "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
            cwd=tmp, env=env,
        )  # fmt: skip
        try:
            _wait_ready(f"http://127.0.0.1:{port}/webhook")
            results.append(load("bare Starlette", f"http://127.0.0.1:{port}/webhook",
                                args.seconds, args.connections))  # fmt: skip
        finally:
            bare.terminate()
            bare.wait()

    port = _free_port()
    serve_env = {
        **env,
        "REDIS_URL": redis_url,
        "RINGSYNC_REDIS_NAMESPACE": namespace,
        "RINGSYNC_VERIFICATION_TOKEN": TOKEN,
        "RINGSYNC_LOG_LEVEL": "WARNING",
    }
    client = redis.Redis.from_url(redis_url)
    # As in any deployment whose worker has started once: the default account's id is known.
    client.set(f"{namespace}:account_id", ACCOUNT)
    serve = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "serve", "--port", str(port)], env=serve_env
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/webhook"
        result = load("ringsync serve", url, args.seconds, args.connections)
        results.append(result)
        idle_p50, idle_p99 = idle_latency(url)
        queued = int(client.zcard(f"{namespace}:queue"))  # type: ignore[arg-type]
    finally:
        serve.terminate()
        serve.wait()
        _cleanup(client, namespace)

    base = results[0].requests_per_s
    print(
        f"{'server':<16} {'acked/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs bare':>8}"
    )
    for r in results:
        print(
            f"{r.name:<16} {r.requests_per_s:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.non_2xx:>7} {r.requests_per_s / base:>8.0%}"
        )
    acked = results[1].total - results[1].non_2xx + 500
    print(f"idle receiver, lone notification: p50 {idle_p50:.2f} ms, p99 {idle_p99:.2f} ms")
    # wrk stops with requests in flight: those may be queued without their 200 being counted.
    verdict = "nothing lost" if queued >= acked else f"LOST {acked - queued}"
    print(f"jobs in Redis {queued}, acknowledged {acked}: {verdict}")
    if args.json:
        doc = {
            "results": [asdict(r) for r in results],
            "ratio": results[1].requests_per_s / base,
            "idle_p50_ms": idle_p50,
            "idle_p99_ms": idle_p99,
            "queued": queued,
            "acknowledged": acked,
        }
        args.json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def _cleanup(client: redis.Redis, namespace: str) -> None:
    for pattern in (f"{namespace}*", f"arq:job:{namespace}*"):
        batch = list(client.scan_iter(match=pattern, count=5000))
        for start in range(0, len(batch), 5000):
            client.delete(*batch[start : start + 5000])


if __name__ == "__main__":
    main()
