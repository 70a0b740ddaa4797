"""mesoscopic: Landauer-Büttiker quantum transport.

From closed-form models to large tight-binding devices: transmission, finite
temperature and bias, multi-terminal Büttiker networks with probes, noise and
thermoelectrics.
"""

from __future__ import annotations

from . import analytic, constants, landauer, network

__version__ = "0.1.0"

__all__ = ["__version__", "analytic", "constants", "landauer", "network"]
