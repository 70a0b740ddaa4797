"""Unit constants and input checks shared by the closed-form modules.

Continuum models work in meV and nm with the effective mass in units of the free
electron mass; this module holds the one number that ties those units together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks, constants

__all__: list[str] = []

HBAR2_OVER_2ME: float = constants.hbar**2 / (2.0 * constants.m_e) / constants.meV * 1e18
"""hbar^2 / (2 m_e) in meV nm^2 (about 38.1)."""

GAAS_EFFECTIVE_MASS: float = 0.067
"""Conduction-band effective mass of GaAs in units of the free electron mass."""


def kinetic_prefactor(effective_mass: ArrayLike) -> NDArray[np.float64]:
    """hbar^2 / (2 m*) in meV nm^2 for an effective mass given in units of m_e."""
    mass = _checks.positive(effective_mass, "effective_mass")
    return HBAR2_OVER_2ME / mass


def integer_option(value: Any, name: str, *, minimum: int) -> int:
    """Validate a scalar integer option such as a number of modes or sites."""
    return _checks.positive_int(value, name, minimum=minimum)


spin_degeneracy = _checks.spin_degeneracy


def whole_numbers(value: ArrayLike, name: str, *, minimum: int) -> NDArray[np.int64]:
    """Validate an array of whole numbers >= minimum (integer or integral float input)."""
    arr = _checks.real_array(value, name)
    if np.any(arr != np.round(arr)):
        bad = float(arr[arr != np.round(arr)].flat[0])
        raise ValueError(f"{name} must be whole numbers >= {minimum}, got {bad!r}")
    if np.any(arr < minimum):
        bad = float(arr[arr < minimum].flat[0])
        raise ValueError(f"{name} must be whole numbers >= {minimum}, got {bad!r}")
    return arr.astype(np.int64)


def probability(value: ArrayLike, name: str) -> NDArray[np.float64]:
    """Validate a transmission or reflection probability in [0, 1]."""
    arr = _checks.real_array(value, name)
    outside = (arr < 0) | (arr > 1)
    if np.any(outside):
        bad = float(arr[outside].flat[0])
        raise ValueError(f"{name} must lie in [0, 1] (a probability), got {bad!r}")
    return arr


def sech_squared(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 / cosh(x)^2 without overflow for large |x|."""
    decay = np.exp(-2.0 * np.abs(x))
    return 4.0 * decay / (1.0 + decay) ** 2


def x_over_sinh(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """x / sinh(x), equal to 1 at x = 0, without overflow for large |x|."""
    # Beyond |x| = 1000 the value underflows to 0 anyway; the cap keeps 2 a e^{-a} finite.
    ax = np.minimum(np.abs(x), 1000.0)
    out = np.ones_like(ax)
    nonzero = ax > 0
    a = ax[nonzero]
    # 2 a e^{-a} / (1 - e^{-2a}) is sinh-free, so it neither overflows nor loses the tail.
    out[nonzero] = 2.0 * a * np.exp(-a) / -np.expm1(-2.0 * a)
    return out


def log_sinh(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """log(sinh(x)) for x > 0, accurate for tiny and huge x."""
    return x - np.log(2.0) + np.log(-np.expm1(-2.0 * x))
