"""The README's chart: each measured figure beside its same-run baseline, one panel per bench."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render straight to a file

import matplotlib.pyplot as plt

OURS, BASE = "#1f6feb", "#9aa4ae"


def _bars(ax: Any, labels: list[str], ours: list[float], base: list[float], names: Any) -> None:
    positions = range(len(labels))
    width = 0.38
    ax.bar([p - width / 2 for p in positions], ours, width, color=OURS, label=names[0])
    ax.bar([p + width / 2 for p in positions], base, width, color=BASE, label=names[1])
    ax.set_xticks(list(positions), labels, fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def draw(documents: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (receiver_ax, pipeline_ax), (latency_ax, economy_ax) = axes

    receiver = documents.get("receiver") or {}
    if "results" in receiver:
        bare, ours = receiver["results"][0], receiver["results"][1]
        _bars(receiver_ax, ["notifications/s"], [ours["requests_per_s"]],
              [bare["requests_per_s"]], ("ringsync serve", "bare Starlette"))  # fmt: skip
    receiver_ax.set_title("Receiver: acknowledged/s")

    rows = (documents.get("pipeline") or {}).get("rows", [])
    noop = {r["workers"]: r for r in rows if r["name"] == "arq no-op job"}
    runs = [r for r in rows if r["name"] != "arq no-op job"]
    labels = [_label(r) for r in runs]
    _bars(pipeline_ax, labels, [r["per_second"] for r in runs],
          [noop.get(r["workers"], {}).get("per_second", 0) for r in runs],
          ("ringsync events (bulk: users)/s", "arq no-op jobs/s"))  # fmt: skip
    pipeline_ax.set_title("Pipeline throughput, rate limits off")

    paced = [r for r in runs if r.get("p99_ms") is not None]
    _bars(latency_ax, [_label(r) for r in paced], [r["p99_ms"] for r in paced],
          [noop.get(r["workers"], {}).get("p99_ms", 0) for r in paced],
          ("event -> mirror p99 ms", "no-op enqueue -> run p99 ms"))  # fmt: skip
    latency_ax.set_title("Latency p99 (paced load)")

    economy = (documents.get("economy") or {}).get("results", [])
    _bars(economy_ax, [f"K={r['changed']:,}" for r in economy],
          [r["requests"] for r in economy], [r["floor_requests"] for r in economy],
          ("ringsync requests", "floor"))  # fmt: skip
    economy_ax.set_title("API economy: 10,000-user account, default limits")

    fig.suptitle("ringsync benchmarks (each beside a baseline measured in the same run)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _label(row: dict[str, Any]) -> str:
    db = "PG" if row["database"] == "postgres" else "SQLite"
    if row["name"].startswith("bulk"):
        return f"bulk 10k\n{db} x{row['workers']}"
    return f"{db} x{row['workers']}"
