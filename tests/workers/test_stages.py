"""The stage log the pipeline benchmark reads: off by default, one line per stage when on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workers import stages


@pytest.fixture
def stage_log(tmp_path: Path) -> Iterator[Path]:
    stages.configure(tmp_path)
    yield tmp_path
    stages.configure(None)


def test_off_by_default_writes_nothing(tmp_path: Path) -> None:
    assert not stages.enabled()
    stages.passed("read", ["101"])
    assert stages.read_logs(tmp_path) == {}


def test_each_stage_is_read_back_per_extension(stage_log: Path) -> None:
    stages.passed("received", ["101", "102"], at=1000.5)
    stages.passed("read", ["101"])
    stages.passed("read", ["101"])
    found = stages.read_logs(stage_log)
    assert found["101"]["received"] == [1000.5]
    assert found["102"] == {"received": [1000.5]}
    assert len(found["101"]["read"]) == 2
    assert found["101"]["read"][0] > 1000.5


def test_an_unwritable_directory_leaves_it_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    stages.configure(blocked / "stages")  # a directory under a file: cannot be made
    assert not stages.enabled()
    assert "stage log off" in caplog.text
