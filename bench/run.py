"""Every benchmark, one table: each figure beside a baseline measured in the same run.

    python -m bench.run [--quick] [--out bench/results]

Runs, one after the other and each in its own process: the receiver (vs bare Starlette), the
pipeline (vs an arq no-op job; SQLite and PostgreSQL; 1 and 2 workers; a 10,000-user bulk
change), a single read's CPU (vs a listed user's), API economy (vs the cheapest possible
requests), the shared rate-limit budget (vs what the limits allow), sandbox paging (vs rendering
alone), the 100,000-user resync when bench/resync.py is there, the 100,000-user roles sweep, 500
deprovisioning actions (60-second rate-limit windows; 6 with --quick), many accounts (400
accounts' latency beside a bulk change, 1,000 accounts' upkeep), the console's dashboard with
200 accounts (vs a bare Starlette page), and the receiver fuzz run (100,000 cases; 5,000 with
--quick).
Writes results.json and chart.png to --out; with the default --out, also README's figures and
docs/bench.png (see bench/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.chart import draw
from bench.cpu import cores_needed, ringsync_ms
from bench.report import RESULTS, update
from bench.stack import postgres_available

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Line:
    """One row of the table: a figure and the baseline it is read against."""

    bench: str
    figure: str
    value: float | None
    baseline: float | None
    baseline_name: str
    source: str = ""  # the BENCHES key that produced it

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


def _run(module: str, *args: str, timeout: float) -> tuple[str, dict[str, Any] | None]:
    """Run `python -m module args` (adding --json when asked); its stdout and JSON document."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "out.json"
        command = [sys.executable, "-m", module, *args]
        wants_json = "--json" in args
        if wants_json:
            command[command.index("--json") + 1] = str(target)
        print(f"== {' '.join(command[2:])}", file=sys.stderr, flush=True)
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        sys.stderr.write(done.stdout)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-3000:])
            raise RuntimeError(f"{module} exited with {done.returncode}")
        document = orjson.loads(target.read_bytes()) if wants_json and target.exists() else None
        return done.stdout, document


# --- each benchmark as table lines -----------------------------------------------------------


def receiver(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    seconds = "3" if quick else "10"
    _, doc = _run("bench.receiver", "--seconds", seconds, "--json", "-", timeout=300)
    assert doc is not None
    bare, ours = doc["results"][0], doc["results"][1]
    lines = [
        Line("receiver", "acknowledged notifications/s", ours["requests_per_s"],
             bare["requests_per_s"], "bare Starlette req/s"),
        Line("receiver", "p99 under load (ms)", ours["p99_ms"], bare["p99_ms"],
             "bare Starlette p99"),
        Line("receiver", "jobs in Redis / acknowledged", doc["queued"], doc["acknowledged"],
             "acknowledged"),
        Line("receiver", "  lone notification on an idle receiver, p50 ms", doc["idle_p50_ms"],
             None, "-"),
        Line("receiver", "  lone notification on an idle receiver, p99 ms", doc["idle_p99_ms"],
             None, "-"),
    ]  # fmt: skip
    return lines, doc


def pipeline(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    args = ["--quick"] if quick else []
    _, doc = _run("bench.pipeline", *args, "--json", "-", timeout=3600)
    assert doc is not None
    rows = doc["rows"]
    noop = {(r["workers"], r.get("rate")): r for r in rows if r["name"] == "arq no-op job"}
    lines = []
    for r in rows:
        if r["name"] == "arq no-op job":
            continue
        base = noop.get((r["workers"], r.get("rate")), {})
        where = f"{r['database']}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}"
        if r["name"].startswith("bulk"):
            burst = noop.get((2, None), {}).get("per_second")
            lines.append(Line("pipeline", f"{r['name']} ({where}), users/s", r["per_second"],
                              burst, "arq no-op jobs/s"))  # fmt: skip
            lines.append(Line("pipeline", "  the same against the 1,000 users/s goal",
                              r["per_second"], 1000.0, "goal"))  # fmt: skip
        elif r["name"] == "lone change":
            lines.append(Line("pipeline", f"lone change -> mirror p50 ms ({where})", r["p50_ms"],
                              50.0, "goal"))  # fmt: skip
        elif r.get("rate") is None:
            lines.append(Line("pipeline", f"events/s ({where})", r["per_second"],
                              base.get("per_second"), "arq no-op jobs/s"))  # fmt: skip
        else:
            at = f"{r['rate']:.0f}/s, {where}"
            lines += [
                Line("pipeline", f"  event -> mirror p50 ms ({at})", r["p50_ms"],
                     base.get("p50_ms"), "no-op enqueue -> run p50"),
                Line("pipeline", f"  event -> mirror p99 ms ({at})", r["p99_ms"],
                     base.get("p99_ms"), "no-op enqueue -> run p99"),
            ]  # fmt: skip
            cpu = r.get("cpu_ms") or {}
            if cpu:
                ours = ringsync_ms(cpu)
                lines.append(Line("pipeline", f"    CPU a change, ms ({at})", ours,
                                  ringsync_ms(base.get("cpu_ms") or {}) or None,
                                  "arq no-op CPU a job"))  # fmt: skip
                lines.append(Line("pipeline", f"    cores ringsync needs ({at})",
                                  cores_needed(ours, r["rate"]), doc.get("cores"),
                                  "cores of this machine"))  # fmt: skip
            if r["rate"] == max(x.get("rate") or 0 for x in rows):  # stages at the top rate
                lines += [
                    Line("pipeline", f"    {step}, p99 ms ({at})", p99, None, f"p50 {p50:.0f} ms")
                    for step, (p50, p99, _) in r.get("stages", {}).items()
                    if step != "listed"
                ]
    return lines, doc


def listing(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    _, doc = _run("bench.listing", "--json", "-", timeout=600)
    assert doc is not None
    lines = [
        Line("listing", f"CPU a single read, ms ({r['database']})", r["read_ms"],
             r["listed_user_ms"], f"CPU a listed user ({r['users']:,} users)")
        for r in doc["results"]
    ]  # fmt: skip
    return lines, doc


def economy(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    _, doc = _run("bench.economy", "--json", "-", timeout=3600)
    assert doc is not None
    lines = []
    for r in doc["results"]:
        k = f"K={r['changed']:,} of {doc['account_users']:,}"
        lines += [
            Line("API economy", f"requests, {k}", r["requests"], r["floor_requests"],
                 "floor (goal <= 1.2x)"),
            Line("API economy", f"  seconds to converge, {k}", r["seconds"],
                 r["floor_seconds"], "floor at the limits"),
            Line("API economy", f"  429 responses, {k}", r["rate_limited"], 0, "goal"),
        ]  # fmt: skip
    return lines, doc


def ratelimit(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    seconds = "20" if quick else "120"
    out, _ = _run("bench.ratelimit", "--seconds", seconds, timeout=600)
    doc: dict[str, Any] = {"seconds": float(seconds), "output": out}
    lines = []
    limits = {"light": 50, "medium": 40}
    for group, answered in re.findall(r"^(light|medium)\s+(\d+)\s", out, re.M):
        # A sliding 60 s window from a fresh start: a full window at once, then one a minute.
        ceiling = limits[group] * math.ceil(float(seconds) / 60)
        doc[group] = {"answered": int(answered), "ceiling": ceiling}
        lines.append(Line("rate limits", f"{group} requests answered in {seconds} s, 2 processes",
                          float(answered), ceiling, "most the limit allows"))  # fmt: skip
    refused = re.search(r"429 responses received: (\d+)", out)
    logins = re.search(r"logins: (\d+)", out)
    if refused:
        doc["rate_limited"] = int(refused.group(1))
        lines.append(Line("rate limits", "429 responses", int(refused.group(1)), 0, "goal"))
    if logins:
        lines.append(Line("rate limits", "logins", int(logins.group(1)), 1, "goal"))
    return lines, doc


def paging(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    users = "20000" if quick else "100000"
    out, _ = _run("bench.sandbox_paging", "--users", users, "--rounds", "1", timeout=600)
    median = re.search(r"median\s+([\d.]+) ms", out)
    render = re.search(r"render only .*?:\s+([\d.]+) ms", out)
    doc = {"users": int(users), "output": out}
    value = float(median.group(1)) if median else None
    base = float(render.group(1)) if render else None
    return [Line("sandbox", f"1,000-user page round trip ms ({int(users):,} users)", value, base,
                 "render alone")], doc  # fmt: skip


def resync(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    """bench/resync.py is optional; it prints its result as a JSON document on its last line."""
    if not (ROOT / "bench" / "resync.py").exists():
        return [], {"skipped": "bench/resync.py is not there"}
    users = "20000" if quick else "100000"
    out, _ = _run("bench.resync", "--users", users, timeout=3600)
    doc: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    n = f"{doc['users']:,} users"
    throttled = sum(int(v) for v in (doc.get("throttled") or {}).values())
    lines = [
        Line("resync", f"list requests, {n}", doc["list_requests"], doc["expected_requests"],
             "ceil(N / 1000)"),
        Line("resync", f"  seconds, {n}", doc["wall_seconds"], doc["floor_seconds"],
             "floor at 40 pages/min"),
        Line("resync", f"  peak RSS MB, {n}", doc["peak_rss_mb"], doc["peak_rss_mb_before"],
             "RSS before it"),
        Line("resync", f"  429 responses, {n}", throttled, 0, "goal"),
    ]  # fmt: skip
    return lines, doc


def roles(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    """The roles sweep; it prints its result as a JSON document on its last line."""
    users = "20000" if quick else "100000"
    out, _ = _run("bench.roles", "--users", users, timeout=3600)
    doc: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    n = f"{doc['users']:,} users"
    throttled = sum(int(v) for v in (doc.get("throttled") or {}).values())
    lines = [
        Line("roles", f"Medium requests, {n}", doc["medium_requests"], doc["expected_requests"],
             "ceil(N / 1000)"),
        Line("roles", f"  seconds, {n}", doc["wall_seconds"], doc["floor_seconds"],
             "floor at 40 pages/min"),
        Line("roles", f"  peak RSS MB, {n}", doc["peak_rss_mb"], doc["peak_rss_mb_before"],
             "RSS before it"),
        Line("roles", f"  429 responses, {n}", throttled, 0, "goal"),
    ]  # fmt: skip
    return lines, doc


def actions(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    """500 deprovisions under RingCentral's default limits (`--quick`: 6-second windows)."""
    window = "6" if quick else "60"
    out, _ = _run("bench.actions", "--users", "500", "--window", window, timeout=3600)
    doc: dict[str, Any] = orjson.loads(out.strip().splitlines()[-1])
    n = f"{doc['users']:,} deprovisions"
    throttled = sum(int(v) for v in (doc.get("throttled") or {}).values())
    lines = [
        Line("actions", f"Heavy requests, {n}", doc["heavy_requests"], doc["heavy_goal"],
             "ceil(N / 50)"),
        Line("actions", f"  Medium requests (suspends), {n}", doc["medium_requests"], doc["users"],
             "one per user"),
        Line("actions", f"  seconds, {n}", doc["wall_seconds"], doc["floor_seconds"],
             f"floor at the limits ({doc['window_seconds']:.0f} s windows)"),
        Line("actions", f"  429 responses, {n}", throttled, 0, "goal"),
    ]  # fmt: skip
    return lines, doc


def accounts(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    """Many accounts (bench/accounts.py); --quick runs it smaller (the sizes are in its lines)."""
    sizes = ["--accounts", "40", "--users", "50", "--seconds", "20", "--bulk", "3000",
             "--upkeep-accounts", "100", "--upkeep-users", "20"] if quick else []  # fmt: skip
    _, doc = _run("bench.accounts", *sizes, "--json", "-", timeout=7200)
    assert doc is not None
    a, b, c = doc["a"], doc["b"], doc["c"]
    n = f"{doc['accounts']} accounts x {doc['users']} users"
    lines = [
        Line("accounts", f"change -> mirror p99 ms, {n}, each a change / 2 s", a["p99_ms"],
             250.0, "goal"),
        Line("accounts", "  change -> mirror p50 ms", a["p50_ms"], None, "-"),
        Line("accounts", "  changes not in the mirror 60 s after the last", a.get("missing"), 0,
             "goal"),
        Line("accounts", f"  others' p99 ms beside a {doc['bulk']:,}-user bulk change",
             b["p99_ms"], a["p99_ms"], "p99 without it (goal <= 1.5x)"),
        Line("accounts", "    others' changes not in the mirror 60 s after the last",
             b.get("missing"), 0, "goal"),
        Line("accounts", f"requests an account a day, upkeep of {c['accounts']:,} accounts",
             c["per_account_per_day"], None, "-"),
        Line("accounts", "  429 responses in the upkeep rounds", c["throttled"], 0, "goal"),
    ]  # fmt: skip
    return lines, doc


def console(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    """Server time of the console's dashboard with 200 accounts, on each database at hand."""
    requests = "150" if quick else "400"
    lines: list[Line] = []
    results: list[Any] = []
    for database in ("sqlite", "postgres") if asyncio.run(postgres_available()) else ("sqlite",):
        out, _ = _run("bench.console", "--accounts", "200", "--requests", requests,
                      "--database", database, timeout=900)  # fmt: skip
        ours, bare = orjson.loads(out.strip().splitlines()[-1])
        where = f"200 accounts, {database}"
        lines += [
            Line("console", f"dashboard p50 ms ({where})", ours["p50_ms"], bare["p50_ms"],
                 "bare Starlette, same page"),
            Line("console", f"  dashboard p99 ms ({where})", ours["p99_ms"], 50.0, "goal"),
            Line("console", f"  CPU per dashboard, p99 ms ({where})", ours["cpu_p99_ms"], 50.0,
                 "goal"),
        ]  # fmt: skip
        results += [ours, bare]
    return lines, {"results": results}


def fuzz(quick: bool) -> tuple[list[Line], dict[str, Any]]:
    cases, raw = ("5000", "1000") if quick else ("100000", "10000")
    _, doc = _run("bench.fuzz", "--cases", cases, "--raw", raw, "--json", "-", timeout=7200)
    assert doc is not None
    lines = [
        Line("fuzz", "receiver cases, none a 5xx or wrongly queued", doc["http_cases"],
             100_000.0, "goal (full run)"),
        Line("fuzz", "  raw-socket cases (odd headers, Content-Length)", doc["raw_cases"],
             None, "-"),
    ]  # fmt: skip
    return lines, doc


BENCHES: dict[str, Callable[[bool], tuple[list[Line], dict[str, Any]]]] = {
    "receiver": receiver,
    "pipeline": pipeline,
    "listing": listing,
    "economy": economy,
    "ratelimit": ratelimit,
    "paging": paging,
    "resync": resync,
    "roles": roles,
    "actions": actions,
    "accounts": accounts,
    "console": console,
    "fuzz": fuzz,
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def table(lines: list[Line]) -> str:
    width = max([len(line.figure) for line in lines] + [20])
    head = f"{'bench':<12} {'figure':<{width}} {'value':>10} {'baseline':>10} {'ratio':>7}  of"
    out = [head, "-" * len(head)]
    for line in lines:
        ratio = "-" if line.ratio is None else f"{line.ratio:.2f}x"
        out.append(
            f"{line.bench:<12} {line.figure:<{width}} {_fmt(line.value):>10} "
            f"{_fmt(line.baseline):>10} {ratio:>7}  {line.baseline_name}"
        )
    return "\n".join(out)


def _previous(path: Path) -> tuple[dict[str, list[Line]], dict[str, Any]]:
    if not path.exists():
        return {}, {}
    saved = orjson.loads(path.read_bytes())
    produced: dict[str, list[Line]] = {}
    for raw in saved.get("lines", []):
        raw.pop("ratio", None)
        line = Line(**raw)
        produced.setdefault(line.source, []).append(line)
    return produced, dict(saved.get("benches", {}))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (a few minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    produced: dict[str, list[Line]] = {}
    documents: dict[str, Any] = {}
    if args.only:
        # Re-running some benches: keep the others' figures from the last run.
        produced, documents = _previous(args.out / "results.json")
    failed = []
    for name, bench in BENCHES.items():
        if args.only and name not in args.only:
            continue
        try:
            more, documents[name] = bench(args.quick)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
            failed.append(name)
            documents[name] = {"error": str(exc)}
            more = [Line(name, f"FAILED: {exc}"[:80], None, None, "-")]
        produced[name] = [dataclasses.replace(line, source=name) for line in more]
    lines = [line for name in BENCHES for line in produced.get(name, [])]
    report = table(lines)
    print(report)
    results = {
        "quick": args.quick,
        "started": started,
        "seconds": time.time() - started,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "lines": [{**asdict(line), "ratio": line.ratio} for line in lines],
        "benches": documents,
    }
    (args.out / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (args.out / "table.txt").write_text(report + "\n")
    chart = args.out / "chart.png"
    draw(documents, chart)
    if args.out.resolve() == RESULTS.parent.resolve():
        update(RESULTS)  # README's figures and docs/bench.png, from the file just written
        print(f"\nwrote {RESULTS}, {chart}, README's figures, docs/bench.png", file=sys.stderr)
    else:
        print(f"\nwrote {args.out / 'results.json'} and {chart}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
