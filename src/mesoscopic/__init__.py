"""mesoscopic: Landauer-Büttiker quantum transport.

From closed-form models to large tight-binding devices: transmission, finite
temperature and bias, multi-terminal Büttiker networks with probes, noise and
thermoelectrics.
"""

from __future__ import annotations

from . import analytic, builder, constants, landauer, lattice, network, plot, system
from .builder import ArrayBuilder, Builder, HoppingKind, TranslationalSymmetry
from .system import InfiniteSystem, System

__version__ = "0.1.0"

__all__ = [
    "ArrayBuilder",
    "Builder",
    "HoppingKind",
    "InfiniteSystem",
    "System",
    "TranslationalSymmetry",
    "__version__",
    "analytic",
    "builder",
    "constants",
    "landauer",
    "lattice",
    "network",
    "plot",
    "system",
]
