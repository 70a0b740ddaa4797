"""Current noise of multi-terminal conductors: thermal and shot noise from the S-matrix.

The zero-frequency current-noise matrix of a phase-coherent conductor with terminals
``i = 0 .. n-1``, reservoir chemical potentials ``mu_i`` and temperatures ``kT_i``, is
Büttiker's formula (M. Büttiker, Phys. Rev. B 46, 12485 (1992); Ya. M. Blanter and
M. Büttiker, Phys. Rep. 336, 1 (2000), eq. (61)):

    S_ij = (e^2/h) g_s sum_{k,l} int dE Tr[A_kl(i; E) A_lk(j; E)]
                                        [f_k (1 - f_l) + f_l (1 - f_k)],

    A_kl(i; E) = delta_ik delta_il 1 - s_ik^dagger(E) s_il(E),

with ``s_ik`` the block of the S-matrix from lead ``k`` into lead ``i`` and ``f_k`` the
Fermi function of reservoir ``k``. Pairing the terms ``(k, l)`` and ``(l, k)`` makes
``S_ij`` real and symmetric; written with one Fermi product it reads
``(2 e^2/h) g_s Re sum_{k,l} int Tr[A_kl(i) A_lk(j)] f_k (1 - f_l) dE``.

Convention and units
--------------------
``S_ij`` is the symmetrized spectral density of Blanter and Büttiker,
``2 pi delta(w + w') S_ij(w) = <dI_i(w) dI_j(w') + dI_j(w') dI_i(w)>`` at ``w -> 0``:
the one-sided density per unit of positive frequency, so that a current measured in a
bandwidth ``df`` fluctuates by ``<dI^2> = S df``. In this convention Poissonian shot noise is
Schottky's ``S = 2 e I`` and equilibrium noise is ``S = 4 kT G`` (two terminals), or
``S_ij = 2 kT (G_ij + G_ji)`` in general. Noise is returned in units of
``e^2/h`` times the energy unit of the S-matrices (the spin degeneracy ``g_s`` included):
multiply by :data:`mesoscopic.constants.e2_h` and by the energy unit in joule (e.g.
:data:`mesoscopic.constants.meV`) for ``A^2/Hz``. Rows and columns sum to zero (current
conservation): ``sum_i S_ij = 0 = sum_j S_ij``.

Two limits that need a single S-matrix: at zero temperature and for S energy-independent
over the bias window, a two-terminal conductor has ``S = 2 (e^3 |V| / h) g_s
sum_n T_n (1 - T_n)`` with ``T_n`` the eigenvalues of ``t^dagger t``
(:func:`shot_noise_matrix`), and the Fano factor ``F = S / (2 e I) =
sum_n T_n (1 - T_n) / sum_n T_n`` (:func:`fano_factor`).

Energy integral
---------------
:func:`noise_matrix` takes S-matrices sampled on an energy grid. The real coefficients
``Re Tr[A_kl(i) A_lk(j)]`` are interpolated between the grid energies (not-a-knot cubic
spline, monotone cubic or linear, as in :mod:`mesoscopic.landauer`) and the interpolant is
integrated against the Fermi products with 10-point Gauss-Legendre rules on panels bounded by
the grid energies, the chemical potentials and, within ``34 kT_k`` of every ``mu_k``,
sub-panels of width ``kT_k / 2``: the quadrature is exact to rounding for the interpolant,
so the only approximation is the interpolation of ``S(E)`` (which the grid must resolve).
The kernels are below ``1e-14`` of their peak beyond ``34 kT`` from the chemical potentials,
so the grid must cover ``[min_k(mu_k - 34 kT_k), max_k(mu_k + 34 kT_k)]``; at zero
temperature that is the interval between the chemical potentials, integrated exactly.

:func:`noise_matrix_of_system` chooses that grid by itself unless given one: the adaptive
engine of :func:`mesoscopic.conductance` (:mod:`mesoscopic.linear_response`), with the
noise coefficients of the S-matrices as its samples and the Fermi products
``f_k (1 - f_l) + f_l (1 - f_k)`` of every pair of reservoirs as its kernels.

Examples
--------
A site of energy 1 on a chain (hopping -1) transmits ``T = 0.8`` at ``E = 0``; at zero
temperature and bias ``V = 0.1`` its shot noise is ``S = 2 V T (1 - T)``:

>>> from mesoscopic import noise
>>> from mesoscopic.leads import LeadData
>>> from mesoscopic.solvers import scattering_matrix
>>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
>>> s = scattering_matrix([[1.0]], [LeadData(**chain), LeadData(**chain)], energy=0.0)
>>> noise.shot_noise_matrix(s, mu=[0.1, 0.0]).round(12).tolist()
[[0.032, -0.032], [-0.032, 0.032]]
>>> round(noise.fano_factor(s, 1, 0), 12)
0.2
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import scipy.interpolate
from numpy.typing import ArrayLike, NDArray

from . import _checks, landauer
from .scattering import SMatrix
from .solvers.options import SolverOptions, solver_options

__all__ = [
    "fano_factor",
    "noise_matrix",
    "noise_matrix_of_system",
    "shot_noise_matrix",
    "transmission_eigenvalues",
]

Interpolation = Literal["cubic", "pchip", "linear"]

# Beyond |E - mu| = 34 kT the kernels f (1 - f) and f_k (1 - f_l) are below 1e-14 of their
# peak (the same window as mesoscopic.landauer).
_WINDOW_KT = landauer.THERMAL_WINDOW_KT
# Sub-panel width near a chemical potential, in units of that reservoir's kT: the Fermi
# function's poles at mu +- i pi kT are then 4 pi panel half-widths away, and a 10-point
# Gauss-Legendre rule integrates the kernel times a cubic to ~1e-16.
_PANEL_KT = 0.5
_GAUSS_ORDER = 10
_MIN_POINTS = {"cubic": 4, "pchip": 2, "linear": 2}
# Relative slack when checking that a grid built with linspace covers the window.
_COVERAGE_SLACK = 1e-12


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_smatrix(value: Any, name: str) -> SMatrix:
    if not isinstance(value, SMatrix):
        raise TypeError(
            f"{name} must be an SMatrix (from mesoscopic.smatrix), got {type(value).__name__}"
        )
    every = tuple(range(value.num_leads))
    if tuple(value.in_leads or ()) != every or tuple(value.out_leads or ()) != every:
        raise ValueError(
            f"{name} must hold the S-matrix of all leads in order; it has in_leads = "
            f"{list(value.in_leads or ())} and out_leads = {list(value.out_leads or ())} "
            f"(compute it with in_leads and out_leads left at their defaults)"
        )
    return value


def _per_terminal(value: ArrayLike, count: int, name: str, *, thermal: bool) -> NDArray[Any]:
    arr = _checks.temperature(value, name) if thermal else _checks.real_array(value, name)
    if arr.ndim == 0:
        return np.full(count, float(arr))
    if arr.shape != (count,):
        raise ValueError(
            f"{name} must be a scalar or have one entry per terminal, shape ({count},), "
            f"got shape {arr.shape}"
        )
    return arr


# --------------------------------------------------------------------------------------------
# Noise coefficients at one energy
# --------------------------------------------------------------------------------------------


def _mode_counts(smatrix: SMatrix) -> list[int]:
    """Open channels of every lead of an S-matrix."""
    return [modes.num_modes for modes in smatrix.lead_info]


def _lead_indicator(counts: Sequence[int]) -> NDArray[np.float64]:
    """(n_leads, n_modes) matrix that sums mode indices into their lead."""
    indicator = np.zeros((len(counts), sum(counts)))
    start = 0
    for lead, count in enumerate(counts):
        indicator[lead, start : start + count] = 1.0
        start += count
    return indicator


def _noise_coefficients(
    data: NDArray[np.complex128], counts: Sequence[int]
) -> NDArray[np.float64]:
    """``C[e, i, j, k, l] = Re Tr[A_kl(i) A_lk(j)]`` for S-matrices ``data[e]``.

    With ``P_i`` the projector on the modes of lead ``i``, the blocks ``A_kl(i)`` are the
    ``(k, l)`` blocks of the full matrix ``P_i - S^dagger P_i S``, so the trace is a sum
    of ``A(i)_ab A(j)_ba`` over modes ``a`` of lead ``k`` and ``b`` of lead ``l``.
    `data` has shape ``(n_energies, n_modes, n_modes)``, all with the same `counts`.
    """
    indicator = _lead_indicator(counts)
    leads, modes = indicator.shape
    out = np.zeros((data.shape[0], leads, leads, leads, leads))
    if modes == 0:
        return out
    # Bound the (chunk, leads, leads, modes, modes) temporaries to ~2**22 elements.
    chunk = max(1, 2**22 // (leads * leads * modes * modes))
    eye = np.eye(modes)
    for start in range(0, data.shape[0], chunk):
        s = data[start : start + chunk]
        # rows[:, i] = P_i S, so S^dagger P_i S = rows[:, i]^dagger rows[:, i].
        rows = indicator[None, :, :, None] * s[:, None, :, :]
        a = indicator[None, :, :, None] * eye - np.conj(np.swapaxes(rows, -1, -2)) @ rows
        products = a[:, :, None, :, :] * np.swapaxes(a, -1, -2)[:, None, :, :, :]
        summed = np.einsum("eijab,ka,lb->eijkl", products, indicator, indicator, optimize=True)
        out[start : start + chunk] = summed.real
    return out


def _pair_weights(mu: NDArray[np.float64]) -> NDArray[np.float64]:
    """``int [f_k (1 - f_l) + f_l (1 - f_k)] dE = |mu_k - mu_l|`` at zero temperature."""
    return np.abs(mu[:, None] - mu[None, :])


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def transmission_eigenvalues(
    smatrix: SMatrix, to_lead: int, from_lead: int
) -> NDArray[np.float64]:
    """Eigenvalues ``T_n`` of ``t^dagger t`` for the block ``t`` from one lead into another.

    Parameters
    ----------
    smatrix : SMatrix
        Scattering matrix at one energy.
    to_lead, from_lead : int
        Leads; ``t = smatrix.submatrix(to_lead, from_lead)``. With ``to_lead == from_lead``
        the result holds the reflection eigenvalues ``R_n`` of that lead.

    Returns
    -------
    (n_from,) float ndarray
        ``T_n`` in [0, 1], descending, one per open channel of `from_lead` (those beyond
        the open channels of `to_lead` are 0). ``sum T_n = smatrix.transmission(to, from)``.

    Examples
    --------
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> s = scattering_matrix([[1.0]], [LeadData(**chain), LeadData(**chain)], energy=0.0)
    >>> transmission_eigenvalues(s, 1, 0).round(12).tolist()
    [0.8]
    """
    s = _check_smatrix(smatrix, "smatrix")
    to_index = _checks.index(to_lead, s.num_leads, "to_lead")
    from_index = _checks.index(from_lead, s.num_leads, "from_lead")
    block = s.submatrix(to_index, from_index)
    values = np.zeros(block.shape[1])
    if block.size:
        # Squared singular values: stable for T_n close to 0 and 1 alike.
        singular = np.linalg.svd(block, compute_uv=False)
        values[: singular.size] = singular**2
    return np.clip(values, 0.0, 1.0)


def fano_factor(smatrix: SMatrix | Sequence[SMatrix], to_lead: int, from_lead: int) -> float:
    """Zero-temperature Fano factor ``F = sum_n T_n (1 - T_n) / sum_n T_n``.

    ``F = S / (2 e I)``: the shot noise over Schottky's Poisson value, in the linear-bias,
    zero-temperature limit of two terminals (or between two terminals of a multi-terminal
    conductor when the others are absent). ``F = 0`` for a clean ballistic conductor and
    ``F -> 1`` for tunnelling. Given several S-matrices (energies, disorder seeds), noise and
    current are summed first, ``F = sum T_n (1 - T_n) / sum T_n`` over all of them, which is
    the Fano factor of the averaged noise and current that an experiment measures.

    Parameters
    ----------
    smatrix : SMatrix or sequence of SMatrix
        One scattering matrix, or several to average over.
    to_lead, from_lead : int
        The two terminals.

    Returns
    -------
    float
        Dimensionless.

    Raises
    ------
    ValueError
        When there is no transmission at all (``F`` is undefined).

    Examples
    --------
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> leads = [LeadData(**chain), LeadData(**chain)]
    >>> impurity = scattering_matrix([[1.0]], leads, energy=0.0)    # T = 0.8
    >>> clean = scattering_matrix([[0.0]], leads, energy=0.0)       # T = 1
    >>> round(fano_factor(impurity, 1, 0), 12)
    0.2
    >>> round(fano_factor([impurity, clean], 1, 0), 12)             # 0.16 / 1.8
    0.088888888889
    """
    items = [smatrix] if isinstance(smatrix, SMatrix) else list(smatrix)
    if not items:
        raise ValueError("fano_factor needs at least one SMatrix, got an empty sequence")
    noise, transmitted = 0.0, 0.0
    for position, item in enumerate(items):
        name = "smatrix" if isinstance(smatrix, SMatrix) else f"smatrix[{position}]"
        _check_smatrix(item, name)
        values = transmission_eigenvalues(item, to_lead, from_lead)
        noise += float(np.sum(values * (1.0 - values)))
        transmitted += float(np.sum(values))
    if transmitted == 0.0:
        raise ValueError(
            f"the Fano factor is undefined: the transmission from lead {from_lead} into "
            f"lead {to_lead} vanishes"
        )
    return noise / transmitted


def shot_noise_matrix(
    smatrix: SMatrix, *, mu: ArrayLike, spin_degeneracy: int | None = None
) -> NDArray[np.float64]:
    """Zero-temperature shot-noise matrix for an S-matrix constant over the bias window.

    ``S_ij = (e^2/h) g_s sum_{k != l} Re Tr[A_kl(i) A_lk(j)] |mu_k - mu_l|``: Büttiker's
    formula at zero temperature with ``S(E)`` taken at one energy, exact when ``S`` does not
    change between the chemical potentials and the leading term in the bias otherwise. For
    two terminals ``S_00 = 2 g_s |mu_0 - mu_1| sum_n T_n (1 - T_n)``, i.e.
    ``2 (e^3 |V| / h) g_s sum_n T_n (1 - T_n)``.

    Parameters
    ----------
    smatrix : SMatrix
        Scattering matrix of all leads at (or near) the Fermi energy.
    mu : (n_leads,) array_like
        Chemical potentials ``mu_k`` of the reservoirs (``e V_k`` relative to any common
        reference), in the energy unit.
    spin_degeneracy : {1, 2}, keyword-only, optional
        ``g_s``; the S-matrix's own (its system's) value by default.

    Returns
    -------
    (n_leads, n_leads) float ndarray
        Noise ``S_ij`` in units of ``e^2/h`` times the energy unit (see the module
        docstring for the convention and the conversion to ``A^2/Hz``). Symmetric; rows and
        columns sum to zero.

    Examples
    --------
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> s = scattering_matrix([[1.0]], [LeadData(**chain), LeadData(**chain)], energy=0.0)
    >>> shot_noise_matrix(s, mu=[0.0, 0.25]).round(12).tolist()     # 2 * 0.25 * 0.8 * 0.2
    [[0.08, -0.08], [-0.08, 0.08]]
    """
    s = _check_smatrix(smatrix, "smatrix")
    g_s = _checks.spin_degeneracy(
        s.spin_degeneracy if spin_degeneracy is None else spin_degeneracy
    )
    potentials = _per_terminal(mu, s.num_leads, "mu", thermal=False)
    coefficients = _noise_coefficients(s.data[None], _mode_counts(s))[0]
    return g_s * np.einsum("ijkl,kl->ij", coefficients, _pair_weights(potentials))


def _fermi(energy: NDArray[np.float64], mu: float, kT: float) -> NDArray[np.float64]:
    if kT > 0:
        with np.errstate(over="ignore"):
            return 0.5 * (1.0 - np.tanh(0.5 * (energy - mu) / kT))
    return np.where(energy < mu, 1.0, np.where(energy > mu, 0.0, 0.5))


def _panel_edges(
    knots: NDArray[np.float64],
    lower: float,
    upper: float,
    mu: NDArray[np.float64],
    kT: NDArray[np.float64],
) -> NDArray[np.float64]:
    points = [knots[(knots > lower) & (knots < upper)], np.array([lower, upper]), mu]
    for potential, thermal in zip(mu, kT, strict=True):
        if thermal > 0:
            count = int(np.ceil(2 * _WINDOW_KT / _PANEL_KT))
            reach = _WINDOW_KT * thermal
            points.append(np.linspace(potential - reach, potential + reach, count + 1))
    edges = np.unique(np.concatenate(points))
    return edges[(edges >= lower) & (edges <= upper)]


def _coefficient_samples(
    smatrices: Sequence[SMatrix],
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Grid energies, ``C[e, i, j, k, l]`` on them, and the common spin degeneracy."""
    if isinstance(smatrices, SMatrix) or not isinstance(smatrices, Sequence):
        raise TypeError(
            "smatrices must be a sequence of SMatrix computed on an energy grid, got "
            f"{type(smatrices).__name__}; for one S-matrix use shot_noise_matrix"
        )
    items = [_check_smatrix(item, f"smatrices[{n}]") for n, item in enumerate(smatrices)]
    if not items:
        raise ValueError("smatrices is empty; give the S-matrices on an energy grid")
    count = items[0].num_leads
    degeneracy = items[0].spin_degeneracy
    for n, item in enumerate(items):
        if item.num_leads != count:
            raise ValueError(
                f"all S-matrices must belong to one system: smatrices[0] has {count} leads "
                f"but smatrices[{n}] has {item.num_leads}"
            )
        if item.spin_degeneracy != degeneracy:
            raise ValueError(
                f"all S-matrices must have the same spin_degeneracy: smatrices[0] has "
                f"{degeneracy} but smatrices[{n}] has {item.spin_degeneracy}"
            )
    energies = np.array([item.energy for item in items])
    steps = np.diff(energies)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0))
        raise ValueError(
            "the S-matrices must be at strictly increasing energies, got energy "
            f"{energies[bad]!r} at smatrices[{bad}] followed by {energies[bad + 1]!r}"
        )
    coefficients = np.empty((len(items), count, count, count, count))
    # Batch consecutive energies with the same channel numbers (all, between band edges).
    group: list[int] = []
    for n, item in enumerate(items):
        group.append(n)
        following = items[n + 1] if n + 1 < len(items) else None
        counts = _mode_counts(item)
        if following is None or counts != _mode_counts(following):
            data = np.stack([items[m].data for m in group])
            coefficients[group[0] : n + 1] = _noise_coefficients(data, counts)
            group = []
    return energies, coefficients, degeneracy


def noise_matrix(
    smatrices: Sequence[SMatrix],
    *,
    mu: ArrayLike,
    kT: ArrayLike,
    interpolation: Interpolation = "cubic",
    spin_degeneracy: int | None = None,
) -> NDArray[np.float64]:
    """Current-noise matrix ``S_ij`` at any temperatures and biases (Büttiker's formula).

    Parameters
    ----------
    smatrices : sequence of SMatrix
        S-matrices of all leads at strictly increasing energies ``E_0 < E_1 < ...`` (their
        ``.energy``), which must cover ``[min_k(mu_k - 34 kT_k), max_k(mu_k + 34 kT_k)]``
        (at zero temperature, the interval between the chemical potentials) and resolve
        the energy dependence of ``S``. The number of open channels may change along the
        grid.
    mu : (n_leads,) array_like
        Chemical potentials of the reservoirs, energy unit (a scalar applies to all).
    kT : float or (n_leads,) array_like
        Thermal energies ``k_B T_k >= 0`` of the reservoirs, energy unit.
    interpolation : {"cubic", "pchip", "linear"}, keyword-only, optional
        Interpolant of the noise coefficients between grid energies: not-a-knot cubic
        spline (needs 4 energies or more), monotone piecewise cubic, or piecewise linear.
    spin_degeneracy : {1, 2}, keyword-only, optional
        ``g_s``; by default that of the S-matrices (of their system).

    Returns
    -------
    (n_leads, n_leads) float ndarray
        ``S_ij`` in units of ``e^2/h`` times the energy unit, ``g_s`` included, in the
        symmetrized convention of Blanter and Büttiker (``S = 2 e I`` for Poisson noise,
        ``4 kT G`` at equilibrium; see the module docstring). Multiply by
        ``constants.e2_h * (energy unit in J)`` for ``A^2/Hz``.

    Raises
    ------
    ValueError
        For negative `kT`, `mu` or `kT` of the wrong length, a grid that does not cover the
        Fermi window, energies not increasing, S-matrices of different systems.

    Examples
    --------
    Johnson-Nyquist noise ``4 kT G`` of a clean chain (``T = 1`` inside its band):

    >>> import numpy as np
    >>> from mesoscopic.leads import LeadData
    >>> from mesoscopic.solvers import scattering_matrix
    >>> chain = dict(h_cell=[[0.0]], hop=[[-1.0]], interface_sys=[0], interface_cell=[0])
    >>> leads = [LeadData(**chain), LeadData(**chain)]
    >>> grid = [scattering_matrix([[0.0]], leads, e) for e in np.linspace(-1.0, 1.0, 9)]
    >>> noise_matrix(grid, mu=0.0, kT=0.02).round(12).tolist()
    [[0.08, -0.08], [-0.08, 0.08]]
    """
    _check_interpolation(interpolation)
    energies, coefficients, degeneracy = _coefficient_samples(smatrices)
    count = coefficients.shape[1]
    g_s = _checks.spin_degeneracy(degeneracy if spin_degeneracy is None else spin_degeneracy)
    potentials = _per_terminal(mu, count, "mu", thermal=False)
    thermal = _per_terminal(kT, count, "kT", thermal=True)
    return _integrated_noise(energies, coefficients, potentials, thermal, g_s, interpolation)


def _check_interpolation(interpolation: Any) -> None:
    if interpolation not in _MIN_POINTS:
        raise ValueError(
            f"interpolation must be one of 'cubic', 'pchip', 'linear', got {interpolation!r}"
        )


def _fermi_window(
    potentials: NDArray[np.float64], thermal: NDArray[np.float64]
) -> tuple[float, float]:
    """``[min_k(mu_k - 34 kT_k), max_k(mu_k + 34 kT_k)]``, where the kernels live."""
    lower = float(np.min(potentials - _WINDOW_KT * thermal))
    upper = float(np.max(potentials + _WINDOW_KT * thermal))
    return lower, upper


def _pair_kernels(
    energies: NDArray[np.float64], potentials: NDArray[np.float64], thermal: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``f_k (1 - f_l) + f_l (1 - f_k)`` at every energy, shape ``(n_E, n_leads, n_leads)``."""
    occupations = np.stack(
        [_fermi(energies, m, t) for m, t in zip(potentials, thermal, strict=True)], axis=-1
    )
    vacancies = 1.0 - occupations
    products = occupations[:, :, np.newaxis] * vacancies[:, np.newaxis, :]
    return np.asarray(products + np.swapaxes(products, 1, 2), dtype=float)


def _integrated_noise(
    energies: NDArray[np.float64],
    coefficients: NDArray[np.float64],
    potentials: NDArray[np.float64],
    thermal: NDArray[np.float64],
    g_s: int,
    interpolation: str,
    *,
    strict: bool = True,
) -> NDArray[np.float64]:
    """Büttiker's noise integral of the coefficients ``C[e, i, j, k, l]`` sampled on a grid.

    With ``strict=False`` a grid that misses a sliver of the Fermi window (the pair of
    points around a band edge right at its end) is accepted: the kernels are below 1e-14
    of their peak there.
    """
    count = coefficients.shape[1]
    lower, upper = _fermi_window(potentials, thermal)
    slack = _COVERAGE_SLACK * max(1.0, abs(lower), abs(upper))
    if not strict:
        slack = max(slack, 1e-6 * (upper - lower))
    if lower < energies[0] - slack or upper > energies[-1] + slack:
        raise ValueError(
            f"the energy grid covers [{energies[0]:.6g}, {energies[-1]:.6g}] but the Fermi "
            f"window of these reservoirs is [{lower:.6g}, {upper:.6g}] (min(mu - 34 kT) to "
            "max(mu + 34 kT), where the noise kernels exceed 1e-14 of their peak; at kT = 0 "
            f"the interval between the chemical potentials); extend the grid to cover it"
        )
    lower, upper = max(lower, energies[0]), min(upper, energies[-1])
    if upper <= lower:
        return np.zeros((count, count))
    if energies.size < _MIN_POINTS[interpolation]:
        raise ValueError(
            f"interpolation={interpolation!r} needs at least {_MIN_POINTS[interpolation]} "
            f"energies, got {energies.size}"
        )
    flat = coefficients.reshape(energies.size, -1)
    if interpolation == "cubic":
        interpolant: Any = scipy.interpolate.CubicSpline(energies, flat, bc_type="not-a-knot")
    elif interpolation == "pchip":
        interpolant = scipy.interpolate.PchipInterpolator(energies, flat)
    else:
        interpolant = scipy.interpolate.interp1d(energies, flat, axis=0, assume_sorted=True)

    edges = _panel_edges(energies, lower, upper, potentials, thermal)
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(_GAUSS_ORDER)
    centres = 0.5 * (edges[1:] + edges[:-1])
    halves = 0.5 * np.diff(edges)
    nodes = (centres[:, None] + halves[:, None] * unit_nodes[None, :]).ravel()
    weights = (halves[:, None] * unit_weights[None, :]).ravel()
    # f_k (1 - f_l) + f_l (1 - f_k), at every node, for every pair (k, l).
    kernels = _pair_kernels(nodes, potentials, thermal)
    values = interpolant(nodes).reshape(nodes.size, count, count, count, count)
    result = np.einsum("nijkl,nkl,n->ij", values, kernels, weights, optimize=True)
    return np.asarray(g_s * 0.5 * (result + result.T), dtype=float)


def _reservoir_grid(
    potentials: NDArray[np.float64], thermal: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Starting grid of the adaptive noise integral: every reservoir's thermal window.

    The window ``mu_k ± 34 kT_k`` of every reservoir with ``kT_k > 0`` at spacing ``kT``
    (:func:`mesoscopic.linear_response.energy_grid`), the chemical potentials (the kinks of
    zero-temperature kernels) and 32 intervals across the whole Fermi window, which reach
    the stretches between windows that a product ``f_k (1 - f_l)`` spans.
    """
    from .linear_response import energy_grid

    lower, upper = _fermi_window(potentials, thermal)
    hot = thermal > 0
    if np.any(hot):
        grid = energy_grid(np.unique(potentials[hot]), np.unique(thermal[hot]), points_per_kT=1.0)
        closest = 0.25 * float(np.min(thermal[hot]))
    else:
        grid = np.array([lower, upper])
        closest = 0.25 * (upper - lower) / 32
    extra = np.union1d(potentials, np.linspace(lower, upper, 33))
    extra = extra[(extra >= lower) & (extra <= upper)]
    position = np.clip(np.searchsorted(grid, extra), 1, grid.size - 1)
    gap = np.minimum(np.abs(extra - grid[position - 1]), np.abs(extra - grid[position]))
    outside = (extra < grid[0]) | (extra > grid[-1])
    return np.union1d(grid, extra[(gap > closest) | outside])


def noise_matrix_of_system(
    syst: Any,
    energies: ArrayLike | None = None,
    *,
    mu: ArrayLike,
    kT: ArrayLike,
    params: Mapping[str, Any] | None = None,
    interpolation: Interpolation | None = None,
    tol: float = 1e-6,
    max_points: int = 20_000,
    steps: ArrayLike = (),
    resonance_orbitals: int = 2000,
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> NDArray[np.float64]:
    """Current-noise matrix of a finalized system, on an energy grid chosen by itself.

    By default the energies are chosen as :func:`mesoscopic.conductance` chooses them: the
    thermal window ``mu_k ± 34 kT_k`` of every reservoir (at spacing ``kT_k``) and the
    interval between the chemical potentials, the band edges of the leads (where channels
    open and the noise coefficients jump) as pairs of points either side, the bound-state
    energies of the scattering region (narrow resonances), and then bisection of the
    intervals where the noise coefficients ``Re Tr[A_kl(i) A_lk(j)]`` differ most from
    their interpolant, weighted by the Fermi products ``f_k (1 - f_l) + f_l (1 - f_k)`` of
    every pair of reservoirs, until the estimated error of every pair's integral is below
    `tol` (relative to the pair's total weight). Each round computes its S-matrices in one
    call of the batched solver (:func:`mesoscopic.smatrices`: recursive Green's functions
    over all its energies, or the sparse solver, with its workers and device); the spin
    degeneracy is the system's.

    Given `energies`, the S-matrices are computed there, in one call, and integrated by
    :func:`noise_matrix` (the fixed-grid path).

    Parameters
    ----------
    syst : System
        A finalized system with leads.
    energies : (n_E,) array_like, optional
        A fixed, strictly increasing energy grid covering the Fermi window (see
        :func:`noise_matrix`) and resolving the energy dependence of ``S``; by default the
        adaptive grid above.
    mu : (n_leads,) array_like
        Chemical potentials of the reservoirs (a scalar applies to all), energy unit.
    kT : float or (n_leads,) array_like
        Thermal energies ``>= 0``, energy unit.
    params : dict, keyword-only, optional
        Parameter values of the system by name.
    interpolation : {"cubic", "pchip", "linear"}, keyword-only, optional
        As in :func:`noise_matrix`. Default: "pchip" (monotone cubic, which integrates the
        jumps at band edges as steps) on the adaptive grid, "cubic" on given `energies`.
    tol : float, keyword-only, optional
        Target of the error estimate of every pair's integral per unit noise coefficient
        and unit kernel weight (default 1e-6); adaptive grid only.
    max_points : int, keyword-only, optional
        Most energies computed (default 20000, at least 16); beyond it the refinement stops
        with a :class:`mesoscopic.linear_response.ConvergenceWarning`.
    steps : float or array_like, keyword-only, optional
        Further energies where ``S`` jumps (besides the band edges of the leads, found by
        themselves), e.g. the edges of a lead given only by a self-energy.
    resonance_orbitals : int, keyword-only, optional
        Largest scattering region (in orbitals) whose bound-state energies seed the
        adaptive grid (default 2000; 0 switches it off).
    options : SolverOptions or mapping, keyword-only, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`: solver, device,
        workers, ...); the defaults of :func:`mesoscopic.smatrices` if not given.

    Returns
    -------
    (n_leads, n_leads) float ndarray
        ``S_ij`` in units of ``e^2/h`` times the energy unit (see the module docstring).

    Raises
    ------
    ValueError
        As :func:`noise_matrix`; a given grid that is not strictly increasing is refused
        before any S-matrix is computed.

    Warns
    -----
    ConvergenceWarning
        The adaptive grid reached `max_points` before its error estimate reached `tol`.

    Examples
    --------
    Johnson-Nyquist noise ``S = 4 kT G`` of a chain with an impurity (``T = 0.8`` at
    ``E = 0``), and a clean chain, noiseless at zero temperature:

    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x) for x in range(3))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> clean = syst.finalized()
    >>> S = noise_matrix_of_system(clean, mu=[0.1, -0.1], kT=0.0)
    >>> bool(np.abs(S).max() < 1e-12)
    True
    >>> syst[lat(1)] = 1.0
    >>> impurity = syst.finalized()
    >>> S = noise_matrix_of_system(impurity, mu=0.0, kT=0.01)
    >>> G = meso.conductance(impurity, mu=0.0, kT=0.01).conductance
    >>> bool(np.isclose(S[0, 0], 4 * 0.01 * float(G), rtol=1e-7))
    True
    """
    from . import batch
    from .linear_response import (
        ConvergenceWarning,
        _QuadratureKernels,
        _refined_samples,
        _starting_grid,
        _step_energies,
    )

    system = _checks.finalized_system(syst, "noise_matrix_of_system", min_leads=1)
    if energies is not None:
        grid = _checks.energy_grid(energies, "energies")
        kind = "cubic" if interpolation is None else interpolation
        _check_interpolation(kind)
        settings = solver_options(options)
        return noise_matrix(
            batch.smatrices(system, grid, params=params, options=settings),
            mu=mu,
            kT=kT,
            interpolation=kind,
        )
    kind = "pchip" if interpolation is None else interpolation
    _check_interpolation(kind)
    count = len(system.leads)
    potentials = _per_terminal(mu, count, "mu", thermal=False)
    thermal = _per_terminal(kT, count, "kT", thermal=True)
    tolerance = float(_checks.positive(tol, "tol"))
    budget = _checks.positive_int(max_points, "max_points", minimum=16)
    orbitals = _checks.positive_int(resonance_orbitals, "resonance_orbitals", minimum=0)
    given_steps = _step_energies(steps)
    settings = solver_options(options)
    lower, upper = _fermi_window(potentials, thermal)
    if upper <= lower:  # every reservoir at kT = 0 and one chemical potential
        return np.zeros((count, count))
    start, jumps = _starting_grid(
        system,
        params,
        _reservoir_grid(potentials, thermal),
        given_steps,
        potentials,
        thermal,
        orbitals,
    )

    def sample(energies: NDArray[np.float64]) -> NDArray[np.float64]:
        items = batch.smatrices(system, energies, params=params, options=settings)
        return _coefficient_samples(items)[1].reshape(energies.size, -1)

    pairs = count * count

    def kernel(energies: NDArray[np.float64]) -> NDArray[np.float64]:
        return _pair_kernels(energies, potentials, thermal).reshape(energies.size, pairs)

    breaks = _panel_edges(np.empty(0), lower, upper, potentials, thermal)
    kernels = _QuadratureKernels(kernel, breaks, pairs, columns=np.arange(pairs * pairs) % pairs)
    refined = _refined_samples(
        sample, start, jumps, [kernels], tol=tolerance, max_points=budget, interpolation=kind
    )
    if not refined.converged:
        warnings.warn(
            f"the adaptive energy grid of the noise did not reach tol={tolerance:g} within "
            f"max_points={budget} energies; the largest error estimate is "
            f"{float(np.max(refined.errors[0], initial=0.0)):.3g} (per unit noise "
            "coefficient). Raise max_points, loosen tol, or give the energies of sharp "
            "features of S(E) as steps=",
            ConvergenceWarning,
            stacklevel=_checks.user_stacklevel(),
        )
    coefficients = refined.samples.reshape(-1, count, count, count, count)
    return _integrated_noise(
        refined.energies,
        coefficients,
        potentials,
        thermal,
        system.spin_degeneracy,
        kind,
        strict=False,
    )
