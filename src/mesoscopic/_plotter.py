"""Plotting engine state for :mod:`mesoscopic.plotter` (Kwant's ``kwant._plotter``).

Whether matplotlib (and its 3D toolkit) can be imported is found without importing
them, so ``import mesoscopic`` neither loads matplotlib nor chooses its backend.
Only the matplotlib engine exists; ``engine`` is the one in use.
"""

from __future__ import annotations

import importlib.util


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


mpl_available: bool = _importable("matplotlib")
has3d: bool = mpl_available and _importable("mpl_toolkits.mplot3d")
plotly_available: bool = False
engines: set[str] = {"matplotlib"} if mpl_available else set()
engine: str | None = "matplotlib" if mpl_available else None
