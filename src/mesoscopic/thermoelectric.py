"""Thermoelectric response of tight-binding devices: thermopower, Peltier, heat conductance, ZT.

The transmission ``T[to_lead, from_lead](E)`` of a finalized system is computed on the
adaptive energy grid of :func:`mesoscopic.conductance` (:mod:`mesoscopic.linear_response`),
refined against the kernels of all three Onsager integrals at once, or on a grid the user
gives; the linear-response coefficients follow from the Onsager integrals of
:mod:`mesoscopic.landauer`
(:func:`mesoscopic.landauer.thermoelectric_coefficients`, which documents the formulas and
sign conventions: electrons carry charge ``-e``, so ``S < 0`` where ``T(E)`` rises with
energy). Results come as an :class:`xarray.Dataset` over ``mu`` and ``kT`` whose variables
carry their units.

At low temperature the thermopower obeys the Mott formula (Cutler and Mott, Phys. Rev. 181,
1336 (1969); for mesoscopic conductors Sivan and Imry, Phys. Rev. B 33, 551 (1986))

``S = -(pi^2 / 3) kT d ln T / dE |_mu``   in units of ``k_B / e``,

with corrections of relative order ``(kT / delta)^2`` for a transmission that varies on the
energy scale ``delta``; :func:`mott_seebeck` evaluates it on the same interpolant. For a
transmission that is flat across the thermal window ``mu +- 34 kT``
(:data:`mesoscopic.landauer.THERMAL_WINDOW_KT`) the Wiedemann-Franz law holds exactly:
the Lorenz ratio ``kappa / (G T)`` is ``pi^2 / 3`` in units of ``(k_B / e)^2``.

Units: energies (``mu``, ``kT``, the grid) in the unit of the Hamiltonian; see
:func:`thermoelectric_response` for the units of every result.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import scipy.interpolate
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from . import _checks, landauer
from .linear_response import (
    ConvergenceWarning,
    _lead_band_edges,
    _positive_kT,
    _refined_samples,
    _starting_grid,
    _step_energies,
    _ThermalKernels,
    _with_steps,
    energy_grid,
)
from .solvers.options import SolverOptions
from .system import System

__all__ = [
    "energy_grid",
    "mott_seebeck",
    "thermoelectric_response",
    "transmission_curve",
]

FloatArray = NDArray[np.float64]


def _check_coverage(grid: FloatArray, mu: FloatArray, kT: FloatArray) -> None:
    """Refuse, before any transmission is computed, a grid that misses a thermal window."""
    window = landauer.THERMAL_WINDOW_KT
    lower = (mu[:, np.newaxis] - window * kT[np.newaxis, :]).ravel()
    upper = (mu[:, np.newaxis] + window * kT[np.newaxis, :]).ravel()
    landauer._check_coverage(
        grid, lower, upper, "the thermal kernel -df/dE", window, np.tile(kT, mu.size)
    )


def _to_from(fsys: System, to_lead: Any, from_lead: Any, leads: Any, what: str) -> tuple[int, int]:
    """The checked ``(to_lead, from_lead)``; the deprecated ``leads=(source, drain)`` too."""
    if leads is not None:
        if to_lead is not None or from_lead is not None:
            raise TypeError(
                f"{what} takes either to_lead= and from_lead= or the deprecated "
                f"leads=(source, drain), not both; got leads={_checks._show(leads)}"
            )
        source, drain = _checks.lead_pair(
            leads,
            len(fsys.leads),
            "(source, drain)",
            "the thermoelectric response of one lead to itself is not defined",
        )
        warnings.warn(
            f"{what}(leads=(source, drain)) is deprecated: the order is the reverse of "
            "conductance and SMatrix.transmission (to_lead, from_lead). Use "
            f"to_lead={drain}, from_lead={source} instead of leads=({source}, {drain})",
            DeprecationWarning,
            stacklevel=_checks.user_stacklevel(),
        )
        return drain, source
    pair = (1 if to_lead is None else to_lead, 0 if from_lead is None else from_lead)
    return _checks.lead_pair(
        pair,
        len(fsys.leads),
        "(to_lead, from_lead)",
        "the thermoelectric response of one lead to itself is not defined",
    )


def transmission_curve(
    fsys: System,
    energies: ArrayLike,
    *,
    to_lead: int | None = None,
    from_lead: int | None = None,
    params: Mapping[str, Any] | None = None,
    options: SolverOptions | Mapping[str, Any] | None = None,
    leads: tuple[int, int] | None = None,
) -> FloatArray:
    """Transmission ``T(E)`` from lead `from_lead` into lead `to_lead` at many energies.

    Computed by the batched solver :func:`mesoscopic.transmission` (recursive Green's
    functions, or the sparse solver where the system does not slice well), with the
    Hamiltonian and the leads evaluated once for all energies.

    Parameters
    ----------
    fsys : System
        Finalized system with at least two leads.
    energies : array_like, shape (n_E,)
        Energies, in the unit of the Hamiltonian.
    to_lead, from_lead : int, optional
        ``T[to_lead, from_lead]``, the order of :meth:`mesoscopic.SMatrix.transmission` and
        :func:`mesoscopic.conductance`; default ``to_lead=1, from_lead=0``.
    leads : (int, int), optional
        Deprecated: ``(source, drain)``, i.e. ``(from_lead, to_lead)``; warns with a
        :class:`DeprecationWarning`. Use `to_lead` and `from_lead`.
    params : dict, optional
        Parameter values of the Hamiltonian, by name.
    options : SolverOptions or mapping, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`: solver, device,
        workers, ...) of :func:`mesoscopic.transmission`.

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
    system = _checks.finalized_system(fsys, "transmission_curve", min_leads=2)
    grid = _checks.real_array(energies, "energies")
    if grid.ndim != 1:
        raise ValueError(f"energies must be a 1-D array, got shape {grid.shape}")
    to_index, from_index = _to_from(system, to_lead, from_lead, leads, "transmission_curve")
    from .batch import transmission

    return np.asarray(
        transmission(system, grid, to_index, from_index, params=params, options=options),
        dtype=float,
    )


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
    grid = _checks.energy_grid(energies, "energies", min_points=4)
    values = _checks.real_array(transmission, "transmission")
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
    to_lead: int | None = None,
    from_lead: int | None = None,
    params: Mapping[str, Any] | None = None,
    energies: ArrayLike | None = None,
    tol: float = 1e-6,
    max_points: int = 20_000,
    points_per_kT: float = 2.0,
    max_spacing: float | None = None,
    phonon_conductance: ArrayLike = 0.0,
    interpolation: Literal["cubic", "pchip", "linear"] = "pchip",
    steps: ArrayLike = (),
    resonance_orbitals: int = 2000,
    options: SolverOptions | Mapping[str, Any] | None = None,
    leads: tuple[int, int] | None = None,
) -> xr.Dataset:
    """Conductance, thermopower, Peltier coefficient, heat conductance, Lorenz ratio and ZT.

    Two-terminal linear response of a tight-binding device through the transmission
    ``T[to_lead, from_lead](E)``, for every pair of chemical potential and temperature;
    the coefficients come from :func:`mesoscopic.landauer.thermoelectric_coefficients` with
    the system's spin degeneracy.

    By default the energies are chosen as :func:`mesoscopic.conductance` chooses them:
    :func:`energy_grid` of `mu` and `kT` (the thermal windows ``mu ± 34 kT``), the band
    edges of the leads and `steps` as pairs of points either side of each (where a
    channel opens and ``T(E)`` jumps; the monotone interpolant integrates each jump as a
    step), the bound-state energies of the scattering region (narrow resonances), and then
    bisection of the intervals where ``T(E)`` differs most from its interpolant, weighted
    by the three thermoelectric kernels ``-df/dE``, ``|x| (-df/dE)`` and
    ``x^2 (-df/dE)`` (``x = (E - mu) / kT``) of every pair ``(mu, kT)``, until the
    estimated error of every kernel average is below `tol`. A resonance much narrower than
    ``kT`` is found and resolved. Each round of the refinement computes its transmissions
    in one call of the batched solver (:func:`mesoscopic.transmission`).

    Given `energies`, ``T(E)`` is computed there (with the band edges and `steps` put in
    as pairs of points), in one call, with no refinement: the fixed-grid path.

    Parameters
    ----------
    fsys : System
        Finalized system with at least two leads.
    mu : float or array_like, shape (n_mu,)
        Chemical potentials (equilibrium Fermi energies), energy units.
    kT : float or array_like, shape (n_kT,)
        Thermal energies ``k_B T > 0``, energy units.
    to_lead, from_lead : int, optional
        The transmission is ``T[to_lead, from_lead]``, from lead `from_lead` into lead
        `to_lead` (the order of :func:`mesoscopic.conductance` and
        :meth:`mesoscopic.SMatrix.transmission`); default ``to_lead=1, from_lead=0``.
        Other leads, if any, are ideal absorbers held at equilibrium (they take part only
        through ``T``).
    params : dict, optional
        Parameter values of the Hamiltonian, by name.
    energies : array_like, shape (n_E,), optional
        A fixed energy grid, instead of the adaptive one. Must cover ``mu ± 34 kT``
        (:data:`mesoscopic.landauer.THERMAL_WINDOW_KT`) with spacing ``<= kT`` there, and
        resolve ``T(E)``.
    tol : float, optional
        Target of the error estimate of every kernel average per unit transmission
        (default 1e-6, ample for S and kappa; the x^2 kernel of kappa reaches far into the
        window tails, where a tighter target costs thousands of energies); adaptive grid
        only.
    max_points : int, optional
        Most energies computed (default 20000, at least 16); beyond it the refinement stops
        with a :class:`mesoscopic.linear_response.ConvergenceWarning`.
    points_per_kT, max_spacing : float, optional
        Passed to :func:`energy_grid`, the grid the refinement starts from (ignored with
        `energies`).
    phonon_conductance : float or array_like, optional
        Phonon heat conductance ``>= 0`` in units of ``k_B/h`` times energy, broadcast against
        ``(n_mu, n_kT)``; enters only ``zt``.
    interpolation : {"pchip", "cubic", "linear"}, optional
        Interpolant of the sampled ``T(E)`` (see :mod:`mesoscopic.landauer`), also the one
        the refinement tests. The default monotone cubic never overshoots, so it is exact on
        the steps at the band edges; the not-a-knot "cubic" spline rings at every step in
        the windows and is only for a ``T(E)`` that is smooth across them.
    steps : float or array_like, optional
        Further energies where ``T(E)`` jumps (besides the band edges of the leads, which
        are found automatically), e.g. the edges of a lead given only by a self-energy.
    resonance_orbitals : int, optional
        Largest scattering region (in orbitals) whose bound-state energies seed the
        adaptive grid (default 2000; 0 switches it off).
    options : SolverOptions or mapping, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`: solver, device,
        workers, ...) of the transmissions.
    leads : (int, int), optional
        Deprecated: ``(source, drain)``, i.e. ``(from_lead, to_lead)``, the reverse of the
        order used everywhere else; warns with a :class:`DeprecationWarning`.

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
        (dimensionless), ``phonon_conductance`` (as given), ``error_estimate`` (the
        largest estimate of the three kernel averages, per unit transmission; 0 on a given
        grid); and ``transmission`` over ``energy``. Attributes: ``to_lead``,
        ``from_lead`` (and their old names ``drain_lead``, ``source_lead``),
        ``spin_degeneracy``, ``converged`` and ``tol`` (adaptive grid).

    Raises
    ------
    ValueError
        ``kT <= 0``, non-finite ``mu``, nonexistent or equal leads, or a grid that does not
        cover or resolve the thermal windows.

    Warns
    -----
    ConvergenceWarning
        The adaptive grid reached `max_points` before its error estimate reached `tol`.
    DeprecationWarning
        `leads` was given.

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
    what = "thermoelectric_response"
    system = _checks.finalized_system(fsys, what, min_leads=2)
    to_index, from_index = _to_from(system, to_lead, from_lead, leads, what)
    potentials = _checks.real_vector(mu, "mu")
    temperatures = _positive_kT(kT)
    phonon = _checks.positive(phonon_conductance, "phonon_conductance", allow_zero=True)
    given_steps = _step_energies(steps)
    if interpolation not in ("pchip", "cubic", "linear"):
        raise ValueError(
            f"interpolation must be one of 'pchip', 'cubic', 'linear', got {interpolation!r}"
        )
    from .batch import transmission as batch_transmission

    def sample(at: FloatArray) -> FloatArray:
        values = batch_transmission(
            system, at, to_index, from_index, params=params, options=options
        )
        return np.asarray(values, dtype=float).reshape(at.size, 1)

    attrs: dict[str, Any] = {}
    if energies is None:
        tolerance = float(_checks.positive(tol, "tol"))
        budget = _checks.positive_int(max_points, "max_points", minimum=16)
        orbitals = _checks.positive_int(resonance_orbitals, "resonance_orbitals", minimum=0)
        start = energy_grid(
            potentials, temperatures, points_per_kT=points_per_kT, max_spacing=max_spacing
        )
        pair_mu = np.repeat(potentials, temperatures.size)
        pair_kT = np.tile(temperatures, potentials.size)
        start, jumps = _starting_grid(
            system, params, start, given_steps, pair_mu, pair_kT, orbitals
        )
        refined = _refined_samples(
            sample,
            start,
            jumps,
            [_ThermalKernels(pair_mu, pair_kT, powers=(0, 1, 2))],
            tol=tolerance,
            max_points=budget,
            interpolation=interpolation,
        )
        grid, transmission = refined.energies, refined.samples[:, 0]
        estimate = refined.errors[0].reshape(3, potentials.size, temperatures.size).max(axis=0)
        attrs.update(converged=bool(refined.converged), tol=tolerance)
        if not refined.converged:
            warnings.warn(
                f"the adaptive energy grid of {what} did not reach tol={tolerance:g} within "
                f"max_points={budget} energies; the largest error estimate is "
                f"{float(np.max(estimate)):.3g} (per unit transmission). Raise max_points, "
                "loosen tol, or give the energies of sharp features of T(E) as steps=",
                ConvergenceWarning,
                stacklevel=_checks.user_stacklevel(),
            )
    else:
        grid = _checks.energy_grid(energies, "energies", min_points=4)
        _check_coverage(grid, potentials, temperatures)
        edges = _lead_band_edges(system, params, float(grid[0]), float(grid[-1]))
        jumps = np.union1d(edges, given_steps)
        jumps = jumps[(jumps >= grid[0]) & (jumps <= grid[-1])]
        grid = _with_steps(grid, jumps)
        transmission = sample(grid)[:, 0]
        estimate = np.zeros((potentials.size, temperatures.size))
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
            "error_estimate": variable(
                estimate,
                "1",
                "estimated error of the thermal averages of T(E) (largest of the three kernels)",
            ),
            "transmission": xr.DataArray(
                transmission,
                dims=("energy",),
                attrs={
                    "units": "1",
                    "long_name": f"transmission from lead {from_index} into lead {to_index}",
                },
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
            "to_lead": to_index,
            "from_lead": from_index,
            "source_lead": from_index,
            "drain_lead": to_index,
            **attrs,
            "spin_degeneracy": g_s,
            "sign_convention": "electrons carry charge -e; S < 0 where T(E) rises with energy",
        },
    )
    # A number given for mu or kT leaves a scalar coordinate rather than a length-1 axis.
    scalar_dims = [name for name, given in (("mu", mu), ("kT", kT)) if np.ndim(given) == 0]
    return dataset.squeeze(scalar_dims) if scalar_dims else dataset
