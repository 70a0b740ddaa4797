"""Linear conductance of a tight-binding device at finite temperature, on an adaptive grid.

:func:`conductance` computes ``G = g_s int T(E) (-df/dE) dE`` (units of ``e^2/h``) between
two leads, or the whole Büttiker conductance matrix, for every pair of chemical potential
and temperature and for a batch of parameter values (gate voltages, fields), choosing the
energies at which it solves the scattering problem by itself:

1. The thermal windows ``mu ± 34 kT`` (:data:`mesoscopic.landauer.THERMAL_WINDOW_KT`) are
   filled with spacing ``kT`` (:func:`energy_grid`).
2. The band edges of every lead, where a channel opens and ``T(E)`` jumps, enter as pairs of
   points just either side (:func:`energy_grid` with ``steps=``); the monotone interpolant
   of :mod:`mesoscopic.landauer` then integrates each jump as a step.
3. For a scattering region of at most ``resonance_orbitals`` orbitals, the eigenvalues of
   its Hamiltonian (leads detached) inside the windows enter as points: a quasi-bound state
   weakly coupled to the leads (a double-barrier level, a Fano resonance) gives a resonance
   of ``T(E)`` within about its width of such an eigenvalue, however much narrower than
   ``kT`` and the grid spacing it is.
4. Adaptive refinement: the transmission is computed at the midpoint of every interval, and
   the difference from the interpolant of the other samples, times the interval's share of
   the thermal kernel, estimates the interval's error. Intervals are bisected, largest
   estimates first, until the estimated error of every conductance is below `tol`, or
   `max_points` energies are spent (then :class:`ConvergenceWarning`).

Every refinement round is one batched call of :func:`mesoscopic.transmission` (the RGF or
sparse solver, vectorized over energies), and the thermal average goes through
:func:`mesoscopic.landauer.linear_conductance`.

The same engine (``_refined_samples``) serves the other thermal integrals of a device.
It refines against several kernels at once, each with an error estimate of its own, and
its samples may be any set of columns: one transmission, a whole transmission matrix, or
the noise coefficients of the S-matrices.

- :func:`mesoscopic.thermoelectric.thermoelectric_response` refines ``T(E)`` against
  ``-df/dE``, ``|x| (-df/dE)`` and ``x^2 (-df/dE)`` (``x = (E - mu) / kT``), the kernels
  of ``G``, the thermopower and the heat conductance.
- :func:`mesoscopic.noise.noise_matrix_of_system` refines the noise coefficients against
  the Fermi products ``f_k (1 - f_l) + f_l (1 - f_k)`` of every pair of reservoirs, each
  at its own ``mu`` and ``kT`` (``kT = 0`` included).
- Network quantities at temperature (four-terminal and Hall resistances, probes in
  linear response) come from ``conductance(..., matrix=True)``: the Büttiker conductance
  matrix ``G(mu, kT)``, which :func:`mesoscopic.network.four_terminal_resistance`,
  :func:`mesoscopic.network.hall_resistance` and :func:`mesoscopic.network.eliminate_probes`
  take as it is.

Units: energies (``mu``, ``kT``, the grid) in the unit of the Hamiltonian; conductances in
``e^2/h`` with the system's spin degeneracy included.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.interpolate
import scipy.optimize
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from . import _checks, landauer
from . import leads as _leads
from .solvers.options import SolverOptions, solver_options
from .system import System

__all__ = [
    "ConvergenceWarning",
    "conductance",
    "energy_grid",
]

FloatArray = NDArray[np.float64]

# A step of T(E) at energy e (a band edge of a lead, where a channel opens) enters the grid
# as the pair e -+ _STEP_OFFSET * max(1, |e|): the transmission is evaluated just below and
# just above the edge, never on it (where the lead modes are singular), and the monotone
# interpolant ramps between the two in a width ~1e-8, whose error in a thermal average is
# of order (width / kT)^2. The offset stays far above the lead solver's band-edge
# tolerance (1e-11 of the lead's energy scale), so the mode counts on either side are right.
_STEP_OFFSET = 1e-8
# Lead bands are sampled at this many momenta before every extremum is refined.
_BAND_SAMPLES = 128
# Intervals narrower than this many ulps of their energy are not bisected further.
_NARROWEST_ULPS = 64
# Kernel masses below this fraction of the tolerance (per unit transmission) are not sampled.
_NEGLIGIBLE_WEIGHT = 1e-3
# Kernel masses below this are taken from their bound, not integrated (see _ThermalKernels).
_TAIL_MASS = 1e-17
# Elements of one (intervals x pairs) block of the error estimate.
_BLOCK = 1 << 21


class ConvergenceWarning(UserWarning):
    """The adaptive energy grid stopped before its error estimate reached the tolerance."""


# --------------------------------------------------------------------------------------------
# Input checks shared with mesoscopic.thermoelectric
# --------------------------------------------------------------------------------------------


def _positive_kT(kT: ArrayLike, what: str = "thermoelectric coefficients") -> FloatArray:
    values = _checks.temperature(
        kT,
        "kT",
        nonzero_because=(
            f"for {what}: at kT = 0 the thermopower and the heat conductance vanish and the "
            "Lorenz ratio is its Sommerfeld value pi^2/3"
        ),
    )
    if values.ndim > 1:
        raise ValueError(f"kT must be a number or a 1-D array, got shape {values.shape}")
    return np.atleast_1d(values)


def _thermal_energies(kT: ArrayLike) -> FloatArray:
    values = _checks.temperature(kT, "kT")
    if values.ndim > 1:
        raise ValueError(f"kT must be a number or a 1-D array, got shape {values.shape}")
    return np.atleast_1d(values)


# --------------------------------------------------------------------------------------------
# Energy grid: thermal windows and steps of T(E)
# --------------------------------------------------------------------------------------------


def energy_grid(
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    points_per_kT: float = 2.0,
    max_spacing: float | None = None,
    window_kT: float = landauer.THERMAL_WINDOW_KT,
    steps: ArrayLike = (),
) -> FloatArray:
    """Energy grid for the thermal averages at every pair of `mu` and `kT`.

    The grid covers ``mu ± window_kT * kT`` for every pair (by default the window of every
    thermal integral, :data:`mesoscopic.landauer.THERMAL_WINDOW_KT` = 34), with spacing at
    most ``kT / points_per_kT`` inside each such window (the finest that applies where
    windows overlap) and at most `max_spacing` everywhere; stretches that no window reaches
    get no points. Every energy of `steps` inside the grid becomes a pair of points
    ``e -+ 1e-8 max(1, |e|)`` (points closer to ``e`` than that are dropped), so that a
    jump of ``T(E)`` at ``e`` is sampled on both sides and the monotone interpolant of
    :mod:`mesoscopic.landauer` integrates it as a step.

    A fixed spacing cannot see structure of ``T(E)`` narrower than itself (a sharp
    resonance inside the window); :func:`conductance` refines this grid adaptively.

    Parameters
    ----------
    mu : float or array_like, shape (n_mu,)
        Chemical potentials, energy units.
    kT : float or array_like, shape (n_kT,)
        Thermal energies ``> 0``, energy units.
    points_per_kT : float, optional
        Grid points per ``kT`` (default 2; at least 1, as :mod:`mesoscopic.landauer` needs).
    max_spacing : float, optional
        Largest spacing anywhere, to resolve structure of ``T(E)`` narrower than ``kT``.
    window_kT : float, optional
        Half-width of each window in units of its ``kT`` (default and least value 34).
    steps : float or array_like, optional
        Energies where ``T(E)`` may jump, e.g. the band edges of the leads, where channels
        open (:func:`conductance` and :func:`mesoscopic.thermoelectric.thermoelectric_response`
        add those of the leads themselves).

    Returns
    -------
    ndarray, shape (n_E,)
        Strictly increasing energies.

    Examples
    --------
    >>> E = energy_grid([0.0, 0.1], 0.01)
    >>> [round(float(x), 12) for x in (E[0], E[-1], np.max(np.diff(E)))], E.size
    ([-0.34, 0.44, 0.005], 157)
    >>> E = energy_grid(0.0, 0.01, steps=0.0)   # a step at E = 0: sampled either side
    >>> E[(E > -0.001) & (E < 0.001)].tolist()
    [-1e-08, 1e-08]
    """
    potentials = _checks.real_vector(mu, "mu")
    temperatures = _positive_kT(kT, "an energy grid")
    density = float(_checks.positive(points_per_kT, "points_per_kT"))
    if density < 1:
        raise ValueError(f"points_per_kT must be >= 1, got {points_per_kT!r}")
    reach = float(_checks.positive(window_kT, "window_kT"))
    if reach < landauer.THERMAL_WINDOW_KT:
        raise ValueError(
            f"window_kT must be >= {landauer.THERMAL_WINDOW_KT:g} (every thermal integral "
            f"runs over mu ± {landauer.THERMAL_WINDOW_KT:g} kT), got {window_kT!r}"
        )
    limit = np.inf if max_spacing is None else float(_checks.positive(max_spacing, "max_spacing"))
    jumps = _step_energies(steps)
    centre = np.repeat(potentials, temperatures.size)
    width = np.tile(temperatures, potentials.size)
    lower, upper = centre - reach * width, centre + reach * width
    spacing = np.minimum(width / density, limit)
    breaks = _merged_breaks(np.unique(np.concatenate([lower, upper])), lower, upper, spacing)
    start, stop = breaks[:-1], breaks[1:]
    # The finest spacing of any window that overlaps a segment applies to all of it.
    overlapping = (lower[np.newaxis, :] < stop[:, np.newaxis]) & (
        upper[np.newaxis, :] > start[:, np.newaxis]
    )
    # A stretch that no window reaches gets no points inside (step inf).
    widths = np.min(np.where(overlapping, spacing[np.newaxis, :], np.inf), axis=1)
    # Consecutive segments that need the same spacing are filled as one run.
    run_ends = np.flatnonzero(np.append(widths[1:] != widths[:-1], True))
    pieces = [breaks[:1]]
    first = 0
    for last in run_ends:
        low, high, step = start[first], stop[last], widths[last]
        count = 1 if np.isinf(step) else max(1, int(np.ceil((high - low) / step - 1e-9)))
        pieces.append(np.linspace(low, high, count + 1)[1:])
        first = last + 1
    return _with_steps(np.concatenate(pieces), jumps)


def _merged_breaks(
    breaks: FloatArray, lower: FloatArray, upper: FloatArray, spacing: FloatArray
) -> FloatArray:
    """Window edges with those closer than half the local spacing to the previous one dropped.

    Nearly coincident edges of different windows would otherwise leave two grid points a
    rounding error apart, which ruins a cubic-spline interpolant of ``T(E)``.
    """
    containing = (lower[np.newaxis, :] <= breaks[:, np.newaxis]) & (
        upper[np.newaxis, :] >= breaks[:, np.newaxis]
    )
    local = np.min(np.where(containing, spacing[np.newaxis, :], np.inf), axis=1)
    kept = [0]
    for k in range(1, breaks.size):
        if breaks[k] - breaks[kept[-1]] >= 0.5 * local[k]:
            kept.append(k)
        elif k == breaks.size - 1:
            # The outermost edge must stay; the close edge before it goes instead.
            if len(kept) > 1:
                kept[-1] = k
            else:
                kept.append(k)
    return breaks[kept]


def _step_energies(steps: ArrayLike, what: str = "steps") -> FloatArray:
    values = _checks.real_array(steps, what)
    if values.ndim > 1:
        raise ValueError(f"{what} must be a number or a 1-D array, got shape {values.shape}")
    return np.unique(np.atleast_1d(values))


def _step_offsets(steps: FloatArray) -> FloatArray:
    return _STEP_OFFSET * np.maximum(1.0, np.abs(steps))


def _with_steps(grid: FloatArray, steps: FloatArray) -> FloatArray:
    """`grid` with every step inside it replaced by a pair of points just either side.

    Points of `grid` closer to a step than its offset are dropped, so no interval of the
    result is wider than the widest interval of `grid` it lies in: the resolution of every
    thermal window is kept. Steps closer together than their offsets count as one.
    """
    inside = steps[(steps >= grid[0]) & (steps <= grid[-1])]
    if inside.size == 0:
        return grid
    offsets = _step_offsets(inside)
    distinct = np.append(True, np.diff(inside) > 2 * offsets[:-1])
    inside, offsets = inside[distinct], offsets[distinct]
    nearest = np.clip(np.searchsorted(inside, grid), 1, inside.size)
    near = np.zeros(grid.size, dtype=bool)
    for candidate in (nearest - 1, np.minimum(nearest, inside.size - 1)):
        near |= np.abs(grid - inside[candidate]) < offsets[candidate]
    return np.unique(np.concatenate([grid[~near], inside - offsets, inside + offsets]))


def _lead_band_edges(
    fsys: System, params: Mapping[str, Any] | None, low: float, high: float
) -> FloatArray:
    """Band minima and maxima in ``[low, high]`` of every lead with a band structure.

    These are the energies where a lead's channels open or close, hence where ``T(E)``
    jumps (for a clean lead) or has a square-root onset. Each band of
    ``H(k) = h_cell + hop e^{ik} + h.c.`` is sampled at ``_BAND_SAMPLES`` momenta, and every
    local extremum of the samples is refined by a bounded Brent search between its two
    neighbours, which finds the extremal energy to rounding (the error in ``E`` is
    quadratic in that of ``k``). Band crossings give extra, harmless breakpoints. Leads
    given only by a self-energy or by modes have no band structure here and add nothing.
    """
    edges: list[float] = []
    seen: set[bytes] = set()
    momenta = np.linspace(-np.pi, np.pi, _BAND_SAMPLES, endpoint=False)
    spacing = 2 * np.pi / _BAND_SAMPLES
    for lead in fsys.leads:
        if not (hasattr(lead, "cell_hamiltonian") and hasattr(lead, "hopping_away")):
            continue
        h = np.asarray(lead.cell_hamiltonian(params), dtype=complex)
        v = np.asarray(lead.hopping_away(params), dtype=complex)
        key = h.tobytes() + v.tobytes()
        if key in seen:
            continue
        seen.add(key)

        def bloch_energies(k: float, h: NDArray[Any] = h, v: NDArray[Any] = v) -> FloatArray:
            phase = complex(np.cos(k), np.sin(k))
            return np.asarray(
                np.linalg.eigvalsh(h + v * phase + v.conj().T * phase.conjugate()), dtype=float
            )

        bands = _leads.bands(h, v, momenta)  # (n_k, n_bands), sorted at each k
        before, after = np.roll(bands, 1, axis=0), np.roll(bands, -1, axis=0)
        reach = float(np.max(np.abs(bands - before), initial=0.0))
        scale = max(1.0, float(np.max(np.abs(bands), initial=0.0)))
        flat = np.ptp(bands, axis=0) <= 1e-12 * scale
        edges.extend(bands[0, flat].tolist())
        for sign, extremum in (
            (1.0, (bands <= before) & (bands <= after)),
            (-1.0, (bands >= before) & (bands >= after)),
        ):
            extremum[:, flat] = False
            near = (bands >= low - reach) & (bands <= high + reach)
            for j, n in zip(*np.nonzero(extremum & near)):
                centre = float(momenta[j])

                def signed(
                    offset: float, n: int = int(n), centre: float = centre, sign: float = sign
                ) -> float:
                    return sign * float(bloch_energies(centre + offset)[n])

                best = scipy.optimize.minimize_scalar(
                    signed,
                    bounds=(-spacing, spacing),
                    method="bounded",
                    options={"xatol": 1e-12},
                )
                edges.append(sign * min(float(best.fun), signed(0.0)))
    found = np.unique(np.asarray(edges, dtype=float))
    return found[(found >= low) & (found <= high)]


def _bound_state_energies(
    fsys: System, params: Mapping[str, Any] | None, low: float, high: float, max_orbitals: int
) -> FloatArray:
    """Eigenvalues in ``[low, high]`` of the scattering region's Hamiltonian, leads detached.

    Empty for a region of more than `max_orbitals` orbitals (a dense diagonalization would
    cost more than the transport problem).
    """
    if fsys.num_orbitals == 0 or fsys.num_orbitals > max_orbitals:
        return np.empty(0)
    hamiltonian = fsys.hamiltonian_submatrix(params=params, check_hermiticity=False)
    values = np.linalg.eigvalsh(np.asarray(hamiltonian, dtype=complex))
    return np.asarray(values[(values > low) & (values < high)], dtype=float)


def _starting_grid(
    fsys: System,
    params: Mapping[str, Any] | None,
    grid: FloatArray,
    given_steps: FloatArray,
    mu: FloatArray,
    kT: FloatArray,
    resonance_orbitals: int,
) -> tuple[FloatArray, FloatArray]:
    """The grid the refinement starts from, and the steps of ``T(E)`` in it.

    `grid` (thermal windows) gains the band edges of the leads and `given_steps` as pairs
    of points either side (:func:`_with_steps`), and the bound-state energies of the
    scattering region (up to `resonance_orbitals` orbitals) that lie in the window of a
    pair ``(mu, kT)`` (``kT > 0``; ``kT = 0`` stands for the interval between the
    chemical potentials, whose points the caller puts into `grid`).
    """
    low, high = float(grid[0]), float(grid[-1])
    edges = _lead_band_edges(fsys, params, low, high)
    jumps = np.union1d(edges, given_steps[(given_steps >= low) & (given_steps <= high)])
    seeds = _bound_state_energies(fsys, params, low, high, resonance_orbitals)
    reach = landauer.THERMAL_WINDOW_KT * kT
    inside = np.any(
        np.abs(seeds[:, np.newaxis] - mu[np.newaxis, :]) < reach[np.newaxis, :], axis=1
    )
    if np.any(kT == 0):
        # A zero-temperature kernel spans the interval between the chemical potentials.
        inside |= (seeds > mu.min()) & (seeds < mu.max())
    seeds = seeds[inside]
    if seeds.size:
        spacing = np.diff(grid)
        local = np.min(kT[kT > 0]) if np.any(kT > 0) else float(np.min(spacing))
        gap = np.min(np.abs(seeds[:, np.newaxis] - grid[np.newaxis, :]), axis=1)
        seeds = seeds[gap > 1e-6 * local]
    return _with_steps(np.union1d(grid, seeds), jumps), jumps


# --------------------------------------------------------------------------------------------
# Adaptive refinement
# --------------------------------------------------------------------------------------------


class _ThermalKernels:
    """The kernels ``|x|^n (-df/dE)``, ``x = (E - mu) / kT``, of the thermal averages.

    One curve per power ``n`` of `powers` and pair ``(mu, kT)`` (``kT > 0``), power-major:
    curve ``c`` is power ``powers[c // P]`` at pair ``c % P``. ``n = 0`` is the kernel of
    the conductance; ``n = 1, 2`` (with the signs dropped, for an error bound) those of the
    thermoelectric integrals ``L1 / kT`` and ``L2 / kT^2``. Each has a weight of order one.
    """

    # Gauss-Legendre nodes and weights on (0, 1), in the variable f of the Fermi function.
    _nodes, _weights = np.polynomial.legendre.leggauss(4)
    _nodes, _weights = 0.5 * (_nodes + 1.0), 0.5 * _weights

    def __init__(self, mu: FloatArray, kT: FloatArray, powers: Sequence[int] = (0,)) -> None:
        self.mu, self.kT = mu, kT
        self.powers = tuple(int(n) for n in powers)
        self.pairs = mu.size
        self.count = self.pairs * len(self.powers)

    def reduce(self, discrepancy: FloatArray) -> FloatArray:
        """Every curve weights the largest discrepancy of all sampled columns."""
        return np.asarray(discrepancy.max(axis=1, keepdims=True), dtype=float)

    def _at_knots(self, knots: FloatArray, pairs: NDArray[np.intp]) -> tuple[FloatArray, ...]:
        """``x``, ``f`` and ``1 - f`` at every knot for the pairs `pairs`, each to full
        relative precision where it is small (one exponential per entry)."""
        x = (knots[:, np.newaxis] - self.mu[pairs]) / self.kT[pairs]
        small = np.exp(-np.abs(x))
        small /= 1.0 + small
        large = 1.0 - small
        above = x > 0
        return x, np.where(above, small, large), np.where(above, large, small)

    @staticmethod
    def _interval_masses(filled: FloatArray, empty: FloatArray, x: FloatArray) -> FloatArray:
        """``f(a) - f(b)`` over the intervals between consecutive rows."""
        # The difference of the small ones of f or 1 - f keeps its digits in the tails.
        mass = np.where(x[1:] <= 0.0, empty[1:] - empty[:-1], filled[:-1] - filled[1:])
        return np.asarray(np.maximum(mass, 0.0), dtype=float)

    def bound(self, knots: FloatArray) -> FloatArray:
        """An upper bound of every interval's largest mass over the curves, (n_intervals,).

        ``|x|^n <= max(1, |x_a|, |x_b|)^n`` on an interval, so the mass of ``-df/dE``
        times that power bounds every kernel; no logarithms are needed.
        """
        largest = np.zeros(knots.size - 1)
        top = max(self.powers)
        block = max(1, _BLOCK // max(knots.size, 1))
        for start in range(0, self.pairs, block):
            x, filled, empty = self._at_knots(
                knots, np.arange(start, min(start + block, self.pairs))
            )
            mass = self._interval_masses(filled, empty, x)
            reach = np.maximum(1.0, np.maximum(np.abs(x[:-1]), np.abs(x[1:]))) ** top
            largest = np.maximum(largest, (mass * reach).max(axis=1, initial=0.0))
        return largest

    def masses(
        self, knots: FloatArray, curves: slice, rows: NDArray[np.intp] | None = None
    ) -> FloatArray:
        """``int |x|^n (-df/dE) dE`` over the intervals `rows` (all by default) of `knots`.

        Shape ``(n_rows, n_curves)``. Exact for ``n = 0``; for ``n > 0`` a 4-point Gauss
        rule in the variable ``f``, in which the kernel is ``|ln((1 - f) / f)|^n df``: an
        estimate, good to a few per cent on the narrow intervals that matter.
        """
        index = np.arange(self.count)[curves]
        power = np.asarray(self.powers)[index // self.pairs]
        pairs, column = np.unique(index % self.pairs, return_inverse=True)
        x, filled, empty = self._at_knots(knots, pairs)
        lower = np.arange(knots.size - 1) if rows is None else rows
        mass = self._interval_masses(filled, empty, x)[lower][:, column]
        reach = np.maximum(1.0, np.maximum(np.abs(x[:-1]), np.abs(x[1:])))[lower][:, column]
        # Far in the tails the bound mass * max(1, |x|)^n (below rounding of a unit weight)
        # stands in for the moment; the Gauss rule is spent where it matters.
        out = mass * reach ** power[np.newaxis, :]
        weighted = np.nonzero((power[np.newaxis, :] > 0) & (out > _TAIL_MASS))
        if weighted[0].size == 0:
            return out
        at, pair = lower[weighted[0]], column[weighted[1]]
        width, low, high = mass[weighted], filled[at + 1, pair], empty[at, pair]
        exponent = power[weighted[1]]
        fallback = np.maximum(np.abs(x[at, pair]), np.abs(x[at + 1, pair]))
        moment = np.zeros(width.size)
        for node, weight in zip(self._nodes, self._weights, strict=True):
            occupied = low + width * node
            vacant = high + width * (1.0 - node)
            with np.errstate(divide="ignore", invalid="ignore"):
                level = np.abs(np.log(vacant / occupied))
            level = np.where(np.isfinite(level), level, fallback)
            moment += weight * level**exponent
        out[weighted] = width * moment
        return out


class _QuadratureKernels:
    """Kernels ``K_c(E)`` given as a function, normalized to unit weight by quadrature.

    `kernel` maps energies ``(n,)`` to kernel values ``(n, n_curves)``; `breaks` are panel
    edges that resolve every kernel (each thermal window at a fraction of its ``kT``, and
    the kinks of zero-temperature kernels). Interval masses come from 10-point
    Gauss-Legendre rules on the panels between the knots and the breaks, exact to rounding
    for smooth kernels. `columns` maps every sampled column to its curve (the discrepancy
    of a curve is the largest over its columns); None weights all columns for every curve.
    """

    _nodes, _weights = np.polynomial.legendre.leggauss(10)

    def __init__(
        self,
        kernel: Callable[[FloatArray], FloatArray],
        breaks: FloatArray,
        count: int,
        *,
        columns: NDArray[np.intp] | None = None,
    ) -> None:
        self.kernel, self.breaks, self.count, self.columns = kernel, breaks, count, columns
        total = self._interval_integrals(np.array([breaks[0], breaks[-1]]))[0]
        self.scale = np.where(total > 0, 1.0 / np.where(total > 0, total, 1.0), 0.0)

    def _interval_integrals(self, knots: FloatArray) -> FloatArray:
        inner = self.breaks[(self.breaks > knots[0]) & (self.breaks < knots[-1])]
        edges = np.union1d(knots, inner)
        centres = 0.5 * (edges[1:] + edges[:-1])
        halves = 0.5 * np.diff(edges)
        nodes = centres[:, np.newaxis] + halves[:, np.newaxis] * self._nodes[np.newaxis, :]
        values = self.kernel(nodes.ravel()).reshape(*nodes.shape, self.count)
        panels = np.einsum("pnc,n,p->pc", values, self._weights, halves)
        cumulative = np.concatenate([np.zeros((1, self.count)), np.cumsum(panels, axis=0)])
        at_knots = cumulative[np.searchsorted(edges, knots)]
        return np.asarray(np.maximum(np.diff(at_knots, axis=0), 0.0), dtype=float)

    def reduce(self, discrepancy: FloatArray) -> FloatArray:
        if self.columns is None:
            return np.asarray(discrepancy.max(axis=1, keepdims=True), dtype=float)
        out = np.zeros((discrepancy.shape[0], self.count))
        np.maximum.at(out.T, self.columns, discrepancy.T)
        return out

    def bound(self, knots: FloatArray) -> FloatArray:
        """Every interval's largest mass over the curves, (n_intervals,)."""
        return np.asarray(
            (self._interval_integrals(knots) * self.scale).max(axis=1, initial=0.0), dtype=float
        )

    def masses(
        self, knots: FloatArray, curves: slice, rows: NDArray[np.intp] | None = None
    ) -> FloatArray:
        values = (self._interval_integrals(knots) * self.scale)[:, curves]
        return values if rows is None else values[rows]


def _interpolated(
    knots: FloatArray, values: FloatArray, energies: FloatArray, interpolation: str = "pchip"
) -> FloatArray:
    """The interpolant of :mod:`mesoscopic.landauer` (monotone cubic by default) at `energies`."""
    with np.errstate(over="ignore"):
        if interpolation == "cubic" and knots.size >= 4:
            return np.asarray(
                scipy.interpolate.CubicSpline(knots, values, axis=0, bc_type="not-a-knot")(
                    energies
                ),
                dtype=float,
            )
        if interpolation == "linear":
            return np.asarray(
                scipy.interpolate.interp1d(knots, values, axis=0, assume_sorted=True)(energies),
                dtype=float,
            )
        return np.asarray(
            scipy.interpolate.PchipInterpolator(knots, values, axis=0)(energies), dtype=float
        )


class _Refinement:
    """Result of :func:`_refined_samples`."""

    def __init__(
        self,
        energies: FloatArray,
        samples: FloatArray,
        errors: list[FloatArray],
        converged: bool,
        rounds: int,
    ) -> None:
        self.energies, self.samples, self.errors = energies, samples, errors
        self.converged, self.rounds = converged, rounds


def _refined_samples(
    sample: Callable[[FloatArray], FloatArray],
    grid: FloatArray,
    steps: FloatArray,
    kernels: Sequence[Any],
    *,
    tol: float,
    max_points: int,
    interpolation: str = "pchip",
) -> _Refinement:
    """Samples refined until every kernel average of every curve is within `tol`.

    `sample` maps energies ``(n,)`` to samples ``(n, n_columns)``: transmissions, a whole
    transmission matrix, or the noise coefficients of the S-matrices; it is called once
    per round, so each round is one batched solve. `grid` is the starting grid (with the
    pairs around `steps` in it). Each element of `kernels` (:class:`_ThermalKernels`,
    :class:`_QuadratureKernels`) has ``count`` curves, ``masses(knots, curves, rows)``, the
    weight of every interval in every curve (of order one in total), and
    ``reduce(discrepancy)``, which columns every curve weights. Returns the energies, the
    samples there, the error estimate of every curve of every kernel (in units of the
    samples), whether all are below `tol`, and the number of rounds (solver calls).
    """
    knots = grid
    values = sample(knots)
    rounds = 1
    tested_at = np.full(knots.size - 1, np.nan)
    tested = np.zeros((knots.size - 1, values.shape[1]))
    offsets = _step_offsets(steps)

    def result(errors: list[FloatArray], done: bool) -> _Refinement:
        energies, samples = _merged_samples(knots, values, tested_at, tested)
        return _Refinement(energies, samples, errors, done, rounds)

    while True:
        spacing = np.diff(knots)
        midpoint = knots[:-1] + 0.5 * spacing
        # An interval around a step (a lead band edge) is integrated as a step; its midpoint
        # is the band edge itself, where the modes are singular, so it is never sampled.
        nearest = np.clip(np.searchsorted(steps, midpoint), 0, max(steps.size - 1, 0))
        across = np.zeros(spacing.size, dtype=bool)
        for candidate in (np.maximum(nearest - 1, 0), nearest):
            if steps.size:
                across |= (np.abs(midpoint - steps[candidate]) < offsets[candidate]) & (
                    spacing <= 2.5 * offsets[candidate]
                )
        too_narrow = spacing <= _NARROWEST_ULPS * np.spacing(np.maximum(np.abs(knots[1:]), 1.0))
        scale = 1.0 + float(np.max(np.abs(values), initial=0.0))
        weights_max = np.zeros(spacing.size)
        for kernel in kernels:
            weights_max = np.maximum(weights_max, kernel.bound(knots))
        active = (weights_max * scale > _NEGLIGIBLE_WEIGHT * tol) & ~across & ~too_narrow
        fresh = active & np.isnan(tested_at)
        spent = knots.size + int(np.count_nonzero(~np.isnan(tested_at)))
        if np.any(fresh):
            if spent + int(np.count_nonzero(fresh)) > max_points:
                checked = active & ~np.isnan(tested_at)
                errors, _ = _estimate(
                    knots, values, tested_at, tested, checked, kernels, tol, interpolation
                )
                # Intervals never checked are unknown: the estimate is at least the tolerance.
                return result([np.maximum(e, np.nextafter(tol, np.inf)) for e in errors], False)
            tested_at[fresh] = midpoint[fresh]
            tested[fresh] = sample(midpoint[fresh])
            rounds += 1
        checked = active & ~np.isnan(tested_at)
        errors, selected = _estimate(
            knots, values, tested_at, tested, checked, kernels, tol, interpolation
        )
        if max((float(np.max(e, initial=0.0)) for e in errors), default=0.0) <= tol:
            return result(errors, True)
        if not np.any(selected):
            return result(errors, False)
        # Bisect the selected intervals at their (already sampled) midpoints.
        position = np.flatnonzero(selected) + 1
        knots = np.insert(knots, position, tested_at[selected])
        values = np.insert(values, position, tested[selected], axis=0)
        keep_at = np.insert(tested_at, position, np.nan)
        keep = np.insert(tested, position, 0.0, axis=0)
        split = np.flatnonzero(selected) + np.arange(int(np.count_nonzero(selected)))
        keep_at[split] = np.nan
        keep[split] = 0.0
        tested_at, tested = keep_at, keep


def _estimate(
    knots: FloatArray,
    values: FloatArray,
    tested_at: FloatArray,
    tested: FloatArray,
    checked: NDArray[np.bool_],
    kernels: Sequence[Any],
    tol: float,
    interpolation: str,
) -> tuple[list[FloatArray], NDArray[np.bool_]]:
    """Error estimate of every curve of every kernel and the intervals to bisect.

    An interval's error for a curve is the largest difference, over the columns the curve
    weights, between the sample at its midpoint and the interpolant of the knots there,
    times the interval's share of that curve's kernel. For every curve whose summed
    estimate exceeds `tol`, its intervals are bisected largest first until what is left is
    below ``tol / 2``.
    """
    discrepancy = np.zeros((knots.size - 1, values.shape[1]))
    if np.any(checked):
        predicted = _interpolated(knots, values, tested_at[checked], interpolation)
        discrepancy[checked] = np.abs(tested[checked] - predicted)
    rows = np.flatnonzero(discrepancy.max(axis=1, initial=0.0) > 0)
    errors = [np.zeros(kernel.count) for kernel in kernels]
    selected = np.zeros(knots.size - 1, dtype=bool)
    if rows.size == 0:
        return errors, selected
    for kernel, kernel_errors in zip(kernels, errors, strict=True):
        reduced = kernel.reduce(discrepancy[rows])
        block = max(1, _BLOCK // rows.size)
        for start in range(0, kernel.count, block):
            curves = slice(start, start + block)
            masses = kernel.masses(knots, curves, rows)
            weight = reduced if reduced.shape[1] == 1 else reduced[:, curves]
            contribution = weight * masses
            total = contribution.sum(axis=0)
            kernel_errors[curves] = total
            over = total > tol
            if not np.any(over):
                continue
            part = contribution[:, over]
            ordered = np.sort(part, axis=0)
            kept_small = np.cumsum(ordered, axis=0) <= 0.5 * tol
            count = kept_small.sum(axis=0)
            threshold = np.where(
                count > 0, ordered[np.maximum(count - 1, 0), np.arange(part.shape[1])], 0.0
            )
            selected[rows[np.any(part > threshold, axis=1)]] = True
    return errors, selected


def _merged_samples(
    knots: FloatArray, values: FloatArray, tested_at: FloatArray, tested: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Knots and midpoint samples together, sorted: every computed transmission is used."""
    extra = ~np.isnan(tested_at)
    energies = np.concatenate([knots, tested_at[extra]])
    samples = np.concatenate([values, tested[extra]])
    order = np.argsort(energies, kind="stable")
    return energies[order], samples[order]


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def _to_from(fsys: System, leads: Any) -> tuple[int, int]:
    return _checks.lead_pair(
        leads,
        len(fsys.leads),
        "(to_lead, from_lead)",
        "for the reflection and the diagonal of the conductance matrix use matrix=True",
    )


def _parameter_batch(
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    sweep: Mapping[str, ArrayLike] | None,
) -> tuple[list[dict[str, Any]], dict[str, NDArray[Any]], tuple[int, ...]]:
    """The parameter dictionaries of the batch, its coordinates and its shape."""
    coords: dict[str, NDArray[Any]] = {}
    if params is None:
        bases: list[Mapping[str, Any]] = [{}]
        listed = False
    elif isinstance(params, Mapping):
        bases, listed = [params], False
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        bases, listed = list(params), True
        if not bases or not all(isinstance(p, Mapping) for p in bases):
            raise TypeError(
                "params must be a dict of parameter values, or a non-empty list of such dicts "
                f"(one per batch element), got {_checks._show(params)}"
            )
        coords["batch"] = np.arange(len(bases))
    else:
        raise TypeError(
            "params must be a dict of parameter values, or a list of such dicts (one per "
            f"batch element), got {_checks._show(params)}"
        )
    if sweep is None:
        sweep = {}
    if not isinstance(sweep, Mapping):
        raise TypeError(
            "sweep must be a dict from parameter name to a 1-D array of its values, e.g. "
            f"sweep={{'phi': np.linspace(0, 0.1, 11)}}, got {_checks._show(sweep)}"
        )
    for name, values in sweep.items():
        if not isinstance(name, str) or name == "batch":
            raise ValueError(
                f"sweep keys must be parameter names (str, not 'batch'), got {name!r}"
            )
        clash = [k for k, base in enumerate(bases) if name in base]
        if clash:
            raise ValueError(
                f"parameter {name!r} is given both in params and in sweep; give it in one"
            )
        array = np.asarray(values)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(
                f"sweep[{name!r}] must be a non-empty 1-D array of values, got shape {array.shape}"
            )
        coords[name] = array
    shape = tuple(c.size for c in coords.values())
    swept = list(sweep)
    batch: list[dict[str, Any]] = []
    for index in itertools.product(*(range(n) for n in shape)):
        base = bases[index[0]] if listed else bases[0]
        item = dict(base)
        for name, k in zip(swept, index[1:] if listed else index):
            value = coords[name][k]
            item[name] = value.item() if isinstance(value, np.generic) else value
        batch.append(item)
    return batch, coords, shape


def conductance(
    fsys: System,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    sweep: Mapping[str, ArrayLike] | None = None,
    leads: tuple[int, int] = (1, 0),
    matrix: bool = False,
    tol: float = 1e-8,
    max_points: int = 20_000,
    steps: ArrayLike = (),
    resonance_orbitals: int = 2000,
    options: SolverOptions | Mapping[str, Any] | None = None,
    solver: str | None = None,
    device: str | None = None,
) -> xr.Dataset:
    """Linear conductance at finite temperature, on an energy grid chosen and refined by itself.

    ``G = g_s int T_{to, from}(E) (-df/dE) dE`` in units of ``e^2/h``, with ``g_s`` the
    system's spin degeneracy, for every pair of `mu` and `kT` and every element of a batch
    of parameter values; with ``matrix=True`` the Büttiker conductance matrix of all leads
    (``G[i, i] = g_s sum_{j != i} <T_ij>``, ``G[i, j] = -g_s <T_ij>``; terminal currents
    ``I = G V``, see :func:`mesoscopic.network.conductance_matrix`).

    The energies are chosen as the module docstring describes: thermal windows
    ``mu ± 34 kT`` at spacing ``kT``, the lead band edges as steps, the bound-state energies
    of the scattering region (up to `resonance_orbitals` orbitals) as points, and bisection
    of the intervals whose estimated error is largest until the estimate of every
    conductance is below `tol` (per unit transmission: ``g_s tol`` in ``e^2/h``). All
    transmissions come from :func:`mesoscopic.transmission`, one call per refinement round.

    Parameters
    ----------
    fsys : System
        Finalized system with at least two leads.
    mu : float or array_like, shape (n_mu,)
        Chemical potentials (Fermi energies), energy units.
    kT : float or array_like, shape (n_kT,)
        Thermal energies ``k_B T >= 0``, energy units. At ``kT = 0`` the result is
        ``g_s T(mu)``, computed at `mu` itself.
    params : dict or list of dicts, optional
        Parameter values of the Hamiltonian, by name. A list is a batch: one conductance per
        dict, along a ``batch`` dimension.
    sweep : dict of str to 1-D array_like, optional
        Parameters to sweep, each along its own dimension named after it (the outer product
        of all, after ``batch``), e.g. ``sweep={"phi": np.linspace(0, 0.05, 21)}`` for a
        field sweep. Each value enters ``params`` under its name.
    leads : (int, int), optional
        ``(to_lead, from_lead)``, the order of :meth:`mesoscopic.SMatrix.transmission` and
        of Kwant: ``T[to, from]`` is the transmission from lead ``from_lead`` into lead
        ``to_lead``. Default ``(1, 0)``: from lead 0 into lead 1, as the ``to_lead`` and
        ``from_lead`` of :func:`mesoscopic.thermoelectric.thermoelectric_response`.
        Ignored with ``matrix=True``.
    matrix : bool, optional
        Return the conductance matrix of all leads instead of one transmission: the road
        to multi-terminal quantities at temperature. ``G.conductance`` (over ``to_lead,
        from_lead``, last) goes as it is into :func:`mesoscopic.network.four_terminal_resistance`,
        :func:`mesoscopic.network.hall_resistance`, :func:`mesoscopic.network.solve` and
        :func:`mesoscopic.network.eliminate_probes` (voltage probes in linear response),
        which treat the leading ``(mu, kT, ...)`` axes as a batch.
    tol : float, optional
        Target of the error estimate of every thermal average ``<T>`` (default 1e-8).
    max_points : int, optional
        Most energies computed per batch element (default 20000); beyond it the refinement
        stops with a :class:`ConvergenceWarning`.
    steps : float or array_like, optional
        Further energies where ``T(E)`` jumps (besides the lead band edges, found by
        themselves), e.g. the edges of a lead given only by a self-energy.
    resonance_orbitals : int, optional
        Largest scattering region (in orbitals) whose bound-state energies are computed
        (dense diagonalization) to seed the grid at narrow resonances; 0 switches it off.
    options : SolverOptions or dict, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`), passed to
        :func:`mesoscopic.transmission`.
    solver, device : str, optional
        Shorthands for the same settings; giving one of them and `options` is an error.

    Returns
    -------
    xarray.Dataset
        ``conductance`` over ``(*batch dims, mu, kT)`` (plus ``to_lead, from_lead`` with
        ``matrix=True``), units ``e^2/h`` with the spin degeneracy included (attribute
        ``spin_degeneracy``); ``error_estimate`` (``e^2/h``, per transmission), over the same
        dimensions without the leads; ``energy_points`` (energies computed) and
        ``converged`` over the batch dimensions. A number given for `mu` or `kT` becomes a
        scalar coordinate. Attributes: ``to_lead``, ``from_lead`` (two-terminal), ``tol``,
        ``spin_degeneracy``.

    Raises
    ------
    ValueError, TypeError
        Bad `mu`, `kT`, leads, params or sweep (the message names the value).

    Warns
    -----
    ConvergenceWarning
        The error estimate of some batch element stayed above `tol` within `max_points`.

    Examples
    --------
    A clean wire of width 3: ``G = sum_n f(E_n - mu)`` with subband edges
    ``E_n = 2 - 2 cos(n pi / 4)`` (0.586, 2, 3.414); on a threshold the step is half open.

    >>> import numpy as np
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.square(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(x, y) for x in range(2) for y in range(3))] = 4.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
    >>> lead[(lat(0, y) for y in range(3))] = 4.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> G = meso.conductance(syst.finalized(), mu=[1.0, 2.0, 3.0], kT=0.01)
    >>> G.conductance.values.round(6).tolist(), G.conductance.attrs["units"]
    ([1.0, 1.5, 2.0], 'e^2/h')
    """
    system = _checks.finalized_system(fsys, "conductance", min_leads=2)
    to_lead, from_lead = _to_from(system, leads)
    if not isinstance(matrix, (bool, np.bool_)):
        raise TypeError(f"matrix must be True or False, got {_checks._show(matrix)}")
    potentials = _checks.real_vector(mu, "mu")
    temperatures = _thermal_energies(kT)
    tolerance = float(_checks.positive(tol, "tol"))
    max_points = _checks.positive_int(max_points, "max_points", minimum=16)
    resonance_orbitals = _checks.positive_int(resonance_orbitals, "resonance_orbitals", minimum=0)
    given_steps = _step_energies(steps)
    settings = solver_options(options, solver=solver, device=device)
    batch, batch_coords, batch_shape = _parameter_batch(params, sweep)
    from .batch import transmission
    from .network import conductance_matrix

    n_leads = len(system.leads)
    g_s = system.spin_degeneracy
    hot_kT = temperatures[temperatures > 0]
    cold = temperatures == 0
    n_curves = n_leads * n_leads if matrix else 1
    averages = np.zeros((len(batch), potentials.size, temperatures.size, n_curves))
    errors = np.zeros((len(batch), potentials.size, temperatures.size))
    points = np.zeros(len(batch), dtype=np.int64)
    converged = np.ones(len(batch), dtype=bool)
    pair_mu = np.repeat(potentials, hot_kT.size)
    pair_kT = np.tile(hot_kT, potentials.size)

    for item, item_params in enumerate(batch):

        def sample(energies: FloatArray, item_params: dict[str, Any] = item_params) -> FloatArray:
            if matrix:
                values = transmission(system, energies, params=item_params, options=settings)
                values = np.array(values, dtype=float)
                diagonal = np.arange(n_leads)
                values[:, diagonal, diagonal] = 0.0
                return values.reshape(energies.size, n_curves)
            values = transmission(
                system,
                energies,
                to_lead,
                from_lead,
                params=item_params,
                options=settings,
            )
            return np.asarray(values, dtype=float).reshape(energies.size, 1)

        if hot_kT.size:
            grid = energy_grid(potentials, hot_kT, points_per_kT=1.0)
            start, jumps = _starting_grid(
                system, item_params, grid, given_steps, pair_mu, pair_kT, resonance_orbitals
            )
            refined = _refined_samples(
                sample,
                start,
                jumps,
                [_ThermalKernels(pair_mu, pair_kT)],
                tol=tolerance,
                max_points=max_points,
            )
            points[item] += refined.energies.size
            converged[item] = refined.converged
            thermal = landauer.linear_conductance(
                refined.energies, refined.samples, potentials[:, np.newaxis], hot_kT[np.newaxis, :]
            )
            averages[item][:, ~cold, :] = thermal
            errors[item][:, ~cold] = refined.errors[0].reshape(potentials.size, hot_kT.size)
        if np.any(cold):
            at_mu = sample(potentials)
            points[item] += potentials.size
            averages[item][:, cold, :] = at_mu[:, np.newaxis, :]

    if not np.all(converged):
        failed = [
            tuple(int(k) for k in np.unravel_index(i, batch_shape)) if batch_shape else ()
            for i in np.flatnonzero(~converged)
        ]
        shown = ", ".join(str(f) for f in failed[:10]) + (" ..." if len(failed) > 10 else "")
        worst = float(np.max(errors[~converged], initial=0.0))
        warnings.warn(
            f"the adaptive energy grid did not reach tol={tolerance:g} within "
            f"max_points={max_points} energies for {len(failed)} of {len(batch)} batch "
            f"elements (batch indices {shown}); the largest error estimate is {worst:.3g} "
            "(per unit transmission). Raise max_points, loosen tol, or give the energies of "
            "sharp features of T(E) as steps=",
            ConvergenceWarning,
            stacklevel=2,
        )

    dims = (*batch_coords, "mu", "kT")
    shape = (*batch_shape, potentials.size, temperatures.size)
    if matrix:
        g = conductance_matrix(
            averages.reshape(*shape, n_leads, n_leads), spin_degeneracy=g_s, check=False
        )
        g_dims: tuple[str, ...] = (*dims, "to_lead", "from_lead")
        description = "Büttiker conductance matrix G[to_lead, from_lead], I = G V"
    else:
        g = g_s * averages.reshape(shape)
        g_dims = dims
        description = f"linear conductance from lead {from_lead} into lead {to_lead}"
    coords: dict[str, Any] = {name: (name, values) for name, values in batch_coords.items()}
    coords["mu"] = xr.DataArray(potentials, dims="mu", attrs={"units": "energy"})
    coords["kT"] = xr.DataArray(temperatures, dims="kT", attrs={"units": "energy"})
    if matrix:
        coords["to_lead"] = np.arange(n_leads)
        coords["from_lead"] = np.arange(n_leads)
    batch_dims = tuple(batch_coords)
    attrs: dict[str, Any] = {"spin_degeneracy": g_s, "tol": tolerance}
    if not matrix:
        attrs.update(to_lead=to_lead, from_lead=from_lead)
    dataset = xr.Dataset(
        {
            "conductance": xr.DataArray(
                g,
                dims=g_dims,
                attrs={
                    "units": "e^2/h",
                    "long_name": description,
                    "spin_degeneracy": g_s,
                },
            ),
            "error_estimate": xr.DataArray(
                g_s * errors.reshape(shape),
                dims=dims,
                attrs={
                    "units": "e^2/h",
                    "long_name": "estimated error of the thermal average (per transmission)",
                },
            ),
            "energy_points": xr.DataArray(
                points.reshape(batch_shape),
                dims=batch_dims,
                attrs={"long_name": "energies at which T(E) was computed"},
            ),
            "converged": xr.DataArray(
                converged.reshape(batch_shape),
                dims=batch_dims,
                attrs={"long_name": "error estimate below tol"},
            ),
        },
        coords=coords,
        attrs=attrs,
    )
    scalar_dims = [name for name, given in (("mu", mu), ("kT", kT)) if np.ndim(given) == 0]
    return dataset.squeeze(scalar_dims) if scalar_dims else dataset
