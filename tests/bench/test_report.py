"""README's benchmark figures are the committed results file's, rendered, never typed by hand."""

from __future__ import annotations

import orjson

from bench.report import README, RESULTS, block, render


def test_readme_shows_exactly_the_committed_results() -> None:
    results = orjson.loads(RESULTS.read_bytes())
    assert block(README.read_text()) == render(results)


def test_every_figure_of_the_results_has_a_row() -> None:
    results = orjson.loads(RESULTS.read_bytes())
    rows = [
        row for row in render(results).splitlines() if row.startswith("| ") and "---" not in row
    ]
    assert len(rows) == 1 + len(results["lines"])  # the header, then one row per figure
    for line in results["lines"]:
        assert any(f"| {line['figure']} |" in row for row in rows), line["figure"]
