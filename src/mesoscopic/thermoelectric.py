"""Thermoelectric response of tight-binding devices: thermopower, Peltier, heat conductance, ZT.

The transmission ``T(E)`` between two leads of a finalized system is computed on an energy
grid built from the requested chemical potentials and temperatures, and the linear-response
coefficients follow from the Onsager integrals of :mod:`mesoscopic.landauer`
(:func:`mesoscopic.landauer.thermoelectric_coefficients`, which documents the formulas and
sign conventions: electrons carry charge ``-e``, so ``S < 0`` where ``T(E)`` rises with
energy). Results come as an :class:`xarray.Dataset` over ``mu`` and ``kT`` whose variables
carry their units.

At low temperature the thermopower obeys the Mott formula (Cutler and Mott, Phys. Rev. 181,
1336 (1969); for mesoscopic conductors Sivan and Imry, Phys. Rev. B 33, 551 (1986))

``S = -(pi^2 / 3) kT d ln T / dE |_mu``   in units of ``k_B / e``,

with corrections of relative order ``(kT / delta)^2`` for a transmission that varies on the
energy scale ``delta``; :func:`mott_seebeck` evaluates it on the same interpolant. For a
transmission that is flat across ``mu +- 40 kT`` the Wiedemann-Franz law holds exactly:
the Lorenz ratio ``kappa / (G T)`` is ``pi^2 / 3`` in units of ``(k_B / e)^2``.

Units: energies (``mu``, ``kT``, the grid) in the unit of the Hamiltonian; see
:func:`thermoelectric_response` for the units of every result.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import scipy.interpolate
import scipy.optimize
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from . import _checks, landauer
from . import leads as _leads
from .system import System

__all__ = [
    "energy_grid",
    "mott_seebeck",
    "thermoelectric_response",
    "transmission_curve",
]

FloatArray = NDArray[np.float64]

# The grid reaches this many kT beyond every chemical potential: landauer needs mu +- 38 kT
# for the second Onsager integral.
_WINDOW_KT = 40.0
_LANDAUER_WINDOW_KT = 38.0
# A step of T(E) at energy e (a band edge of a lead, where a channel opens) enters the grid
# as the pair e -+ _STEP_OFFSET * max(1, |e|): the transmission is evaluated just below and
# just above the edge, never on it (where the lead modes are singular), and the monotone
# interpolant ramps between the two in a width ~1e-8, whose error in a thermal average is
# of order (width / kT)^2. The offset stays far above the lead solver's band-edge
# tolerance (1e-11 of the lead's energy scale), so the mode counts on either side are right.
_STEP_OFFSET = 1e-8
# Lead bands are sampled at this many momenta before every extremum is refined.
_BAND_SAMPLES = 128


def _positive_kT(kT: ArrayLike) -> FloatArray:
    values = _checks.temperature(kT, "kT")
    if values.ndim > 1:
        raise ValueError(f"kT must be a number or a 1-D array, got shape {values.shape}")
    if np.any(values == 0):
        raise ValueError(
            "kT must be > 0 for thermoelectric coefficients: at kT = 0 the thermopower and the "
            "heat conductance vanish and the Lorenz ratio is its Sommerfeld value pi^2/3; got "
            "kT = 0"
        )
    return np.atleast_1d(values)


def _chemical_potentials(mu: ArrayLike) -> FloatArray:
    values = _checks.real_array(mu, "mu")
    if values.ndim > 1:
        raise ValueError(f"mu must be a number or a 1-D array, got shape {values.shape}")
    return np.atleast_1d(values)


def energy_grid(
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    points_per_kT: float = 2.0,
    max_spacing: float | None = None,
    window_kT: float = _WINDOW_KT,
    steps: ArrayLike = (),
) -> FloatArray:
    """Energy grid for the thermal averages at every pair of `mu` and `kT`.

    The grid covers ``mu +- window_kT * kT`` for every pair, with spacing at most
    ``kT / points_per_kT`` inside each such window (the finest that applies where windows
    overlap) and at most `max_spacing` everywhere; stretches that no window reaches get no
    points. Every energy of `steps` inside the grid becomes a pair of points
    ``e -+ 1e-8 max(1, |e|)`` (points closer to ``e`` than that are dropped), so that a
    jump of ``T(E)`` at ``e`` is sampled on both sides and the monotone interpolant of
    :mod:`mesoscopic.landauer` integrates it as a step.

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
        Half-width of each window in units of its ``kT`` (default 40; at least 38).
    steps : float or array_like, optional
        Energies where ``T(E)`` may jump, e.g. the band edges of the leads, where channels
        open (:func:`thermoelectric_response` adds those of the leads itself).

    Returns
    -------
    ndarray, shape (n_E,)
        Strictly increasing energies.

    Examples
    --------
    >>> E = energy_grid([0.0, 0.1], 0.01)
    >>> float(E[0]), float(E[-1]), round(float(np.max(np.diff(E))), 12), E.size
    (-0.4, 0.5, 0.005, 181)
    >>> E = energy_grid(0.0, 0.01, steps=0.0)   # a step at E = 0: sampled either side
    >>> E[(E > -0.001) & (E < 0.001)].tolist()
    [-1e-08, 1e-08]
    """
    potentials = _chemical_potentials(mu)
    temperatures = _positive_kT(kT)
    density = float(_checks.positive(points_per_kT, "points_per_kT"))
    if density < 1:
        raise ValueError(f"points_per_kT must be >= 1, got {points_per_kT!r}")
    reach = float(_checks.positive(window_kT, "window_kT"))
    if reach < _LANDAUER_WINDOW_KT:
        raise ValueError(
            f"window_kT must be >= 38 (landauer integrates mu +- 38 kT), got {window_kT!r}"
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
        if not (hasattr(lead, "cell_hamiltonian") and hasattr(lead, "inter_cell_hopping")):
            continue
        h = np.asarray(lead.cell_hamiltonian(params), dtype=complex)
        v = np.asarray(lead.inter_cell_hopping(params), dtype=complex)
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


def _check_coverage(grid: FloatArray, mu: FloatArray, kT: FloatArray) -> None:
    """Refuse, before any transmission is computed, a grid that misses a thermal window."""
    need_low = float(np.min(mu) - _LANDAUER_WINDOW_KT * np.max(kT))
    need_high = float(np.max(mu) + _LANDAUER_WINDOW_KT * np.max(kT))
    if grid[0] > need_low or grid[-1] < need_high:
        raise ValueError(
            f"the energy grid covers [{grid[0]:.6g}, {grid[-1]:.6g}] but the thermal windows "
            f"mu +- {_LANDAUER_WINDOW_KT:g} kT reach [{need_low:.6g}, {need_high:.6g}]; "
            "extend the energy grid to cover them, or leave energies=None"
        )


def _lead_pair(fsys: System, leads: Any) -> tuple[int, int]:
    n_leads = len(fsys.leads)
    try:
        source, drain = leads
    except (TypeError, ValueError):
        raise TypeError(
            f"leads must be a pair (source, drain) of lead indices, got {_checks._show(leads)}"
        ) from None
    pair = []
    for lead in (source, drain):
        if isinstance(lead, bool) or not isinstance(lead, numbers.Integral):
            raise TypeError(f"leads must hold lead indices (int), got {_checks._show(leads)}")
        if not 0 <= int(lead) < n_leads:
            raise ValueError(f"lead {lead} does not exist; this system has leads 0..{n_leads - 1}")
        pair.append(int(lead))
    if pair[0] == pair[1]:
        raise ValueError(
            f"leads must be two different leads (source, drain), got {tuple(pair)}; the "
            "thermoelectric response of one lead to itself is not defined"
        )
    return pair[0], pair[1]


def _check_system(fsys: Any, what: str) -> System:
    if not isinstance(fsys, System):
        raise TypeError(
            f"{what} needs a finalized system (Builder.finalized()), got {type(fsys).__name__}"
        )
    if len(fsys.leads) < 2:
        raise ValueError(f"{what} needs a system with at least two leads, got {len(fsys.leads)}")
    return fsys


def transmission_curve(
    fsys: System,
    energies: ArrayLike,
    *,
    leads: tuple[int, int] = (0, 1),
    params: Mapping[str, Any] | None = None,
) -> FloatArray:
    """Transmission ``T(E)`` from lead ``leads[0]`` into lead ``leads[1]`` at many energies.

    Computed by the batched solver :func:`mesoscopic.transmission` (recursive Green's
    functions, or the sparse solver where the system does not slice well), with the
    Hamiltonian and the leads evaluated once for all energies.

    Parameters
    ----------
    fsys : System
        Finalized system with at least two leads.
    energies : array_like, shape (n_E,)
        Energies, in the unit of the Hamiltonian.
    leads : (int, int), optional
        ``(source, drain)``.
    params : dict, optional
        Parameter values of the Hamiltonian, by name.

    Returns
    -------
    ndarray, shape (n_E,)
        Dimensionless transmission (summed over the channels, spin not included).

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(3))] = 0.0
    >>> syst[lat(1)] = 1.0                       # an impurity
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> transmission_curve(syst.finalized(), [0.0, 2.5]).round(12)   # 1/(1 + 1/4) at E = 0
    array([0.8, 0. ])
    """
    system = _check_system(fsys, "transmission_curve")
    grid = _checks.real_array(energies, "energies")
    if grid.ndim != 1:
        raise ValueError(f"energies must be a 1-D array, got shape {grid.shape}")
    source, drain = _lead_pair(system, leads)
    from .batch import transmission

    return np.asarray(transmission(system, grid, drain, source, params=params), dtype=float)


def mott_seebeck(
    energies: ArrayLike,
    transmission: ArrayLike,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    steps: ArrayLike = (),
) -> FloatArray:
    """Thermopower from the Mott formula, ``S = -(pi^2/3) kT T'(mu) / T(mu)``, in ``k_B/e``.

    ``T`` and ``T'`` are taken from not-a-knot cubic splines through the samples, one for
    each stretch of the grid between two `steps` (a spline across a jump of ``T`` would ring
    on both sides of it), so that the comparison with :func:`thermoelectric_response`
    isolates the Sommerfeld expansion.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Strictly increasing energies.
    transmission : array_like, shape (n_E,)
        Samples of ``T(E)``.
    mu, kT : array_like
        Chemical potentials and thermal energies (energy units); broadcast together.
    steps : float or array_like, optional
        Energies where ``T(E)`` jumps: the ``step`` coordinate of
        :func:`thermoelectric_response`. A `mu` between the two samples that flank a step
        takes the stretch above it.

    Returns
    -------
    ndarray
        Mott thermopower in units of ``k_B/e``, the broadcast shape of `mu` and `kT`; NaN
        where ``T(mu) = 0``.

    Examples
    --------
    ``T(E) = exp(E)``: ``d ln T / dE = 1``, so ``S = -(pi^2/3) kT``.

    >>> import numpy as np
    >>> E = np.linspace(-1, 1, 201)
    >>> bool(np.isclose(mott_seebeck(E, np.exp(E), 0.0, 0.01), -np.pi**2 / 3 * 0.01))
    True
    """
    grid = _checks.real_array(energies, "energies")
    values = _checks.real_array(transmission, "transmission")
    if grid.ndim != 1 or grid.size < 4 or np.any(np.diff(grid) <= 0):
        raise ValueError("energies must be a strictly increasing 1-D grid of at least 4 points")
    if values.shape != grid.shape:
        raise ValueError(
            f"transmission must have the shape of energies {grid.shape}, got {values.shape}"
        )
    potentials = _checks.real_array(mu, "mu")
    temperatures = _checks.temperature(kT, "kT")
    if np.any((potentials < grid[0]) | (potentials > grid[-1])):
        raise ValueError(
            f"mu must lie inside the energy grid [{grid[0]:g}, {grid[-1]:g}], got "
            f"{_checks._show(mu)}"
        )
    jumps = _step_energies(steps)
    # Stretch boundaries: the first knot above each step that has knots on both sides.
    cuts = np.unique(np.searchsorted(grid, jumps, side="right"))
    cuts = cuts[(cuts > 0) & (cuts < grid.size)]
    bounds = np.concatenate([[0], cuts, [grid.size]])
    # A mu above the last knot below a step belongs to the stretch above it.
    stretch = np.searchsorted(grid[cuts - 1], potentials, side="left")
    value = np.zeros(np.shape(potentials))
    slope = np.zeros(np.shape(potentials))
    for piece in range(bounds.size - 1):
        low, high = int(bounds[piece]), int(bounds[piece + 1])
        here = stretch == piece
        if not np.any(here):
            continue
        knots = grid[low:high]
        degree = min(3, knots.size - 1)
        if degree == 3:
            spline = scipy.interpolate.CubicSpline(knots, values[low:high], bc_type="not-a-knot")
        else:
            spline = scipy.interpolate.make_interp_spline(knots, values[low:high], k=degree)
        value = np.where(here, spline(potentials), value)
        slope = np.where(here, spline(potentials, 1), slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(value != 0, slope / np.where(value != 0, value, 1.0), np.nan)
    return np.asarray(-(np.pi**2) / 3 * temperatures * ratio, dtype=float)


def thermoelectric_response(
    fsys: System,
    mu: ArrayLike,
    kT: ArrayLike,
    *,
    leads: tuple[int, int] = (0, 1),
    params: Mapping[str, Any] | None = None,
    energies: ArrayLike | None = None,
    points_per_kT: float = 2.0,
    max_spacing: float | None = None,
    phonon_conductance: ArrayLike = 0.0,
    interpolation: Literal["cubic", "pchip", "linear"] = "pchip",
    steps: ArrayLike = (),
) -> xr.Dataset:
    """Conductance, thermopower, Peltier coefficient, heat conductance, Lorenz ratio and ZT.

    Two-terminal linear response between ``leads = (source, drain)`` of a tight-binding
    device, for every pair of chemical potential and temperature. ``T(E)`` is computed on
    :func:`energy_grid` (or the given `energies`) with :func:`transmission_curve`, and the
    coefficients by :func:`mesoscopic.landauer.thermoelectric_coefficients` with the system's
    spin degeneracy.

    ``T(E)`` jumps (clean leads) or has a square-root onset wherever a lead's channel opens
    or closes, at the band minima and maxima of the leads. These band edges, found from the
    band structure of every lead at `params`, and the given `steps` are put into the grid
    (the default one and given `energies` alike) as pairs of points just either side
    (:func:`energy_grid`), and the monotone interpolant then integrates each jump as a
    step: a clean wire's thermally smeared staircase comes out exact to ~1e-9, with ``mu``
    anywhere, on a threshold included.

    Parameters
    ----------
    fsys : System
        Finalized system with at least two leads.
    mu : float or array_like, shape (n_mu,)
        Chemical potentials (equilibrium Fermi energies), energy units.
    kT : float or array_like, shape (n_kT,)
        Thermal energies ``k_B T > 0``, energy units.
    leads : (int, int), optional
        ``(source, drain)``: the transmission is ``T[drain, source]``. Other leads, if any,
        are ideal absorbers held at equilibrium (they take part only through ``T``).
    params : dict, optional
        Parameter values of the Hamiltonian, by name.
    energies : array_like, shape (n_E,), optional
        Energy grid; by default :func:`energy_grid` of `mu` and `kT`. Must cover
        ``mu +- 38 kT`` with spacing ``<= kT`` there.
    points_per_kT, max_spacing : float, optional
        Passed to :func:`energy_grid` (ignored with `energies`). Give `max_spacing` when
        ``T(E)`` has structure narrower than ``kT / points_per_kT``.
    phonon_conductance : float or array_like, optional
        Phonon heat conductance ``>= 0`` in units of ``k_B/h`` times energy, broadcast against
        ``(n_mu, n_kT)``; enters only ``zt``.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of the sampled ``T(E)`` (see :mod:`mesoscopic.landauer`). The default
        monotone cubic never overshoots, so it is exact on the steps at the band edges;
        the not-a-knot "cubic" spline rings at every step in the windows and is only for a
        ``T(E)`` that is smooth across them.
    steps : float or array_like, optional
        Further energies where ``T(E)`` jumps (besides the band edges of the leads, which
        are found automatically), e.g. the edges of a lead given only by a self-energy.

    Returns
    -------
    xarray.Dataset
        Coordinates ``mu`` (n_mu), ``kT`` (n_kT), ``energy`` (n_E) and ``step`` (the band
        edges and `steps` inside the grid, where ``T(E)`` may jump: pass them to
        :func:`mott_seebeck`); a number given for `mu` or `kT` becomes a scalar coordinate
        instead of an axis. Variables over
        ``(mu, kT)``, each with a ``units`` attribute: ``conductance`` (e^2/h, the spin
        degeneracy included), ``seebeck`` (k_B/e, 86.17 µV/K), ``peltier`` (energy unit / e;
        equal to ``seebeck * kT``), ``thermal_conductance`` (k_B/h times the energy unit,
        electronic, at zero electric current), ``lorenz`` ((k_B/e)^2), ``zt``
        (dimensionless), ``phonon_conductance`` (as given); and ``transmission`` over
        ``energy``. Attributes record the leads and the spin degeneracy.

    Raises
    ------
    ValueError
        ``kT <= 0``, non-finite ``mu``, nonexistent or equal leads, or a grid that does not
        cover or resolve the thermal windows.

    Examples
    --------
    A clean chain transmits 1 across its band: no thermopower, the Wiedemann-Franz value.

    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(2))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
    >>> lead[lat(0)] = 0.0
    >>> lead[lat.neighbors()] = -1.0
    >>> _ = syst.attach_lead(lead); _ = syst.attach_lead(lead.reversed())
    >>> result = thermoelectric_response(syst.finalized(), mu=[0.0, 0.5], kT=0.02)
    >>> result.conductance.values.round(10)      # one value per mu; kT was a number
    array([1., 1.])
    >>> bool(np.allclose(result.lorenz, np.pi**2 / 3, rtol=1e-8))
    True
    >>> result.seebeck.attrs["units"]
    'k_B/e'
    """
    system = _check_system(fsys, "thermoelectric_response")
    source, drain = _lead_pair(system, leads)
    potentials = _chemical_potentials(mu)
    temperatures = _positive_kT(kT)
    phonon = _checks.positive(phonon_conductance, "phonon_conductance", allow_zero=True)
    given_steps = _step_energies(steps)
    if energies is None:
        grid = energy_grid(
            potentials, temperatures, points_per_kT=points_per_kT, max_spacing=max_spacing
        )
    else:
        grid = _checks.real_array(energies, "energies")
        if grid.ndim != 1 or grid.size < 4 or np.any(np.diff(grid) <= 0):
            raise ValueError(
                "energies must be a strictly increasing 1-D grid of at least 4 points, got "
                f"{_checks._show(energies)}"
            )
        _check_coverage(grid, potentials, temperatures)
    edges = _lead_band_edges(system, params, float(grid[0]), float(grid[-1]))
    jumps = np.union1d(edges, given_steps)
    jumps = jumps[(jumps >= grid[0]) & (jumps <= grid[-1])]
    grid = _with_steps(grid, jumps)
    transmission = transmission_curve(system, grid, leads=(source, drain), params=params)
    g_s = system.spin_degeneracy
    coefficients = landauer.thermoelectric_coefficients(
        grid,
        transmission,
        potentials[:, np.newaxis],
        temperatures[np.newaxis, :],
        spin_degeneracy=g_s,
        phonon_conductance=phonon,
        interpolation=interpolation,
    )
    dims = ("mu", "kT")

    def variable(values: FloatArray, units: str, description: str) -> xr.DataArray:
        return xr.DataArray(values, dims=dims, attrs={"units": units, "long_name": description})

    dataset = xr.Dataset(
        {
            "conductance": variable(
                coefficients.conductance, "e^2/h", "linear conductance (spin degeneracy included)"
            ),
            "seebeck": variable(coefficients.seebeck, "k_B/e", "thermopower S"),
            "peltier": variable(coefficients.peltier, "energy/e", "Peltier coefficient S T"),
            "thermal_conductance": variable(
                coefficients.thermal_conductance,
                "k_B/h x energy",
                "electronic heat conductance at zero electric current",
            ),
            "lorenz": variable(coefficients.lorenz, "(k_B/e)^2", "Lorenz ratio kappa / (G T)"),
            "zt": variable(coefficients.zt, "1", "figure of merit S^2 G T / (kappa + kappa_ph)"),
            "phonon_conductance": variable(
                np.broadcast_to(phonon, coefficients.zt.shape).copy(),
                "k_B/h x energy",
                "phonon heat conductance (given)",
            ),
            "transmission": xr.DataArray(
                transmission,
                dims=("energy",),
                attrs={"units": "1", "long_name": f"transmission from lead {source} to {drain}"},
            ),
        },
        coords={
            "mu": xr.DataArray(potentials, dims="mu", attrs={"units": "energy"}),
            "kT": xr.DataArray(temperatures, dims="kT", attrs={"units": "energy"}),
            "energy": xr.DataArray(grid, dims="energy", attrs={"units": "energy"}),
            "step": xr.DataArray(
                jumps,
                dims="step",
                attrs={
                    "units": "energy",
                    "long_name": "band edges of the leads and given steps, where T(E) may jump",
                },
            ),
        },
        attrs={
            "source_lead": source,
            "drain_lead": drain,
            "spin_degeneracy": g_s,
            "sign_convention": "electrons carry charge -e; S < 0 where T(E) rises with energy",
        },
    )
    # A number given for mu or kT leaves a scalar coordinate rather than a length-1 axis.
    scalar_dims = [name for name, given in (("mu", mu), ("kT", kT)) if np.ndim(given) == 0]
    return dataset.squeeze(scalar_dims) if scalar_dims else dataset
