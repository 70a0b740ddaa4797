"""Physical constants (CODATA, via :mod:`scipy.constants`) and unit conversions.

This is the only module that knows about SI units. Everything else in
:mod:`mesoscopic` works in the units the user chose (tight-binding energies in
units of the hopping, temperatures as ``kT`` in the same energy unit) and returns
conductances in units of ``e^2/h`` (optionally times a spin degeneracy).

Examples
--------
>>> from mesoscopic import constants as c
>>> round(c.G0 * 1e6, 4)          # 2e^2/h in microsiemens
77.4809
>>> round(c.R_K)                   # von Klitzing constant h/e^2 in ohm
25813
>>> round(float(c.kelvin_to_meV(1.0)), 6)  # k_B * 1 K in meV
0.086173
"""

from __future__ import annotations

import numpy as np
import scipy.constants as _sc
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "G0",
    "R_K",
    "J_to_meV",
    "conductance_quantum",
    "e",
    "e2_h",
    "eV",
    "h",
    "hbar",
    "k_B",
    "k_B_meV",
    "kelvin_to_meV",
    "m_e",
    "meV",
    "meV_to_J",
    "meV_to_kelvin",
    "to_siemens",
]

e: float = _sc.e
"""Elementary charge in coulomb."""
h: float = _sc.h
"""Planck constant in J s."""
hbar: float = _sc.hbar
"""Reduced Planck constant in J s."""
k_B: float = _sc.k
"""Boltzmann constant in J/K."""
m_e: float = _sc.m_e
"""Electron mass in kg."""
eV: float = _sc.electron_volt
"""One electronvolt in joule."""
meV: float = 1e-3 * _sc.electron_volt
"""One millielectronvolt in joule."""

e2_h: float = e**2 / h
"""Conductance e^2/h in siemens (one spin-resolved channel)."""
G0: float = 2 * e**2 / h
"""Conductance quantum 2e^2/h in siemens (one spin-degenerate channel)."""
conductance_quantum: float = G0
"""Alias of :data:`G0`."""
R_K: float = h / e**2
"""von Klitzing constant h/e^2 in ohm."""
k_B_meV: float = k_B / meV
"""Boltzmann constant in meV/K."""


def meV_to_J(energy: ArrayLike) -> NDArray[np.float64]:
    """Convert energies from meV to joule.

    >>> float(meV_to_J(1000.0)) == eV
    True
    """
    return np.asarray(energy, dtype=float) * meV


def J_to_meV(energy: ArrayLike) -> NDArray[np.float64]:
    """Convert energies from joule to meV.

    >>> round(float(J_to_meV(eV)), 9)
    1000.0
    """
    return np.asarray(energy, dtype=float) / meV


def kelvin_to_meV(temperature: ArrayLike) -> NDArray[np.float64]:
    """Thermal energy ``k_B T`` in meV for a temperature in kelvin.

    >>> round(float(kelvin_to_meV(300.0)), 3)
    25.852
    """
    return np.asarray(temperature, dtype=float) * k_B_meV


def meV_to_kelvin(energy: ArrayLike) -> NDArray[np.float64]:
    """Temperature in kelvin whose thermal energy ``k_B T`` is the given energy in meV.

    >>> round(float(meV_to_kelvin(kelvin_to_meV(4.2))), 12)
    4.2
    """
    return np.asarray(energy, dtype=float) / k_B_meV


def to_siemens(conductance: ArrayLike, *, unit: str = "e2/h") -> NDArray[np.float64]:
    """Convert a dimensionless conductance to siemens.

    Parameters
    ----------
    conductance : array_like
        Conductance in the unit named by `unit`.
    unit : {"e2/h", "2e2/h"}
        ``"e2/h"`` for conductances in units of e^2/h (the package default),
        ``"2e2/h"`` for units of the spin-degenerate quantum G0.

    Examples
    --------
    >>> round(float(to_siemens(1.0, unit="2e2/h")) * 1e6, 4)
    77.4809
    """
    scale = {"e2/h": e2_h, "2e2/h": G0}
    if unit not in scale:
        raise ValueError(f"unknown conductance unit {unit!r}; valid units are 'e2/h' and '2e2/h'")
    return np.asarray(conductance, dtype=float) * scale[unit]
