"""Mesoscopic capacitor: charge-relaxation resistance and electrochemical capacitance.

A cavity connected to a single reservoir through N channels, with scattering
matrix ``S(E)`` (N x N, unitary, reflection only), forms the plate of a capacitor.
Its low-frequency admittance is ``-i w C_mu + w^2 C_mu^2 R_q`` (Büttiker, Thomas and
Prêtre, Phys. Lett. A 180, 364 (1993)), with, at zero temperature,

    R_q = (h / (2 e^2)) sum_n nu_n^2 / (sum_n nu_n)^2,

where ``nu_n`` are the eigenvalues of the Wigner-Smith matrix
``(1 / (2 pi i)) S^dagger dS/dE`` (the partial densities of states of the channels,
``nu_n = tau_n / h`` for delay times ``tau_n``), and
``1/C_mu = 1/C + 1/(e^2 nu)`` with ``nu = sum_n nu_n`` and C the geometric capacitance.
For one spin-resolved channel ``R_q = h/(2e^2)`` whatever the transmission of the
contact (measured by Gabelli et al., Science 313, 499 (2006)); for N identical
channels (e.g. a spin-degenerate one, N = 2) ``R_q = h/(2 N e^2)``.

Resistances are in units of h/e^2; densities of states in 1/(energy unit).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _checks
from . import _common

__all__ = [
    "cavity_density_of_states",
    "cavity_reflection_amplitude",
    "charge_relaxation_resistance",
    "electrochemical_capacitance",
    "wigner_smith_dos",
]


def wigner_smith_dos(s_matrix: ArrayLike, ds_denergy: ArrayLike) -> NDArray[np.float64]:
    """Partial densities of states: eigenvalues of ``(1/(2 pi i)) S^dagger dS/dE``.

    For unitary S the matrix is Hermitian and its eigenvalues ``nu_n`` are real; their
    sum is the density of states of the cavity (Friedel sum rule) and ``h nu_n`` are
    the Wigner-Smith delay times.

    Parameters
    ----------
    s_matrix : array_like, shape (..., N, N)
        Scattering matrix at energy E (complex, unitary).
    ds_denergy : array_like, shape (..., N, N)
        Its energy derivative dS/dE, in 1/(energy unit).

    Returns
    -------
    ndarray, shape (..., N)
        Partial densities of states, ascending, in 1/(energy unit).

    Examples
    --------
    >>> energy, delay = 0.3, 2.0          # S = exp(i 2 pi delay E): nu = delay
    >>> s = np.array([[np.exp(2j * np.pi * delay * energy)]])
    >>> wigner_smith_dos(s, 2j * np.pi * delay * s)
    array([2.])
    """
    s = _complex_matrix(s_matrix, "s_matrix")
    ds = _complex_matrix(ds_denergy, "ds_denergy")
    if s.shape != ds.shape:
        raise ValueError(
            f"s_matrix and ds_denergy must have the same shape, got {s.shape} and {ds.shape}"
        )
    product = np.conj(np.swapaxes(s, -1, -2)) @ ds / (2j * np.pi)
    # The anti-Hermitian part vanishes for unitary S; symmetrize against rounding.
    hermitian = 0.5 * (product + np.conj(np.swapaxes(product, -1, -2)))
    return np.asarray(np.linalg.eigvalsh(hermitian), dtype=float)


def _complex_matrix(value: ArrayLike, name: str) -> NDArray[np.complex128]:
    try:
        arr = np.asarray(value, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a complex matrix of shape (..., N, N), got {value!r}"
        ) from exc
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must have shape (..., N, N), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (contains NaN or inf)")
    return arr


def charge_relaxation_resistance(
    partial_dos: ArrayLike, *, spin_degeneracy: int
) -> NDArray[np.float64]:
    """Büttiker-Thomas-Prêtre resistance ``(h/(2 e^2)) sum nu_n^2 / (sum nu_n)^2``.

    Parameters
    ----------
    partial_dos : array_like, shape (..., N)
        Partial densities of states ``nu_n`` of the N spin-resolved (or, with
        ``spin_degeneracy=2``, spin-degenerate) channels, e.g. from
        :func:`wigner_smith_dos`; any common unit. Their sum must not vanish.
    spin_degeneracy : {1, 2}
        g_s: with 2, every channel counts twice (``nu_n`` is one spin's share), which
        halves the result.

    Returns
    -------
    ndarray, shape (...)
        Charge-relaxation resistance at zero temperature, in units of h/e^2.

    Examples
    --------
    >>> float(charge_relaxation_resistance([3.7], spin_degeneracy=1))   # universal h/2e^2
    0.5
    >>> float(charge_relaxation_resistance([1.0, 1.0], spin_degeneracy=2))
    0.125
    """
    g_s = _common.spin_degeneracy(spin_degeneracy)
    nu = _checks.real_array(partial_dos, "partial_dos")
    if nu.ndim < 1 or nu.shape[-1] == 0:
        raise ValueError(f"partial_dos must have shape (..., N) with N >= 1, got {nu.shape}")
    total = nu.sum(axis=-1)
    if np.any(total == 0):
        raise ValueError(
            "the partial densities of states sum to zero, so the charge-relaxation "
            "resistance is undefined (the cavity has no states at this energy)"
        )
    return (nu**2).sum(axis=-1) / (2.0 * g_s * total**2)


def cavity_reflection_amplitude(
    energy: ArrayLike, *, transmission: ArrayLike, level_spacing: ArrayLike
) -> NDArray[np.complex128]:
    """Reflection amplitude of a single-channel cavity behind a QPC (Gabelli et al. 2006).

    An edge channel circulating around a dot of level spacing Delta and coupled
    through a QPC of transmission T returns with amplitude

        r(E) = (sqrt(R) - exp(i phi)) / (1 - sqrt(R) exp(i phi)),  phi = 2 pi E / Delta,

    with ``R = 1 - T``; ``|r| = 1``. The dot's levels (resonances of r) sit at
    ``E = n Delta``; shift `energy` to move them.

    Parameters
    ----------
    energy : array_like
        Energy E.
    transmission : array_like
        QPC transmission T in [0, 1].
    level_spacing : array_like
        Level spacing ``Delta > 0`` of the dot, same unit as `energy`. All broadcast.

    Returns
    -------
    ndarray of complex
        Reflection amplitude, the broadcast shape of the inputs.

    Examples
    --------
    >>> r = cavity_reflection_amplitude([0.0, 0.25], transmission=0.5, level_spacing=1.0)
    >>> np.round(np.abs(r), 12)
    array([1., 1.])
    """
    e = _checks.real_array(energy, "energy")
    t = _common.probability(transmission, "transmission")
    spacing = _checks.positive(level_spacing, "level_spacing")
    e, t, spacing = np.broadcast_arrays(e, t, spacing)
    rho = np.sqrt(1.0 - t)
    phase = np.exp(2j * np.pi * e / spacing)
    # 1 - rho e^{i phi} vanishes only for rho = 1 and phi = 2 pi n; there r = -1 (closed dot).
    denominator = 1.0 - rho * phase
    out = np.full(e.shape, -1.0 + 0j)
    regular = denominator != 0
    out[regular] = (rho[regular] - phase[regular]) / denominator[regular]
    return out


def cavity_density_of_states(
    energy: ArrayLike, *, transmission: ArrayLike, level_spacing: ArrayLike
) -> NDArray[np.float64]:
    """Density of states ``(1/(2 pi i)) r^* dr/dE`` of the single-channel cavity.

    From :func:`cavity_reflection_amplitude`,

        nu(E) = (1/Delta) T / (1 + R - 2 sqrt(R) cos(2 pi E / Delta)),

    a comb of Lorentzian-like peaks of weight one state each (its average over a
    period is ``1/Delta``), broadened by the QPC; ``T = 1`` gives the flat ``1/Delta``.

    Parameters
    ----------
    energy : array_like
        Energy E.
    transmission : array_like
        QPC transmission T in (0, 1] (T = 0 is a closed dot with delta-function levels).
    level_spacing : array_like
        Level spacing ``Delta > 0``, same unit as `energy`. All broadcast.

    Returns
    -------
    ndarray
        Density of states in 1/(unit of `energy`), per spin.

    Examples
    --------
    >>> nu = cavity_density_of_states([0.0, 0.5], transmission=0.5, level_spacing=2.0)
    >>> [round(float(x), 6) for x in nu]
    [2.914214, 0.166667]
    """
    e = _checks.real_array(energy, "energy")
    t = _common.probability(transmission, "transmission")
    if np.any(t == 0):
        raise ValueError(
            "transmission must be > 0 for a density of states: a closed dot (T = 0) has "
            "delta-function levels"
        )
    spacing = _checks.positive(level_spacing, "level_spacing")
    e, t, spacing = np.broadcast_arrays(e, t, spacing)
    rho = np.sqrt(1.0 - t)
    # 1 - rho = T / (1 + rho): no cancellation for a nearly closed QPC.
    denominator = (t / (1.0 + rho)) ** 2 + 4.0 * rho * np.sin(np.pi * e / spacing) ** 2
    return t / (spacing * denominator)


def electrochemical_capacitance(
    density_of_states: ArrayLike, *, geometric_charging_energy: ArrayLike
) -> NDArray[np.float64]:
    """Electrochemical capacitance ``C_mu`` of a cavity, in units of ``e^2 / (energy unit)``.

    The geometric capacitance C and the quantum capacitance ``C_q = e^2 nu`` act in
    series: ``1/C_mu = 1/C + 1/(e^2 nu)``. Writing ``E_g = e^2/C`` (note: not
    ``e^2/(2C)``), ``C_mu / e^2 = nu / (1 + nu E_g)``.

    Parameters
    ----------
    density_of_states : array_like
        Total density of states nu of the cavity (all channels and spins), ``>= 0``,
        in 1/(energy unit).
    geometric_charging_energy : array_like
        ``E_g = e^2 / C >= 0`` in the same energy unit (0: no geometric capacitance
        limit, ``C_mu = e^2 nu``). Broadcast with `density_of_states`.

    Returns
    -------
    ndarray
        ``C_mu / e^2`` in 1/(energy unit); multiply by ``e^2`` and convert the energy
        unit to joule for farad.

    Examples
    --------
    >>> electrochemical_capacitance([0.5, 1e9], geometric_charging_energy=1.0)
    array([0.33333333, 1.        ])
    """
    nu = _checks.positive(density_of_states, "density_of_states", allow_zero=True)
    e_g = _checks.positive(geometric_charging_energy, "geometric_charging_energy", allow_zero=True)
    return nu / (1.0 + nu * e_g)
