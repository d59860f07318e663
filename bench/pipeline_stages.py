"""Where a change's time goes between the sandbox and the mirror, from the workers' stage logs.

The workers append a line per stage they pass (`workers.stages`, on when `RINGSYNC_STAGE_LOG`
names a directory); the benchmark knows when it made each change and when it saw the mirror row.
For each change the first stamp of each stage after the change is taken, and each step is timed
from the stage before it that the change passed; a change a listing covered is timed from the
change to its commit in one step.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from workers.stages import read_logs

LISTED_STEP = "change -> committed, listed"
STAGES = ("changed", "received", "ingest", "read", "answered", "committed", "outbox", "mirrored")
STEP_NAMES = {
    "received": "change -> receiver",
    "ingest": "enqueue -> ingest start",
    "read": "ingest start -> read sent",
    "answered": "read sent -> answered",
    "committed": "answered -> committed",
    "outbox": "committed -> outbox",
    "mirrored": "-> seen by the poller",
}


def p50_p99(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def breakdown(
    directory: Path, changed: dict[str, float], mirrored: dict[str, float]
) -> dict[str, list[float]]:
    """Step → [p50 ms, p99 ms, count] over the changes in `changed` (extension id → unix time
    of the change) that `mirrored` saw; plus "listed": how many a listing covered."""
    logs = read_logs(directory)
    steps: dict[str, list[float]] = {stage: [] for stage in STAGES[1:]}
    by_listing: list[float] = []
    for extension_id, at in changed.items():
        if extension_id not in mirrored:
            continue
        passed = {"changed": at, "mirrored": mirrored[extension_id]}
        for stage, times in logs.get(extension_id, {}).items():
            after = [t for t in times if t >= at - 0.001]  # clocks: same host, ms stamps
            if after:
                passed[stage] = min(after)
        chain: tuple[str, ...]
        answered = passed.get("answered")
        if "committed" in passed and (answered is None or passed["committed"] < answered):
            # A listing wrote it, often before its own notification's ingest even started (and
            # before a single read sent meanwhile was answered).
            by_listing.append((passed["committed"] - at) * 1000)
            previous, chain = "committed", STAGES[-2:]
        else:
            previous, chain = "changed", STAGES[1:]
        for stage in chain:
            if stage in passed:
                steps[stage].append((passed[stage] - passed[previous]) * 1000)
                previous = stage
    found = {STEP_NAMES[stage]: [*p50_p99(v), len(v)] for stage, v in steps.items() if v}
    if by_listing:
        found[LISTED_STEP] = [*p50_p99(by_listing), len(by_listing)]
    listed = float(len(by_listing))
    found["listed"] = [listed, listed, listed]
    return found


def print_breakdown(found: dict[str, list[float]]) -> None:
    for step, (p50, p99, count) in found.items():
        if step == "listed":
            print(f"    {'covered by a listing':<28} {count:>6.0f}", flush=True)
            continue
        print(f"    {step:<28} p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  ({count:.0f})", flush=True)
