"""When each change passed each stage of a worker: a timing hook for the pipeline benchmark.

Off unless `RINGSYNC_STAGE_LOG` names a directory: then every worker process appends one line
per stage and extension, ``<unix time> <stage> <extension id>``, to ``stages-<pid>.log`` there.
The stages, in order: ``received`` (the receiver's time of arrival, as the ingest job got
it), ``ingest`` (the ingest job started),
``read`` (a single read sent),
``answered`` (its answer in), ``committed`` (the user's transaction committed, single or listed)
and ``outbox`` (its outbox rows handed to delivery). Writing a line costs a few microseconds;
when off, a call costs one comparison.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)
_log: TextIO | None = None


def configure(directory: Path | None) -> None:
    """Start appending to `directory` (None: stop)."""
    global _log
    if _log is not None:
        _log.close()
        _log = None
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _log = (directory / f"stages-{os.getpid()}.log").open("a", buffering=1)
        except OSError as exc:  # a benchmark aid never keeps a worker from starting
            log.warning("stage log off: %s cannot be written (%s)", directory, exc.strerror)


def enabled() -> bool:
    return _log is not None


def passed(stage: str, extension_ids: Iterable[str], at: float | None = None) -> None:
    """Record that `extension_ids` passed `stage` now, or at unix time `at` (nothing when off)."""
    if _log is None:
        return
    now = repr(time.time() if at is None else at)
    _log.write("".join(f"{now} {stage} {extension_id}\n" for extension_id in extension_ids))


def read_logs(directory: Path) -> dict[str, dict[str, list[float]]]:
    """Every stage log in `directory`: extension id → stage → the times it passed it."""
    found: dict[str, dict[str, list[float]]] = {}
    for path in sorted(directory.glob("stages-*.log")):
        for line in path.read_text().splitlines():
            at, stage, extension_id = line.split(" ", 2)
            found.setdefault(extension_id, {}).setdefault(stage, []).append(float(at))
    return found
