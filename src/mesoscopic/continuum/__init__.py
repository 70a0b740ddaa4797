"""Continuum (k.p) Hamiltonians discretized into tight-binding templates, as Kwant's.

Write a Hamiltonian as text or SymPy, e.g. ``"k_x**2 + k_y**2 + alpha * (k_x *
sigma_y - k_y * sigma_x)"``, turn it into a template :class:`~mesoscopic.Builder`
with :func:`discretize`, and fill a scattering region or a lead with it
(``syst.fill(template, shape, start)``). Landau-level bases for a magnetic field
along one axis come from :func:`discretize_landau`.

This subpackage needs SymPy (``pip install "mesoscopic[continuum]"``).
"""

from __future__ import annotations

try:
    import sympy  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without SymPy
    raise ImportError(
        "mesoscopic.continuum needs SymPy; install it with "
        "'pip install \"mesoscopic[continuum]\"' (or 'pip install sympy')"
    ) from error

from ._common import (
    lambdify,
    momentum_operators,
    pauli,
    position_operators,
    sigma_0,
    sigma_x,
    sigma_y,
    sigma_z,
    sympify,
)
from .discretizer import build_discretized, discretize, discretize_symbolic
from .landau_levels import LandauLattice, discretize_landau, to_landau_basis

__all__ = [
    "LandauLattice",
    "build_discretized",
    "discretize",
    "discretize_landau",
    "discretize_symbolic",
    "lambdify",
    "momentum_operators",
    "pauli",
    "position_operators",
    "sigma_0",
    "sigma_x",
    "sigma_y",
    "sigma_z",
    "sympify",
    "to_landau_basis",
]
