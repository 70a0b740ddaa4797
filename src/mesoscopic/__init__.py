"""mesoscopic: Landauer-Büttiker quantum transport.

From closed-form models to large tight-binding devices: transmission, finite
temperature and bias, multi-terminal Büttiker networks with probes, noise and
thermoelectrics.

The tight-binding vocabulary follows Kwant (``Builder``, ``lattice``,
``TranslationalSymmetry``, ``smatrix``, ``physics.Bands``), so a Kwant transport
script runs after ``import mesoscopic as kwant``.
"""

from __future__ import annotations

from typing import Any

from . import (
    analytic,
    batch,
    builder,
    capacitor,
    constants,
    coulomb,
    dephasing,
    digest,
    io,
    kpm,
    landauer,
    lattice,
    leads,
    linear_response,
    models,
    network,
    noise,
    operator,
    physics,
    plot,
    plotter,
    rmt,
    scattering,
    solvers,
    spin,
    sweep,
    system,
    thermoelectric,
    transport,
    wraparound,
)
from ._version import __version__
from .batch import smatrices, transmission
from .builder import ArrayBuilder, Builder, HoppingKind, TranslationalSymmetry
from .linear_response import conductance
from .scattering import SMatrix
from .solvers.options import SolverOptions
from .system import InfiniteSystem, System, UnusedParameterWarning, UserCodeError
from .transport import bond_currents, greens_function, ldos, smatrix, wave_function

__all__ = [
    "ArrayBuilder",
    "Builder",
    "HoppingKind",
    "InfiniteSystem",
    "SMatrix",
    "SolverOptions",
    "System",
    "TranslationalSymmetry",
    "UnusedParameterWarning",
    "UserCodeError",
    "__version__",
    "analytic",
    "batch",
    "bond_currents",
    "builder",
    "capacitor",
    "conductance",
    "constants",
    "continuum",
    "coulomb",
    "dephasing",
    "digest",
    "greens_function",
    "io",
    "kpm",
    "landauer",
    "lattice",
    "ldos",
    "leads",
    "linear_response",
    "models",
    "network",
    "noise",
    "operator",
    "physics",
    "plot",
    "plotter",
    "rmt",
    "scattering",
    "smatrices",
    "smatrix",
    "solvers",
    "spin",
    "sweep",
    "system",
    "thermoelectric",
    "transmission",
    "transport",
    "wave_function",
    "wraparound",
]


def __getattr__(name: str) -> Any:
    # SymPy is optional: mesoscopic.continuum is imported on first use, as in Kwant.
    if name == "continuum":
        import importlib

        return importlib.import_module(".continuum", __name__)
    raise AttributeError(f"module 'mesoscopic' has no attribute {name!r}")
