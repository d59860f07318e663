"""`python -m scripts.sandbox [--port 8090] [--users N] [--rate-limits ...]`: the same as
`ringsync sandbox`, with the same settings, logging and error handling."""

from __future__ import annotations

import sys

from scripts.cli import main

if __name__ == "__main__":
    sys.exit(main(["sandbox", *sys.argv[1:]]))
