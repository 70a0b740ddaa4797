"""Shared plumbing for the gallery scripts: output folder and a headless matplotlib."""

from __future__ import annotations

import pathlib
import sys


def output_dir(argv: list[str] | None = None, default: str = "out") -> pathlib.Path:
    """Folder from the first command-line argument (or `default`), created if needed."""
    args = sys.argv[1:] if argv is None else argv
    path = pathlib.Path(args[0] if args else default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
