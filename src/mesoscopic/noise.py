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

import numbers
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


_check_spin_degeneracy = _checks.spin_degeneracy


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


def _lead_index(value: Any, count: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a lead index (int), got {value!r}")
    if not 0 <= int(value) < count:
        leads = "this system has no leads" if count == 0 else f"valid leads are 0..{count - 1}"
        raise ValueError(f"{name} = {value} does not exist; {leads}")
    return int(value)


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
    to_index = _lead_index(to_lead, s.num_leads, "to_lead")
    from_index = _lead_index(from_lead, s.num_leads, "from_lead")
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
    g_s = _check_spin_degeneracy(s.spin_degeneracy if spin_degeneracy is None else spin_degeneracy)
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
    if interpolation not in _MIN_POINTS:
        raise ValueError(
            f"interpolation must be one of 'cubic', 'pchip', 'linear', got {interpolation!r}"
        )
    energies, coefficients, degeneracy = _coefficient_samples(smatrices)
    count = coefficients.shape[1]
    g_s = _check_spin_degeneracy(degeneracy if spin_degeneracy is None else spin_degeneracy)
    potentials = _per_terminal(mu, count, "mu", thermal=False)
    thermal = _per_terminal(kT, count, "kT", thermal=True)
    lower = float(np.min(potentials - _WINDOW_KT * thermal))
    upper = float(np.max(potentials + _WINDOW_KT * thermal))
    slack = _COVERAGE_SLACK * max(1.0, abs(lower), abs(upper))
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
    occupations = np.stack([_fermi(nodes, m, t) for m, t in zip(potentials, thermal, strict=True)])
    # f_k (1 - f_l) + f_l (1 - f_k), at every node, for every pair (k, l).
    kernels = occupations[:, None, :] * (1.0 - occupations[None, :, :]) + occupations[
        None, :, :
    ] * (1.0 - occupations[:, None, :])
    values = interpolant(nodes).reshape(nodes.size, count, count, count, count)
    result = np.einsum("nijkl,kln,n->ij", values, kernels, weights, optimize=True)
    return g_s * 0.5 * (result + result.T)


def noise_matrix_of_system(
    syst: Any,
    energies: ArrayLike,
    *,
    mu: ArrayLike,
    kT: ArrayLike,
    params: Mapping[str, Any] | None = None,
    interpolation: Interpolation = "cubic",
    options: SolverOptions | Mapping[str, Any] | None = None,
) -> NDArray[np.float64]:
    """Current-noise matrix of a finalized system, computing its S-matrices on a grid.

    Computes the S-matrices at all energies of `energies` in one call of the batched solver
    (:func:`mesoscopic.smatrices`: recursive Green's functions over the whole grid, or the
    sparse solver, with its workers and device) and then :func:`noise_matrix`; the spin
    degeneracy is the system's.

    Parameters
    ----------
    syst : System
        A finalized system with leads.
    energies : (n_E,) array_like
        Strictly increasing energy grid covering the Fermi window (see
        :func:`noise_matrix`) and resolving the energy dependence of ``S``.
    mu : (n_leads,) array_like
        Chemical potentials of the reservoirs.
    kT : float or (n_leads,) array_like
        Thermal energies ``>= 0``.
    params : dict, keyword-only, optional
        Parameter values of the system by name.
    interpolation : {"cubic", "pchip", "linear"}, keyword-only, optional
        As in :func:`noise_matrix`.
    options : SolverOptions or mapping, keyword-only, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`: solver, device,
        workers, ...); the defaults of :func:`mesoscopic.smatrices` if not given.

    Returns
    -------
    (n_leads, n_leads) float ndarray
        ``S_ij`` in units of ``e^2/h`` times the energy unit.

    Raises
    ------
    ValueError
        As :func:`noise_matrix`; energies not strictly increasing are refused before any
        S-matrix is computed.

    Examples
    --------
    A clean chain transmits perfectly and is noiseless at zero temperature:

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
    >>> grid = np.linspace(-0.2, 0.2, 9)
    >>> S = noise_matrix_of_system(syst.finalized(), grid, mu=[0.1, -0.1], kT=0.0)
    >>> bool(np.abs(S).max() < 1e-12)
    True
    """
    from . import batch

    grid = _checks.real_array(energies, "energies")
    if grid.ndim != 1:
        raise ValueError(f"energies must be a 1-D array, got shape {grid.shape}")
    steps = np.diff(grid)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0))
        raise ValueError(
            "energies must be strictly increasing, got "
            f"{float(grid[bad])!r} at index {bad} followed by {float(grid[bad + 1])!r}"
        )
    settings = solver_options(options)
    return noise_matrix(
        batch.smatrices(syst, grid, params=params, options=settings),
        mu=mu,
        kT=kT,
        interpolation=interpolation,
    )
