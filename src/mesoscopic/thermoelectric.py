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
transmission that is flat across the thermal window ``mu +- 34 kT``
(:data:`mesoscopic.landauer.THERMAL_WINDOW_KT`) the Wiedemann-Franz law holds exactly:
the Lorenz ratio ``kappa / (G T)`` is ``pi^2 / 3`` in units of ``(k_B / e)^2``.

Units: energies (``mu``, ``kT``, the grid) in the unit of the Hamiltonian; see
:func:`thermoelectric_response` for the units of every result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import scipy.interpolate
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from . import _checks, landauer
from .linear_response import (
    _chemical_potentials,
    _lead_band_edges,
    _positive_kT,
    _step_energies,
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


def _lead_pair(fsys: System, leads: Any) -> tuple[int, int]:
    return _checks.lead_pair(
        leads,
        len(fsys.leads),
        "(source, drain)",
        "the thermoelectric response of one lead to itself is not defined",
    )


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
    options: SolverOptions | Mapping[str, Any] | None = None,
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
    system = _check_system(fsys, "transmission_curve")
    grid = _checks.real_array(energies, "energies")
    if grid.ndim != 1:
        raise ValueError(f"energies must be a 1-D array, got shape {grid.shape}")
    source, drain = _lead_pair(system, leads)
    from .batch import transmission

    return np.asarray(
        transmission(system, grid, drain, source, params=params, options=options), dtype=float
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
    options: SolverOptions | Mapping[str, Any] | None = None,
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
        ``mu +- 34 kT`` (:data:`mesoscopic.landauer.THERMAL_WINDOW_KT`) with spacing
        ``<= kT`` there.
    points_per_kT, max_spacing : float, optional
        Passed to :func:`energy_grid` (ignored with `energies`). Give `max_spacing` when
        ``T(E)`` has structure narrower than ``kT / points_per_kT``: this grid is fixed
        and cannot see a resonance narrower than its spacing, unlike the adaptive grid
        of :func:`mesoscopic.conductance` (which gives the conductance alone).
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
    options : SolverOptions or mapping, optional
        Solver settings (:class:`mesoscopic.solvers.SolverOptions`: solver, device,
        workers, ...) of the transmissions, all computed in one batched call.

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
    transmission = transmission_curve(
        system, grid, leads=(source, drain), params=params, options=options
    )
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
