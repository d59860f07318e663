"""README's benchmark figures are the committed results file's, rendered, never typed by hand.

`bench` is never imported by tests (it imports test helpers itself): the check runs as a command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(readme: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.report", "--check", "--readme", str(readme)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_readme_shows_exactly_the_committed_results() -> None:
    done = check(ROOT / "README.md")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_figure_typed_by_hand_is_caught(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("| receiver | acknowledged notifications/s |")
    end = readme.index("\n", start)
    edited = tmp_path / "README.md"
    edited.write_text(
        readme[:start] + "| receiver | acknowledged notifications/s | 99,999 |" + readme[end:]
    )
    done = check(edited)
    assert done.returncode == 1
    assert "does not show" in done.stdout
