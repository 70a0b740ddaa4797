"""Figures: systems with their leads, lead bands, maps on the lattice, current flow.

matplotlib is imported only when a function here is called (install the
``plot`` extra). Every function draws into a given ``ax`` or a new figure and
returns the matplotlib Axes. The module itself is callable as Kwant's ``kwant.plot``:
``meso.plot(syst)`` is :func:`mesoscopic.plotter.plot`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(6) for y in range(3))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1, 0)))
>>> lead[(lat(0, y) for y in range(3))] = 4.0
>>> lead[lat.neighbors()] = -1.0
>>> syst.attach_lead(lead)
[]
>>> ax = meso.plot.system(syst.finalized())
>>> len(ax.collections) >= 2
True
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["bands", "conductance", "current", "map", "parameter_map", "system"]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


def _plane(pos: NDArray[np.float64]) -> NDArray[np.float64]:
    """Positions projected to 2D for drawing (a 1D chain is drawn along x)."""
    if pos.shape[1] == 1:
        return np.column_stack([pos[:, 0], np.zeros(len(pos))])
    return pos[:, :2]


def system(
    syst: Any,
    *,
    ax: Any = None,
    num_lead_cells: int = 2,
    site_size: float | None = None,
    site_color: Any = "C0",
    hop_color: str = "0.6",
    lead_color: str = "C3",
) -> Any:
    """Draw the sites and hoppings of a finalized system and a few cells of each lead.

    Parameters
    ----------
    syst : System
        A finalized system (``Builder.finalized()``).
    ax : matplotlib Axes, optional
    num_lead_cells : int
        Lead unit cells drawn beyond each interface.
    site_size : float, optional
        Marker area in points^2; chosen from the number of sites by default.
    site_color, hop_color, lead_color : matplotlib colors
        `site_color` may also be an array with one value per site.

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.collections import LineCollection

    ax = _axes(ax)
    pos = _plane(syst.pos)
    i, j = syst.hopping_indices
    segments = np.stack([pos[i], pos[j]], axis=1)
    ax.add_collection(LineCollection(list(segments), colors=hop_color, linewidths=0.8, zorder=1))
    size = site_size if site_size is not None else max(2.0, 400.0 / np.sqrt(len(pos)))
    ax.scatter(pos[:, 0], pos[:, 1], s=size, c=site_color, zorder=2)
    for lead_index, lead in enumerate(syst.leads):
        iface = syst.lead_interfaces[lead_index]
        if getattr(lead, "symmetry", None) is None:
            # A lead given by a function (SelfEnergyLead, ModesLead) has no cells to draw:
            # ring its interface sites instead.
            ax.scatter(
                pos[iface, 0],
                pos[iface, 1],
                s=3 * size,
                facecolors="none",
                edgecolors=lead_color,
                linewidths=1.5,
                zorder=3,
            )
            ax.annotate(
                f"lead {lead_index}",
                pos[iface].mean(axis=0),
                color=lead_color,
                ha="left",
                va="bottom",
            )
            continue
        shift_vec = _plane(lead.symmetry.period[None, :])[0]
        # The region's interface sites are the images of the lead cell's interface sites:
        # the same translation carries the whole lead cell next to the region.
        offset = pos[iface[0]] - _plane(lead.pos[lead.interface_sites[:1]])[0]
        cell = _plane(lead.pos) + offset
        lead_segments: list[NDArray[np.float64]] = []
        for m in range(1, num_lead_cells + 1):
            here = cell + m * shift_vec
            ax.scatter(here[:, 0], here[:, 1], s=size, c=lead_color, alpha=0.6, zorder=2)
            lead_segments.extend(np.stack([here - shift_vec, here], axis=1))
        ax.add_collection(
            LineCollection(lead_segments, colors=lead_color, alpha=0.4, linewidths=0.8, zorder=1)
        )
        center = cell.mean(axis=0) + (num_lead_cells + 0.8) * shift_vec
        ax.annotate(f"lead {lead_index}", center, color=lead_color, ha="center", va="center")
    ax.set_aspect("equal")
    ax.autoscale_view()
    return ax


def bands(
    lead: Any,
    *,
    params: Mapping[str, Any] | None = None,
    momenta: int | ArrayLike = 201,
    ax: Any = None,
    **line_kwargs: Any,
) -> Any:
    """Plot the band structure E(k) of a finalized lead.

    Parameters
    ----------
    lead : InfiniteSystem
        For example ``fsys.leads[0]``.
    params : dict, optional
        Parameter values by name.
    momenta : int or array_like
        Number of k points in [-pi, pi] or the k values themselves (1/cell length).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    if np.ndim(momenta) == 0:
        ks = np.linspace(-np.pi, np.pi, int(np.asarray(momenta)))
    else:
        ks = np.asarray(momenta, dtype=float)
    h_cell = lead.cell_hamiltonian(params)
    hop = lead.hopping_away(params)
    energies = np.array(
        [
            np.linalg.eigvalsh(h_cell + hop * np.exp(1j * k) + hop.conj().T * np.exp(-1j * k))
            for k in ks
        ]
    )
    ax.plot(ks, energies, **({"color": "C0"} | line_kwargs))
    ax.set_xlabel("momentum k (1 / unit cell)")
    ax.set_ylabel("energy")
    ax.set_xlim(ks[0], ks[-1])
    return ax


def map(
    syst: Any,
    values: ArrayLike,
    *,
    ax: Any = None,
    cmap: str = "viridis",
    colorbar: bool = True,
    label: str | None = None,
) -> Any:
    """Color the lattice by one value per site (LDOS, potential, density...).

    Parameters
    ----------
    syst : System
    values : array_like, shape (n_sites,)
        One real value per site (sum orbitals beforehand).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.tri as mtri

    ax = _axes(ax)
    values = np.asarray(values, dtype=float)
    pos = _plane(syst.pos)
    if values.shape != (len(pos),):
        raise ValueError(f"values must have shape ({len(pos)},), one per site; got {values.shape}")
    if len(pos) >= 3 and np.linalg.matrix_rank(pos - pos.mean(axis=0)) == 2:
        art = ax.tripcolor(
            mtri.Triangulation(pos[:, 0], pos[:, 1]), values, cmap=cmap, shading="gouraud"
        )
    else:
        art = ax.scatter(pos[:, 0], pos[:, 1], c=values, cmap=cmap)
    if colorbar:
        ax.figure.colorbar(art, ax=ax, label=label)
    ax.set_aspect("equal")
    return ax


def current(
    syst: Any,
    bond_currents: ArrayLike,
    *,
    ax: Any = None,
    cmap: str = "inferno",
    arrows: bool = True,
    colorbar: bool = True,
) -> Any:
    """Map of the current density from bond currents.

    Parameters
    ----------
    syst : System
    bond_currents : array_like, shape (n_hoppings,)
        Current along each hopping ``(i, j)`` of ``syst.hopping_indices``, positive from j
        to i (as returned by :func:`mesoscopic.transport.bond_currents`).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    pos = _plane(syst.pos)
    i, j = syst.hopping_indices
    bond = np.asarray(bond_currents, dtype=float)
    if bond.shape != (len(i),):
        raise ValueError(
            f"bond_currents must have shape ({len(i)},), one per hopping; got {bond.shape}"
        )
    # Current density at each site: half of each attached bond current times the bond direction.
    direction = pos[i] - pos[j]
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    vec = bond[:, None] * direction / np.where(length > 0, length, 1)
    density = np.zeros_like(pos)
    np.add.at(density, i, 0.5 * vec)
    np.add.at(density, j, 0.5 * vec)
    magnitude = np.linalg.norm(density, axis=1)
    map(syst, magnitude, ax=ax, cmap=cmap, colorbar=colorbar, label="|current density|")
    if arrows:
        ax.quiver(
            pos[:, 0],
            pos[:, 1],
            density[:, 0],
            density[:, 1],
            color="w",
            alpha=0.8,
            angles="xy",
            pivot="mid",
        )
    return ax


# Conductance units: name -> (value in siemens, axis label).
_CONDUCTANCE_UNITS: dict[str, tuple[str, str]] = {
    "e2/h": ("e2_h", "$e^2/h$"),
    "e^2/h": ("e2_h", "$e^2/h$"),
    "2e2/h": ("G0", "$2e^2/h$"),
    "2e^2/h": ("G0", "$2e^2/h$"),
    "S": ("1", "S"),
    "siemens": ("1", "S"),
}


def _siemens(unit: str, name: str) -> float:
    from . import constants

    if unit not in _CONDUCTANCE_UNITS:
        valid = ", ".join(repr(u) for u in _CONDUCTANCE_UNITS)
        raise ValueError(f"{name} must be a conductance unit ({valid}), got {unit!r}")
    key = _CONDUCTANCE_UNITS[unit][0]
    return 1.0 if key == "1" else float(getattr(constants, key))


def conductance(
    x: ArrayLike,
    values: ArrayLike,
    *,
    ax: Any = None,
    unit: str = "e2/h",
    values_unit: str | None = None,
    spin_degeneracy: int | None = None,
    plateaus: bool | Sequence[float] = True,
    xlabel: str | None = None,
    label: str | None = None,
    **line_kwargs: Any,
) -> Any:
    """Conductance against a parameter, converted to `unit`, with quantized plateaus marked.

    Parameters
    ----------
    x : array_like, shape (n,)
    values : array_like or xarray.DataArray, shape (n,) or (n, m)
        Conductances in `values_unit`, or transmissions (``values_unit="1"``) that the
        spin degeneracy turns into conductances ``G = g_s T`` in e^2/h. A DataArray
        written by a sweep or ``meso run`` says both in its ``units`` and
        ``spin_degeneracy`` attributes.
    unit : {"e2/h", "2e2/h", "S"}
        The unit drawn: values are converted to it (``e^2/h -> 2e^2/h`` halves them,
        ``-> S`` multiplies by ``e^2/h`` in siemens). ``"e^2/h"``, ``"2e^2/h"`` and
        ``"siemens"`` are accepted spellings.
    values_unit : str, optional
        The unit of `values`: a conductance unit as above or ``"1"`` for transmissions.
        Default: the ``units`` attribute of a DataArray, else `unit` (no conversion).
    spin_degeneracy : {1, 2}, optional
        ``g_s`` for transmissions; default: the ``spin_degeneracy`` attribute of a
        DataArray.
    plateaus : bool or sequence of float
        Dashed lines at the integer multiples of e^2/h (``unit="S"``) or at the integers
        of `unit` (True), or at the given values (in `unit`).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import xarray as xr
    >>> g = xr.DataArray([0.0, 2.0, 4.0], attrs={"units": "e^2/h"})
    >>> ax = conductance([0, 1, 2], g, unit="2e2/h")
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 1.0, 2.0]
    """
    from ._checks import real_array

    attrs = getattr(values, "attrs", {}) or {}
    _siemens(unit, "unit")
    source = values_unit if values_unit is not None else attrs.get("units", unit)
    data = real_array(values, "values")
    if source == "1":
        g_s = spin_degeneracy if spin_degeneracy is not None else attrs.get("spin_degeneracy")
        if g_s is None:
            raise ValueError(
                "values are transmissions (unit '1'); give spin_degeneracy=1 or 2 to draw "
                "them as a conductance G = g_s T e^2/h"
            )
        from .system import _check_degeneracy

        data = _check_degeneracy(g_s) * data
        source = "e2/h"
    data = data * (_siemens(str(source), "values_unit") / _siemens(unit, "unit"))
    ax = _axes(ax)
    x = np.asarray(x, dtype=float)
    ax.plot(x, data, label=label, **line_kwargs)
    if isinstance(plateaus, (bool, np.bool_)):
        quantum = (
            _siemens("e2/h", "unit") / _siemens(unit, "unit") if unit in ("S", "siemens") else 1.0
        )
        top = np.ceil(np.nanmax(data) / quantum) if data.size else 0.0
        levels = quantum * np.arange(0, top + 1) if plateaus else np.zeros(0)
    else:
        levels = np.atleast_1d(np.asarray(plateaus, dtype=float))
    for level in levels:
        ax.axhline(level, color="0.7", lw=0.6, ls="--", zorder=0)
    ax.set_ylabel(f"G ({_CONDUCTANCE_UNITS[unit][1]})")
    if xlabel:
        ax.set_xlabel(xlabel)
    return ax


def parameter_map(
    x: ArrayLike,
    y: ArrayLike,
    values: ArrayLike,
    *,
    ax: Any = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    label: str | None = None,
    cmap: str = "viridis",
    symmetric: bool = False,
) -> Any:
    """A quantity over two swept parameters (gate x field, gate x bias for Coulomb diamonds).

    Parameters
    ----------
    x : array_like, shape (n_x,)
        Values along the horizontal axis.
    y : array_like, shape (n_y,)
        Values along the vertical axis.
    values : array_like, shape (n_y, n_x)
        The quantity, one row per `y` value.
    symmetric : bool
        Center the color scale on zero (for signed quantities such as dI/dV or R_xy).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.shape != (len(y), len(x)):
        raise ValueError(
            f"values must have shape (len(y), len(x)) = {(len(y), len(x))}, got {values.shape}"
        )
    limits = {}
    if symmetric:
        bound = float(np.nanmax(np.abs(values)))
        limits = {"vmin": -bound, "vmax": bound}
    mesh = ax.pcolormesh(x, y, values, cmap=cmap, shading="nearest", **limits)
    ax.figure.colorbar(mesh, ax=ax, label=label)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    return ax


class _CallablePlotModule(types.ModuleType):
    """This module, callable as Kwant's ``kwant.plot(syst, ...)`` (that is
    :func:`mesoscopic.plotter.plot`), so ``import mesoscopic as kwant`` scripts run."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .plotter import plot

        return plot(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePlotModule
