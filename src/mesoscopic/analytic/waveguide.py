"""Hard-wall strip (quantum wire): transverse subbands and the channel staircase.

A two-dimensional strip of width ``W`` with infinitely high walls has transverse
modes ``sin(n pi y / W)`` with subband bottoms

    E_n = hbar^2 / (2 m*) (n pi / W)^2,    n = 1, 2, 3, ...

Units: energies in meV, widths in nm, the effective mass ``m*`` in units of the free
electron mass (default: GaAs, 0.067). Energies are measured from the band bottom of
the two-dimensional electron gas.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from . import _common

__all__ = [
    "hard_wall_conductance",
    "hard_wall_open_channels",
    "hard_wall_subband_energies",
]


def _lowest_subband(width: ArrayLike, effective_mass: float) -> NDArray[np.float64]:
    """E_1 = hbar^2 pi^2 / (2 m* W^2) in meV for widths in nm."""
    w = _checks.positive(width, "width")
    return _common.kinetic_prefactor(effective_mass) * (np.pi / w) ** 2


def hard_wall_subband_energies(
    width: ArrayLike,
    *,
    num_subbands: int,
    effective_mass: float = _common.GAAS_EFFECTIVE_MASS,
) -> NDArray[np.float64]:
    """Subband bottoms ``E_n = hbar^2 (n pi / W)^2 / (2 m*)`` of a hard-wall strip.

    Parameters
    ----------
    width : array_like
        Strip width W in nm, ``> 0``; scalar or array of any shape ``S``.
    num_subbands : int
        Number of subbands to return, ``>= 1`` (n = 1 .. num_subbands).
    effective_mass : float, optional
        Effective mass in units of the free electron mass m_e (default 0.067, GaAs).

    Returns
    -------
    ndarray, shape ``S + (num_subbands,)``
        Subband bottoms in meV, increasing along the last axis.

    Examples
    --------
    >>> energies = hard_wall_subband_energies(100.0, num_subbands=3)
    >>> [round(float(e), 4) for e in energies]
    [0.5612, 2.245, 5.0512]
    >>> float(energies[1] / energies[0])
    4.0
    """
    count = _common.integer_option(num_subbands, "num_subbands", minimum=1)
    e1 = _lowest_subband(width, effective_mass)
    n = np.arange(1, count + 1, dtype=float)
    return e1[..., np.newaxis] * n**2


def hard_wall_open_channels(
    energy: ArrayLike,
    width: ArrayLike,
    *,
    effective_mass: float = _common.GAAS_EFFECTIVE_MASS,
) -> NDArray[np.int64]:
    """Number of propagating channels N(E) = #{n : E_n < E} of a hard-wall strip.

    A subband whose bottom equals the energy exactly (``E == E_n``) has zero
    longitudinal velocity and carries no current, so it is *not* counted: the
    staircase is continuous from the left and jumps just above each threshold.
    The comparison uses the same floating-point values that
    :func:`hard_wall_subband_energies` returns, so passing one of those energies
    back gives exactly the number of subbands below it.

    Parameters
    ----------
    energy : array_like
        Energy E in meV, measured from the two-dimensional band bottom; any real value
        (``E <= E_1`` gives 0).
    width : array_like
        Strip width W in nm, ``> 0``. Broadcast against `energy`.
    effective_mass : float, optional
        Effective mass in units of m_e (default 0.067, GaAs).

    Returns
    -------
    ndarray of int64
        Number of open channels, the broadcast shape of `energy` and `width`.

    Examples
    --------
    >>> e = hard_wall_subband_energies(100.0, num_subbands=3)
    >>> hard_wall_open_channels([0.0, 1.0, 3.0, 6.0], 100.0)
    array([0, 1, 2, 3])
    >>> int(hard_wall_open_channels(e[1], 100.0))   # exactly at E_2: the second is closed
    1
    """
    e = _checks.real_array(energy, "energy")
    e1 = _lowest_subband(width, effective_mass)
    e, e1 = np.broadcast_arrays(e, e1)
    ratio = np.clip(e, 0.0, None) / e1
    n = np.floor(np.sqrt(ratio))
    # The square root may land one off near a threshold; settle it with the exact test.
    n = np.where(e1 * (n + 1.0) ** 2 < e, n + 1.0, n)
    n = np.where((n > 0) & (e1 * n**2 >= e), n - 1.0, n)
    return n.astype(np.int64)


def hard_wall_conductance(
    energy: ArrayLike,
    width: ArrayLike,
    *,
    spin_degeneracy: int,
    effective_mass: float = _common.GAAS_EFFECTIVE_MASS,
) -> NDArray[np.float64]:
    """Ballistic conductance ``g_s N(E)`` of a clean hard-wall strip, in units of e^2/h.

    Every open channel transmits perfectly, so the conductance is the quantized
    staircase ``G = g_s (e^2/h) N(E)`` with N from :func:`hard_wall_open_channels`.

    Parameters
    ----------
    energy : array_like
        Fermi energy in meV.
    width : array_like
        Strip width in nm, ``> 0``; broadcast against `energy`.
    spin_degeneracy : {1, 2}
        g_s: 2 for spin-degenerate channels (steps of 2e^2/h), 1 for spin-resolved ones.
    effective_mass : float, optional
        Effective mass in units of m_e (default 0.067, GaAs).

    Returns
    -------
    ndarray
        Conductance in units of e^2/h, the broadcast shape of the inputs.

    Examples
    --------
    >>> hard_wall_conductance([1.0, 3.0], 100.0, spin_degeneracy=2)
    array([2., 4.])
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    channels = hard_wall_open_channels(energy, width, effective_mass=effective_mass)
    return g_s * channels.astype(float)
