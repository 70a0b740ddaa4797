"""mesoscopic: Landauer-Büttiker quantum transport.

From closed-form models to large tight-binding devices: transmission, finite
temperature and bias, multi-terminal Büttiker networks with probes, noise and
thermoelectrics.

The tight-binding vocabulary follows Kwant (``Builder``, ``lattice``,
``TranslationalSymmetry``, ``smatrix``, ``physics.Bands``), so a Kwant transport
script runs after ``import mesoscopic as kwant``.
"""

from __future__ import annotations

from . import (
    analytic,
    builder,
    capacitor,
    constants,
    coulomb,
    dephasing,
    landauer,
    lattice,
    models,
    leads,
    network,
    noise,
    physics,
    plot,
    scattering,
    solvers,
    spin,
    system,
    thermoelectric,
    transport,
)
from .builder import ArrayBuilder, Builder, HoppingKind, TranslationalSymmetry
from .scattering import SMatrix
from .system import InfiniteSystem, System
from .transport import bond_currents, ldos, smatrix, wave_function

__version__ = "0.1.0"

__all__ = [
    "ArrayBuilder",
    "Builder",
    "HoppingKind",
    "InfiniteSystem",
    "SMatrix",
    "System",
    "TranslationalSymmetry",
    "__version__",
    "analytic",
    "bond_currents",
    "builder",
    "capacitor",
    "constants",
    "coulomb",
    "dephasing",
    "landauer",
    "lattice",
    "models",
    "ldos",
    "leads",
    "network",
    "noise",
    "physics",
    "plot",
    "scattering",
    "smatrix",
    "solvers",
    "spin",
    "system",
    "thermoelectric",
    "transport",
    "wave_function",
]
