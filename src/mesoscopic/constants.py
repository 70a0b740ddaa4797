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

from . import _checks

__all__ = [
    "G0",
    "R_K",
    "J_to_meV",
    "conductance_quantum",
    "confinement_curvature",
    "density_to_fermi_energy",
    "e",
    "e2_h",
    "eV",
    "fermi_energy_to_density",
    "field_to_flux",
    "filling_factor",
    "flux_quantum",
    "flux_to_field",
    "h",
    "hbar",
    "k_B",
    "k_B_meV",
    "kelvin_to_meV",
    "m_e",
    "meV",
    "meV_to_J",
    "meV_to_kelvin",
    "mu_B",
    "mu_B_meV",
    "subband_spacing",
    "superconducting_flux_quantum",
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
mu_B: float = _sc.physical_constants["Bohr magneton"][0]
"""Bohr magneton ``e hbar / 2 m_e`` in J/T."""
mu_B_meV: float = mu_B / meV
"""Bohr magneton in meV/T (0.05788 meV/T)."""
flux_quantum: float = h / e
"""Flux quantum ``h/e`` in weber (T m^2): one Aharonov-Bohm period, the unit of the Peierls
flux per cell of :mod:`mesoscopic` (``phi`` in units of ``h/e``)."""
superconducting_flux_quantum: float = h / (2 * e)
"""Superconducting flux quantum ``h/2e`` in weber (a Cooper pair, charge 2e); half of
:data:`flux_quantum`."""


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


# --------------------------------------------------------------------------------------------
# Relations of a two-dimensional electron gas, computed by hand in every lab notebook
# --------------------------------------------------------------------------------------------


def _mass(effective_mass: float) -> float:
    value = float(effective_mass)
    if not value > 0:
        raise ValueError(
            f"effective_mass must be > 0, in units of the electron mass (0.067 for GaAs), "
            f"got {effective_mass!r}"
        )
    return value * m_e


def _degeneracy(spin_degeneracy: int, valley_degeneracy: int) -> int:
    spin = _checks.spin_degeneracy(spin_degeneracy)
    return spin * _checks.positive_int(valley_degeneracy, "valley_degeneracy")


def density_to_fermi_energy(
    density: ArrayLike,
    effective_mass: float,
    *,
    spin_degeneracy: int = 2,
    valley_degeneracy: int = 1,
) -> NDArray[np.float64]:
    """Fermi energy of a 2DEG, ``E_F = 2 pi hbar^2 n / (g_s g_v m*)``, in meV.

    From ``n = g_s g_v m* E_F / (2 pi hbar^2)`` (a constant density of states).

    Parameters
    ----------
    density : array_like
        Sheet density ``n`` in m^-2 (1e15 m^-2 = 1e11 cm^-2).
    effective_mass : float
        ``m*`` in units of the electron mass (0.067 for GaAs).
    spin_degeneracy, valley_degeneracy : int, optional
        ``g_s`` (default 2) and ``g_v`` (default 1; 2 for graphene or Si(100)).

    Examples
    --------
    GaAs at n = 2e11 cm^-2:

    >>> round(float(density_to_fermi_energy(2e15, 0.067)), 3)
    7.146
    """
    n = np.asarray(density, dtype=float)
    return np.asarray(
        2
        * np.pi
        * hbar**2
        * n
        / (_degeneracy(spin_degeneracy, valley_degeneracy) * _mass(effective_mass))
        / meV,
        dtype=float,
    )


def fermi_energy_to_density(
    fermi_energy: ArrayLike,
    effective_mass: float,
    *,
    spin_degeneracy: int = 2,
    valley_degeneracy: int = 1,
) -> NDArray[np.float64]:
    """Sheet density of a 2DEG, ``n = g_s g_v m* E_F / (2 pi hbar^2)``, in m^-2.

    Parameters
    ----------
    fermi_energy : array_like
        ``E_F`` in meV, measured from the band bottom.
    effective_mass : float
        ``m*`` in units of the electron mass.
    spin_degeneracy, valley_degeneracy : int, optional
        ``g_s`` (default 2) and ``g_v`` (default 1).

    Examples
    --------
    >>> f"{float(fermi_energy_to_density(10.0, 0.067)):.4g}"
    '2.799e+15'
    >>> round(float(density_to_fermi_energy(fermi_energy_to_density(10.0, 0.2), 0.2)), 12)
    10.0
    """
    energy = np.asarray(fermi_energy, dtype=float) * meV
    g = _degeneracy(spin_degeneracy, valley_degeneracy)
    return np.asarray(g * _mass(effective_mass) * energy / (2 * np.pi * hbar**2), dtype=float)


def filling_factor(density: ArrayLike, field: ArrayLike) -> NDArray[np.float64]:
    """Landau-level filling factor ``nu = n h / (e B)`` (dimensionless).

    Parameters
    ----------
    density : array_like
        Sheet density in m^-2.
    field : array_like
        Magnetic field in tesla, nonzero; broadcast with `density`.

    Examples
    --------
    >>> round(float(filling_factor(2e15, 4.136)), 3)   # n h/e = 8.27 T: nu = 2 at 4.136 T
    2.0
    """
    b = np.asarray(field, dtype=float)
    if np.any(b == 0):
        raise ValueError("field must be nonzero: the filling factor diverges at B = 0")
    return np.asarray(np.asarray(density, dtype=float) * flux_quantum / b, dtype=float)


def subband_spacing(curvature: ArrayLike, effective_mass: float) -> NDArray[np.float64]:
    """Subband spacing ``hbar omega`` in meV of a parabolic confinement ``V = k y^2 / 2``.

    ``omega = sqrt(k / m*)``; the inverse is :func:`confinement_curvature`.

    Parameters
    ----------
    curvature : array_like
        ``k = d^2 V / dy^2`` in meV/nm^2, ``>= 0``.
    effective_mass : float
        ``m*`` in units of the electron mass.

    Examples
    --------
    >>> round(float(subband_spacing(0.01, 0.067)), 4)   # a soft QPC in GaAs
    3.3724
    """
    k = np.asarray(curvature, dtype=float)
    if np.any(k < 0):
        raise ValueError(f"curvature must be >= 0 (a confining parabola), got {float(k.min())!r}")
    omega = np.sqrt(k * meV / 1e-18 / _mass(effective_mass))
    return np.asarray(hbar * omega / meV, dtype=float)


def confinement_curvature(spacing: ArrayLike, effective_mass: float) -> NDArray[np.float64]:
    """Curvature ``k = m* omega^2`` in meV/nm^2 that gives the subband spacing ``hbar omega``.

    Parameters
    ----------
    spacing : array_like
        ``hbar omega`` in meV.
    effective_mass : float
        ``m*`` in units of the electron mass.

    Examples
    --------
    >>> round(float(confinement_curvature(subband_spacing(0.01, 0.067), 0.067)), 12)
    0.01
    """
    omega = np.asarray(spacing, dtype=float) * meV / hbar
    return np.asarray(_mass(effective_mass) * omega**2 * 1e-18 / meV, dtype=float)


def field_to_flux(field: ArrayLike, cell_area: ArrayLike) -> NDArray[np.float64]:
    """Flux per unit cell in units of ``h/e``: ``B A / (h/e)``.

    Parameters
    ----------
    field : array_like
        Magnetic field in tesla.
    cell_area : array_like
        Area of a unit cell in nm^2 (``a^2`` for a square lattice of constant ``a``).

    Examples
    --------
    >>> round(float(field_to_flux(1.0, 5.0**2)), 6)   # 1 T through a 5 nm x 5 nm cell
    0.006045
    """
    area = np.asarray(cell_area, dtype=float) * 1e-18
    return np.asarray(np.asarray(field, dtype=float) * area / flux_quantum, dtype=float)


def flux_to_field(flux: ArrayLike, cell_area: ArrayLike) -> NDArray[np.float64]:
    """Magnetic field in tesla whose flux per unit cell (area in nm^2) is `flux` ``h/e``.

    Examples
    --------
    >>> round(float(flux_to_field(field_to_flux(2.5, 25.0), 25.0)), 12)
    2.5
    """
    area = np.asarray(cell_area, dtype=float) * 1e-18
    if np.any(area <= 0):
        raise ValueError("cell_area must be > 0 (nm^2)")
    return np.asarray(np.asarray(flux, dtype=float) * flux_quantum / area, dtype=float)
