"""Saddle-point quantum point contact (Büttiker, Phys. Rev. B 41, 7906 (1990)).

The constriction is modelled by the saddle potential

    V(x, y) = V0 - m* w_x^2 x^2 / 2 + m* w_y^2 y^2 / 2.

Transverse motion is a harmonic oscillator, so mode ``n = 0, 1, 2, ...`` sees an
inverted parabolic barrier of top ``V0 + hbar w_y (n + 1/2)`` along x, whose exact
(Kemble) transmission is

    T_n(E) = 1 / (1 + exp(-2 pi eps_n)),  eps_n = (E - hbar w_y (n + 1/2) - V0) / (hbar w_x).

Modes do not mix. Energies ``E``, ``V0``, ``hbar w_x``, ``hbar w_y`` and a Zeeman
energy may be in any unit, the same for all (meV is customary). ``hbar w_y / hbar w_x``
sets the flatness of the plateaus: they are sharp when ``w_y >> w_x``.

Spin: the orbital modes are spin-degenerate unless a Zeeman energy ``E_z`` splits
each into two species whose mode energies are shifted by ``+E_z/2`` and ``-E_z/2``;
a species' transmission is ``T_n(E -+ E_z/2)``. Finite temperature is not applied
here: feed the energy-resolved transmissions to the Landauer integrals.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from .. import _checks
from . import _common

__all__ = ["saddle_point_conductance", "saddle_point_transmission"]

# Modes with eps_n below -_CLOSED_EPS have T_n < exp(-2 pi 7) ~ 1e-19: negligible in double.
_CLOSED_EPS = 7.0


def _mode_transmissions(
    e: NDArray[np.float64], v0: float, hwx: float, hwy: float, num_modes: int
) -> NDArray[np.float64]:
    n = np.arange(num_modes, dtype=float)
    eps = (e[..., np.newaxis] - hwy * (n + 0.5) - v0) / hwx
    # expit is the overflow-free logistic function 1 / (1 + exp(-x)).
    return expit(2.0 * np.pi * eps)


def _saddle_parameters(
    barrier_height: float, hbar_omega_x: float, hbar_omega_y: float
) -> tuple[float, float, float]:
    v0 = float(_checks.real_array(barrier_height, "barrier_height"))
    hwx = float(_checks.positive(hbar_omega_x, "hbar_omega_x"))
    hwy = float(_checks.positive(hbar_omega_y, "hbar_omega_y"))
    return v0, hwx, hwy


def saddle_point_transmission(
    energy: ArrayLike,
    *,
    barrier_height: float,
    hbar_omega_x: float,
    hbar_omega_y: float,
    num_modes: int,
) -> NDArray[np.float64]:
    """Per-mode transmissions ``T_n(E)`` of the saddle-point constriction (one spin species).

    Parameters
    ----------
    energy : array_like
        Energy E, any shape ``S``, in the unit of the other energies. For a Zeeman-split
        species whose mode energies are shifted by ``+-E_z/2``, pass ``E -+ E_z/2``.
    barrier_height : float
        Saddle-point energy V0.
    hbar_omega_x : float
        Curvature energy ``hbar w_x > 0`` of the barrier along the transport direction.
    hbar_omega_y : float
        Transverse confinement energy ``hbar w_y > 0`` (mode spacing).
    num_modes : int
        Number of transverse modes n = 0 .. num_modes - 1 to return, ``>= 1``.

    Returns
    -------
    ndarray, shape ``S + (num_modes,)``
        Transmission probabilities of each mode, in [0, 1].

    Examples
    --------
    >>> t = saddle_point_transmission([0.5, 1.5], barrier_height=0.0, hbar_omega_x=0.1,
    ...                               hbar_omega_y=1.0, num_modes=2)
    >>> t[0]            # E = 0.5: the top of mode 0's barrier; mode 1 is closed
    array([5.00000000e-01, 5.15790006e-28])
    >>> np.round(t[1], 6)   # E = 1.5: mode 0 open, mode 1 at its barrier top
    array([1. , 0.5])
    """
    e = _checks.real_array(energy, "energy")
    modes = _common.integer_option(num_modes, "num_modes", minimum=1)
    v0, hwx, hwy = _saddle_parameters(barrier_height, hbar_omega_x, hbar_omega_y)
    return _mode_transmissions(e, v0, hwx, hwy, modes)


def saddle_point_conductance(
    energy: ArrayLike,
    *,
    barrier_height: float,
    hbar_omega_x: float,
    hbar_omega_y: float,
    spin_degeneracy: int | None = None,
    zeeman_energy: float | None = None,
    num_modes: int | None = None,
) -> NDArray[np.float64]:
    """Zero-temperature conductance of the saddle-point QPC in units of e^2/h.

    Give exactly one of `spin_degeneracy` and `zeeman_energy`:

    * ``spin_degeneracy=g_s``: ``G = g_s sum_n T_n(E)`` (steps of 2e^2/h for
      ``g_s = 2``; ``g_s = 1`` gives the total transmission of one spin species);
    * ``zeeman_energy=E_z``: the two spin species are counted separately,
      ``G = sum_n [T_n(E + E_z/2) + T_n(E - E_z/2)]``, with no extra factor; when
      ``|E_z|`` is a sizeable fraction of ``hbar w_y`` each step of 2e^2/h splits into two
      steps of e^2/h (the spin-split half plateaus). ``E_z = 0`` equals ``g_s = 2``.

    Parameters
    ----------
    energy : array_like
        Fermi energy E, any shape, in the unit of the other energies.
    barrier_height, hbar_omega_x, hbar_omega_y : float
        Saddle parameters V0, ``hbar w_x > 0``, ``hbar w_y > 0``
        (see :func:`saddle_point_transmission`).
    spin_degeneracy : {1, 2}, optional
        Spin degeneracy of the orbital modes (without Zeeman splitting).
    zeeman_energy : float, optional
        Zeeman splitting E_z (its sign only swaps the species' labels).
    num_modes : int, optional
        Number of transverse modes to include. By default every mode whose
        transmission exceeds about 1e-19 at the highest energy given is included,
        so the sum is exact to double precision.

    Returns
    -------
    ndarray
        Conductance in units of e^2/h, the shape of `energy`.

    Examples
    --------
    >>> saddle = dict(barrier_height=0.0, hbar_omega_x=0.05, hbar_omega_y=1.0)
    >>> g = saddle_point_conductance([1.0, 2.0, 3.0], spin_degeneracy=2, **saddle)
    >>> np.round(g, 6)
    array([2., 4., 6.])
    >>> g = saddle_point_conductance([0.5, 1.0, 1.5], zeeman_energy=0.5, **saddle)
    >>> np.round(g, 6)
    array([1., 2., 3.])
    """
    if (spin_degeneracy is None) == (zeeman_energy is None):
        raise ValueError(
            "give exactly one of spin_degeneracy (1 or 2, no Zeeman splitting) and "
            f"zeeman_energy (spin species counted separately); got spin_degeneracy="
            f"{spin_degeneracy!r} and zeeman_energy={zeeman_energy!r}"
        )
    e = _checks.real_array(energy, "energy")
    v0, hwx, hwy = _saddle_parameters(barrier_height, hbar_omega_x, hbar_omega_y)
    if zeeman_energy is not None:
        half_split = 0.5 * abs(float(_checks.real_array(zeeman_energy, "zeeman_energy")))
        shifted: tuple[NDArray[np.float64], ...] = (e + half_split, e - half_split)
        weight = 1
    else:
        g_s = _common.spin_degeneracy(spin_degeneracy)
        half_split = 0.0
        shifted = (e,)
        weight = g_s

    if num_modes is None:
        top = float(np.max(e)) + half_split if e.size else v0
        # Every n with eps_n > -_CLOSED_EPS, plus one spare; at least one mode.
        modes = max(1, math.floor((top - v0 + _CLOSED_EPS * hwx) / hwy - 0.5) + 2)
    else:
        modes = _common.integer_option(num_modes, "num_modes", minimum=1)

    total = np.zeros(e.shape)
    for species_energy in shifted:
        total += _mode_transmissions(species_energy, v0, hwx, hwy, modes).sum(axis=-1)
    return weight * total
