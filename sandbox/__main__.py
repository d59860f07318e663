"""`python -m` on this package, with `[--port 8090] [--users N] [--rate-limits ...]`: the
look-alike on its own, with the RC_* credentials from the environment (`ringsync sandbox` reads
ringsync's settings instead)."""

from __future__ import annotations

import sys

from sandbox.command import main

if __name__ == "__main__":
    sys.exit(main())
