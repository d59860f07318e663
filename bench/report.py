"""README's benchmark figures, rendered from the committed results file, never copied by hand.

    python -m bench.report [--results bench/results/results.json] [--readme README.md] [--check]

Rewrites the block between the `bench:begin` and `bench:end` markers in README.md and redraws
docs/bench.png from the same file. `python -m bench.run` calls it after each run; `--check` only
says (exit 1) whether README shows exactly what the results file holds, as a test runs it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "results.json"
README = ROOT / "README.md"
BEGIN = "<!-- bench:begin (written by python -m bench.report from bench/results/results.json) -->"
END = "<!-- bench:end -->"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render(results: dict[str, Any]) -> str:
    """The README block for `results`: one row per figure, beside its same-run baseline."""
    when = datetime.fromtimestamp(results["started"], UTC).strftime("%Y-%m-%d")
    machine = results.get("machine", {})
    kind = "`--quick` run" if results.get("quick") else "full run"
    rows = [
        f"From one {kind} of `python -m bench.run` on {when} ({machine.get('cpus', '?')} cores, "
        f"Python {machine.get('python', '?')}); each figure beside a baseline measured in the "
        "same run.",
        "",
        "| bench | figure | value | baseline | ratio | baseline is |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for line in results["lines"]:
        ratio = line.get("ratio")
        rows.append(
            f"| {line['bench']} | {line['figure']} | {_number(line['value'])} | "
            f"{_number(line['baseline'])} | {'–' if ratio is None else f'{ratio:.2f}×'} | "
            f"{line['baseline_name']} |"
        )
    return "\n".join(rows)


def block(readme: str) -> str:
    """What README holds between the markers now."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:end].strip("\n")


def update(results_path: Path = RESULTS, readme_path: Path = README) -> None:
    """Rewrite README's block and docs/bench.png from `results_path`."""
    results = orjson.loads(results_path.read_bytes())
    readme = readme_path.read_text()
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    readme_path.write_text(f"{readme[:start]}\n{render(results)}\n{readme[end:]}")
    from bench.chart import draw  # matplotlib: only when a chart is drawn

    draw(results.get("benches", {}), ROOT / "docs" / "bench.png")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if they differ")
    args = parser.parse_args()
    if not args.results.is_file():
        print(f"no results at {args.results}: run python -m bench.run first", file=sys.stderr)
        return 1
    if args.check:
        results = orjson.loads(args.results.read_bytes())
        rendered = render(results)
        missing = [x["figure"] for x in results["lines"] if f"| {x['figure']} |" not in rendered]
        if block(args.readme.read_text()) != rendered or missing:
            print(f"{args.readme} does not show {args.results}: run python -m bench.report")
            return 1
        print(f"{args.readme} shows {args.results}")
        return 0
    update(args.results, args.readme)
    print(f"README.md and docs/bench.png written from {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
