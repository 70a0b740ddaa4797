"""Kwant's plotting vocabulary (``kwant.plotter``) with matplotlib.

The functions take Kwant's names, arguments and defaults, so a Kwant script's
``kwant.plotter.plot(syst)``, ``map``, ``density``, ``current``, ``bands`` and
``spectrum`` calls run unchanged after ``import mesoscopic as kwant``.
:mod:`mesoscopic.plot` holds the package's own figures (conductance steps,
parameter maps).

Every drawing function makes a new figure unless an Axes ``ax`` is given, and
returns that figure (``None`` when drawing into ``ax``, as in Kwant). ``file=``
saves it (a file name or an open binary file); otherwise ``show=True`` calls
``matplotlib.pyplot.show()``, but only when the backend is interactive, so a
script run without a display (Agg backend) never blocks or warns. Figures made
for a file are not registered with pyplot (they do not accumulate); others
are, so ``pyplot.show()`` can show them later.

matplotlib (and scipy for :func:`map`) are imported only when a function here
draws; ``import mesoscopic`` does not load matplotlib nor choose its backend.

Notes
-----
Differences from Kwant:

- Only the matplotlib engine exists (``set_engine("plotly")`` is refused).
- Current arrays hold one value per hopping of ``syst.hopping_indices`` (each hopping
  once, positive from ``j`` to ``i`` for the hopping ``(i, j)``), as
  :func:`mesoscopic.transport.bond_currents` returns them, or one per edge of
  ``syst.graph`` (each hopping in both directions, Kwant's layout), as
  :class:`mesoscopic.operator.Current` returns them.
- :func:`interpolate_density` is a density per unit length/area/volume: its
  integral over space is the sum of the site values (in any dimension), and
  :func:`interpolate_current` carries the bond current through any cut in 1, 2
  and 3 dimensions.
- :func:`map` scales its colors to the full range of the data unless ``vmin`` or
  ``vmax`` are given (Kwant clips to a percentile range).
- :func:`current` and :func:`streamplot` return the figure (Kwant 1.5 returns
  None).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mesoscopic as meso
>>> from mesoscopic import plotter
>>> lat = meso.lattice.square(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(x, y) for x in range(4) for y in range(3))] = 4.0
>>> syst[lat.neighbors()] = -1.0
>>> fig = plotter.plot(syst, show=False)
>>> len(fig.axes[0].collections)
2
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks, _plotter
from .builder import Builder
from .system import InfiniteSystem, System

__all__ = [
    "bands",
    "current",
    "density",
    "get_engine",
    "interpolate_current",
    "interpolate_density",
    "map",
    "mask_interpolate",
    "plot",
    "scalarplot",
    "set_engine",
    "spectrum",
    "streamplot",
    "sys_leads_hopping_pos",
    "sys_leads_hoppings",
    "sys_leads_pos",
    "sys_leads_sites",
]


# ---- engine -------------------------------------------------------------------------


def set_engine(engine: str) -> None:
    """Choose the plotting engine; only ``"matplotlib"`` exists here.

    Parameters
    ----------
    engine : str
        ``"matplotlib"``.

    Raises
    ------
    RuntimeError
        For any other engine, or when matplotlib is not installed.
    """
    if engine not in _plotter.engines:
        available = sorted(_plotter.engines) or "none (install matplotlib)"
        raise RuntimeError(f"unknown plotting engine {engine!r}; available engines: {available}")
    _plotter.engine = engine


def get_engine() -> str | None:
    """The plotting engine in use (``"matplotlib"``, or None without matplotlib)."""
    return _plotter.engine


def _require_engine(what: str) -> None:
    if _plotter.engine is None:
        raise RuntimeError(f"{what}() needs matplotlib; install the 'plot' extra")


# ---- figures and output -------------------------------------------------------------


def _make_figure(dpi: float | None, fig_size: Any, *, use_pyplot: bool) -> Any:
    if use_pyplot:
        import matplotlib.pyplot as plt

        fig = plt.figure()
    else:
        from matplotlib.figure import Figure

        fig = Figure()
    if dpi is not None:
        fig.set_dpi(dpi)
    if fig_size is not None:
        fig.set_size_inches(fig_size[0], fig_size[1])
    return fig


def _output(fig: Any, file: Any, show: bool) -> None:
    """Save `fig` to `file`, or show it when asked and the backend can show figures."""
    if fig is None:
        return
    if file is not None:
        fig.savefig(file, dpi=fig.dpi)
    elif show and getattr(fig.canvas, "required_interactive_framework", None) is not None:
        # Only an interactive canvas (Tk, Qt, ...) has a window to show; with Agg
        # pyplot.show() would merely warn.
        import matplotlib.pyplot as plt

        plt.show()


def _is_array(value: Any) -> bool:
    """Per-item values: a list or array (strings and tuples are single values)."""
    return hasattr(value, "__len__") and not isinstance(value, (str, tuple, dict))


# ---- system data ---------------------------------------------------------------------


def _check_drawable(syst: Any) -> None:
    if not isinstance(syst, (Builder, System)):
        raise TypeError(
            f"expected a Builder or a finalized System (Builder.finalized()), got "
            f"{type(syst).__name__}"
        )


def _lead_drawn(syst: Any, lead_nr: int) -> bool:
    if isinstance(syst, Builder):
        lead = syst.leads[lead_nr]
        return hasattr(lead, "builder") and len(lead.interface) > 0
    lead = syst.leads[lead_nr]
    return isinstance(lead, InfiniteSystem) and len(syst.lead_interfaces[lead_nr]) > 0


def sys_leads_sites(sys: Any, num_lead_cells: int = 2) -> tuple[list[tuple[Any, Any, int]], list]:
    """All sites of a system and `num_lead_cells` unit cells of each lead.

    Parameters
    ----------
    sys : Builder or System
    num_lead_cells : int
        Copies of each lead's unit cell.

    Returns
    -------
    sites : list of (site, lead_number, copy_number)
        For a Builder a site is a :class:`~mesoscopic.lattice.Site`, for a System an
        index (into ``sys.sites``, or into the lead's ``sites`` for lead cells). System
        sites have ``lead_number`` None and ``copy_number`` 0.
    lead_cells : list of slice
        ``sites[lead_cells[i]]`` are the entries of lead ``i`` (empty for a lead that is
        not drawn: one without a unit cell or without interface).
    """
    _check_drawable(sys)
    n = _check_cells(num_lead_cells)
    cells: list[slice] = []
    if isinstance(sys, Builder):
        sites: list[tuple[Any, Any, int]] = [(s, None, 0) for s in sys.sites()]
        for nr, lead in enumerate(sys.leads):
            start = len(sites)
            if _lead_drawn(sys, nr):
                sites.extend((s, nr, c) for s in lead.builder.sites() for c in range(n))
            cells.append(slice(start, len(sites)))
    else:
        sites = [(i, None, 0) for i in range(len(sys.pos))]
        for nr, lead in enumerate(sys.leads):
            start = len(sites)
            if _lead_drawn(sys, nr):
                sites.extend((i, nr, c) for i in range(len(lead.pos)) for c in range(n))
            cells.append(slice(start, len(sites)))
    return sites, cells


def _check_cells(num_lead_cells: Any) -> int:
    return _checks.positive_int(num_lead_cells, "num_lead_cells", minimum=0)


def _lead_shift(syst: Any, lead_nr: int) -> tuple[NDArray[np.float64], int]:
    """The lead's period and the domain of its first cell beyond the system."""
    symmetry: Any
    if isinstance(syst, Builder):
        lead = syst.leads[lead_nr]
        symmetry = lead.builder.symmetry
        interface_site = lead.interface[0]
    else:
        symmetry = syst.leads[lead_nr].symmetry
        interface_site = syst.sites[int(syst.lead_interfaces[lead_nr][0])]
    period = np.array(symmetry.periods[0], dtype=np.float64)
    return period, _domain(symmetry, interface_site) + 1


def _domain(symmetry: Any, site: Any) -> int:
    """The domain index of `site` under a one-period symmetry, as an int."""
    which = symmetry.which(site)
    try:
        return int(which)
    except TypeError:  # a one-element tag (Kwant returns a one-element array)
        return int(which[0])


def _positions(rows: Sequence[Any]) -> NDArray[np.float64]:
    try:
        pos = np.array([np.asarray(p, dtype=float) for p in rows], dtype=float)
    except ValueError:
        raise ValueError(
            "the sites' positions do not all have the same number of coordinates"
        ) from None
    return pos


def _system_dim(syst: Any) -> int:
    if isinstance(syst, Builder):
        first = next(iter(syst.sites()), None)
        return 2 if first is None else len(first.pos)
    return int(syst.pos.shape[1]) if syst.pos.ndim == 2 else 2


def sys_leads_pos(sys: Any, site_lead_nr: Sequence[tuple[Any, Any, int]]) -> NDArray[np.float64]:
    """Positions of the entries of :func:`sys_leads_sites`, shape (n, dim).

    Lead cell copy ``c`` of lead ``i`` is the lead's unit cell moved ``dom + c``
    periods, with ``dom`` the first domain beyond the system's interface.

    Parameters
    ----------
    sys : Builder or System
    site_lead_nr : list of (site, lead_number, copy_number)
        The first result of :func:`sys_leads_sites` for `sys`.
    """
    _check_drawable(sys)
    if len(site_lead_nr) == 0:
        return np.empty((0, _system_dim(sys)))
    shifts: dict[Any, tuple[NDArray[np.float64], int]] = {}
    rows = []
    for site, lead_nr, copy in site_lead_nr:
        if isinstance(sys, Builder):
            pos = np.asarray(site.pos, dtype=float)
        elif lead_nr is None:
            pos = sys.pos[site]
        else:
            pos = _lead_site_pos(sys.leads[lead_nr], site)
        if lead_nr is not None:
            if lead_nr not in shifts:
                shifts[lead_nr] = _lead_shift(sys, lead_nr)
            period, dom = shifts[lead_nr]
            pos = pos + (dom + copy) * period
        rows.append(pos)
    return _positions(rows)


def _lead_site_pos(lead: InfiniteSystem, index: int) -> NDArray[np.float64]:
    """Position of a lead site; ``index >= cell size`` is the previous cell's site."""
    n = len(lead.pos)
    if index < n:
        return lead.pos[index]
    return lead.pos[index - n] - np.asarray(lead.symmetry.periods[0], dtype=float)


def _finalized_lead_hoppings(lead: InfiniteSystem) -> list[tuple[int, int]]:
    """Hoppings of a finalized lead cell and to the previous cell (index + cell size)."""
    n = len(lead.pos)
    hops: list[tuple[int, int]] = []
    for group in lead._cell:
        hops.extend(zip(group.rows.tolist(), group.cols.tolist()))
    for group in lead._inter:
        # <m|H|m+1>: the near (cell m) end is the previous cell of the drawn cell m+1.
        near, far = (group.cols, group.rows) if group.conj else (group.rows, group.cols)
        hops.extend((int(f), int(m) + n) for f, m in zip(far.tolist(), near.tolist()))
    return hops


def sys_leads_hoppings(
    sys: Any, num_lead_cells: int = 2
) -> tuple[list[tuple[tuple[Any, Any], Any, int]], list]:
    """All hoppings of a system and of `num_lead_cells` unit cells of each lead.

    Parameters
    ----------
    sys : Builder or System
    num_lead_cells : int
        Copies of each lead's unit cell.

    Returns
    -------
    hoppings : list of ((a, b), lead_number, copy_number)
        Each hopping once. For a Builder ``a, b`` are sites; for a System, indices. In a
        lead cell a hopping to the neighbouring cell (towards the system) is drawn from
        the lead's hopping into the fundamental domain; for a System its second index is
        ``cell size + site`` for a site of that neighbouring cell.
    lead_cells : list of slice
        ``hoppings[lead_cells[i]]`` are the entries of lead ``i``.
    """
    _check_drawable(sys)
    n = _check_cells(num_lead_cells)
    cells: list[slice] = []
    hops: list[tuple[tuple[Any, Any], Any, int]]
    if isinstance(sys, Builder):
        hops = [(hop, None, 0) for hop in sys.hoppings()]
        for nr, lead in enumerate(sys.leads):
            start = len(hops)
            if _lead_drawn(sys, nr):
                sym: Any = lead.builder.symmetry
                cell_hops = []
                for a, b in lead.builder.hoppings():
                    # Move the hopping so that it joins the fundamental domain and the
                    # domain just before it.
                    shift = max(_domain(sym, a), _domain(sym, b))
                    cell_hops.append(tuple(sym.act([-shift], a, b)) if shift else (a, b))
                hops.extend((hop, nr, c) for hop in cell_hops for c in range(n))
            cells.append(slice(start, len(hops)))
    else:
        i, j = sys.hopping_indices
        hops = [((a, b), None, 0) for a, b in zip(i.tolist(), j.tolist())]
        for nr, lead in enumerate(sys.leads):
            start = len(hops)
            if _lead_drawn(sys, nr):
                lead_hops = _finalized_lead_hoppings(lead)
                hops.extend((hop, nr, c) for hop in lead_hops for c in range(n))
            cells.append(slice(start, len(hops)))
    return hops, cells


def sys_leads_hopping_pos(
    sys: Any, hop_lead_nr: Sequence[tuple[tuple[Any, Any], Any, int]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions of both ends of the entries of :func:`sys_leads_hoppings`.

    Parameters
    ----------
    sys : Builder or System
    hop_lead_nr : list of ((a, b), lead_number, copy_number)
        The first result of :func:`sys_leads_hoppings` for `sys`.

    Returns
    -------
    end, start : ndarray, shape (n, dim)
        Positions of the first and of the second site of each hopping.
    """
    _check_drawable(sys)
    if len(hop_lead_nr) == 0:
        dim = _system_dim(sys)
        return np.empty((0, dim)), np.empty((0, dim))
    shifts: dict[Any, tuple[NDArray[np.float64], int]] = {}
    first, second = [], []
    for (a, b), lead_nr, copy in hop_lead_nr:
        if isinstance(sys, Builder):
            pa, pb = np.asarray(a.pos, dtype=float), np.asarray(b.pos, dtype=float)
        elif lead_nr is None:
            pa, pb = sys.pos[a], sys.pos[b]
        else:
            lead = sys.leads[lead_nr]
            pa, pb = _lead_site_pos(lead, a), _lead_site_pos(lead, b)
        if lead_nr is not None:
            if lead_nr not in shifts:
                shifts[lead_nr] = _lead_shift(sys, lead_nr)
            period, dom = shifts[lead_nr]
            pa = pa + (dom + copy) * period
            pb = pb + (dom + copy) * period
        first.append(pa)
        second.append(pb)
    return _positions(first), _positions(second)


# ---- symbols and scaled collections ----------------------------------------------------


_SYMBOL_ALIASES: dict[str, Any] = {"O": "o", "s": ("p", 4, 45), "S": ("P", 4, 45)}


def _symbol_path(symbol: Any) -> Any:
    """A matplotlib Path for a Kwant symbol specification, sized by its inner radius 1."""
    from matplotlib.path import Path
    from matplotlib.transforms import Affine2D

    if isinstance(symbol, Path):
        return symbol
    if isinstance(symbol, str):
        symbol = _SYMBOL_ALIASES.get(symbol, symbol)
    if isinstance(symbol, str) and symbol == "o":
        return Path.unit_circle()
    if isinstance(symbol, tuple) and len(symbol) == 3 and symbol[0] in ("p", "P"):
        kind, nvert, angle = symbol
        nvert = int(nvert)
        if nvert < 3:
            raise ValueError(f"a polygon symbol needs at least 3 vertices, got {symbol!r}")
        if kind == "p":  # inner (inscribed) circle of radius 1
            radius = 1 / np.cos(np.pi / nvert)
        else:  # the area of the unit circle
            radius = np.sqrt(2 * np.pi / (nvert * np.sin(2 * np.pi / nvert)))
        polygon = Path.unit_regular_polygon(nvert)
        return polygon.transformed(Affine2D().scale(radius).rotate_deg(float(angle)))
    raise ValueError(
        f"unknown site symbol {symbol!r}; valid symbols are 'o', 's', 'S', 'O', "
        "('p', nvert, angle), ('P', nvert, angle), 'no symbol' or a matplotlib Path"
    )


@functools.cache
def _collection_types() -> dict[str, type]:
    """Collections whose marker sizes and line widths are in units of a reference length.

    With ``reflen`` None the sizes are in points; otherwise they are multiplied by
    ``reflen`` in data units, converted to points when drawn, so the symbols scale with
    the zoom.
    """
    from matplotlib.collections import LineCollection, PathCollection

    def points_per_unit_2d(artist: Any) -> float:
        axes = artist.axes
        linear = axes.transData.get_affine().get_matrix()[:2, :2]
        pixels = np.sqrt(abs(np.linalg.det(linear)))
        return float(pixels * 72.0 / axes.figure.dpi)

    def points_per_unit_3d(artist: Any) -> float:
        axes = artist.axes
        box = axes.bbox
        spans = [np.ptp(axes.get_xlim3d()), np.ptp(axes.get_ylim3d()), np.ptp(axes.get_zlim3d())]
        # mplot3d draws the data cube at about three quarters of the axes' size.
        pixels = 0.75 * min(box.width, box.height) / max(max(spans), 1e-300)
        return float(pixels * 72.0 / axes.figure.dpi)

    class _Scaled:
        _reflen: float | None
        _base_sizes: NDArray[np.float64]
        _base_widths: NDArray[np.float64]
        _per_unit: Callable[[Any], float]

        def _setup(self, sizes: Any, widths: Any, reflen: float | None, per_unit: Any) -> None:
            self._reflen = reflen
            self._base_sizes = np.atleast_1d(np.asarray(sizes, dtype=float))
            self._base_widths = np.atleast_1d(np.asarray(widths, dtype=float))
            self._per_unit = per_unit
            self._rescale()

        def _scale(self) -> float:
            if self._reflen is None or getattr(self, "axes", None) is None:
                return 1.0
            return self._reflen * self._per_unit(self)

        def _rescale(self) -> None:
            scale = self._scale()
            if hasattr(self, "set_sizes"):
                self.set_sizes((self._base_sizes * scale) ** 2)
            self.set_linewidths(self._base_widths * scale)  # type: ignore[attr-defined]

        def draw(self, renderer: Any) -> None:
            self._rescale()
            super().draw(renderer)  # type: ignore[misc]

    class ScaledPaths(_Scaled, PathCollection):
        def __init__(self, paths: Any, sizes: Any, widths: Any, reflen: Any, **kw: Any):
            PathCollection.__init__(self, paths, **kw)
            self._setup(sizes, widths, reflen, points_per_unit_2d)

    class ScaledLines(_Scaled, LineCollection):
        def __init__(self, segments: Any, widths: Any, reflen: Any, **kw: Any):
            LineCollection.__init__(self, segments, **kw)
            self._setup(0.0, widths, reflen, points_per_unit_2d)

    types: dict[str, type] = {"paths2": ScaledPaths, "lines2": ScaledLines}
    if _plotter.has3d:
        from mpl_toolkits.mplot3d import art3d

        class ScaledPaths3D(_Scaled, art3d.Path3DCollection):
            def __init__(self, paths: Any, sizes: Any, widths: Any, reflen: Any, **kw: Any):
                zs = kw.pop("zs")
                art3d.Path3DCollection.__init__(self, paths, zs=zs, **kw)
                self._setup(sizes, widths, reflen, points_per_unit_3d)

        class ScaledLines3D(_Scaled, art3d.Line3DCollection):
            def __init__(self, segments: Any, widths: Any, reflen: Any, **kw: Any):
                art3d.Line3DCollection.__init__(self, segments, **kw)
                self._setup(0.0, widths, reflen, points_per_unit_3d)

        types.update(paths3=ScaledPaths3D, lines3=ScaledLines3D)
    return types


def _apply_colors(
    collection: Any, color: Any, n: int, cmap: Any, norm: Any, *, face: bool = True
) -> None:
    """Set colors: one float per item maps through `cmap`, anything else is a color."""
    import matplotlib.colors as mcolors

    if _is_array(color) and len(color) == n and n > 0:
        try:
            values = np.asarray(color, dtype=float)
        except (TypeError, ValueError):
            values = None
        if values is not None and values.ndim == 1:
            collection.set_array(values)
            collection.set_cmap(cmap)
            collection.set_norm(norm)
            return
        color = list(color)
    rgba = mcolors.to_rgba_array(color)
    if face:
        collection.set_facecolor(rgba)
    else:
        collection.set_color(rgba)


def _draw_symbols(
    ax: Any,
    pos: NDArray[np.float64],
    *,
    symbol: Any,
    size: Any,
    reflen: float | None,
    facecolor: Any,
    edgecolor: Any,
    linewidth: Any,
    cmap: Any = None,
    norm: Any = None,
) -> Any:
    dim = pos.shape[1]
    empty = len(pos) == 0 or (isinstance(symbol, str) and symbol == "no symbol")
    if not empty and not _is_array(size) and float(size) == 0:
        empty = True
    paths = [] if empty else [_symbol_path(symbol)]
    if empty:
        pos = np.empty((0, dim))
    from matplotlib.transforms import IdentityTransform

    types = _collection_types()
    # The symbol paths are already scaled to display units (as in Axes.scatter); only
    # their offsets are data coordinates.
    kw: dict[str, Any] = {"offsets": pos[:, :2], "zorder": 2, "transform": IdentityTransform()}
    if dim == 3:
        kw.update(zs=pos[:, 2], depthshade=False)
        coll = types["paths3"](paths, size, linewidth, reflen, **kw)
    else:
        coll = types["paths2"](paths, size, linewidth, reflen, offset_transform=ax.transData, **kw)
    _apply_colors(coll, facecolor, len(pos), cmap, norm)
    coll.set_edgecolor(edgecolor if not _is_array(edgecolor) else list(edgecolor))
    if dim == 3:
        ax.add_collection3d(coll)
    else:
        ax.add_collection(coll, autolim=False)
    return coll


def _draw_lines(
    ax: Any,
    end: NDArray[np.float64],
    start: NDArray[np.float64],
    *,
    reflen: float | None,
    colors: Any,
    linewidth: Any,
    cmap: Any = None,
    norm: Any = None,
) -> Any:
    dim = end.shape[1]
    segments = np.stack([end, start], axis=1) if len(end) else np.empty((0, 2, dim))
    types = _collection_types()
    coll = types["lines3" if dim == 3 else "lines2"](list(segments), linewidth, reflen, zorder=1)
    if len(segments):
        _apply_colors(coll, colors, len(segments), cmap, norm, face=False)
    if dim == 3:
        if len(segments):
            ax.add_collection3d(coll)
        else:
            # Nothing to draw (a system without hoppings): Matplotlib's 3D axes cannot
            # take the limits of an empty collection.
            ax.add_collection(coll, autolim=False)
    else:
        ax.add_collection(coll, autolim=False)
    return coll


# ---- plot ------------------------------------------------------------------------------

# Kwant's defaults for 2-D and 3-D figures.
_DEFAULTS: dict[str, dict[int, Any]] = {
    "site_symbol": {2: "o", 3: "o"},
    "site_size": {2: 0.25, 3: 0.5},
    "site_edgecolor": {2: "black", 3: "black"},
    "site_lw": {2: 0.0, 3: 0.1},
    "hop_color": {2: "black", 3: "black"},
    "hop_lw": {2: 0.1, 3: 0.0},
    "lead_color": {2: "red", 3: "red"},
}


def _site_spec(name: str, spec: Any, syst: Any, sites: list, n_sites: int) -> Any:
    """A site property as a constant or one value per system site."""
    if _is_array(spec) and isinstance(syst, Builder):
        raise TypeError(
            f"{name} cannot be an array when plotting a Builder (its site order is not "
            "defined); give a function of the site instead"
        )
    if name in ("site_size", "site_lw") and isinstance(spec, tuple):
        raise TypeError(f"{name} may not be a tuple; give a list or an array, got {spec!r}")
    if callable(spec) and not _is_path(spec):
        spec = [spec(site) for site, lead_nr, _ in sites if lead_nr is None]
    if _is_array(spec) and len(spec) != n_sites:
        raise ValueError(
            f"{name} has {len(spec)} values but the system has {n_sites} sites; give one "
            "per site of syst.sites"
        )
    return spec


def _is_path(value: Any) -> bool:
    try:
        from matplotlib.path import Path
    except ImportError:  # pragma: no cover - matplotlib is needed to draw at all
        return False
    return isinstance(value, Path)


def _hop_spec(name: str, spec: Any, hops: list, n_hops: int) -> Any:
    if callable(spec):
        spec = [spec(a, b) for (a, b), lead_nr, _ in hops if lead_nr is None]
    if _is_array(spec) and len(spec) != n_hops:
        raise ValueError(
            f"{name} has {len(spec)} values but the system has {n_hops} hoppings; give a "
            "function of the two sites instead"
        )
    return spec


def _take(spec: Any, index: Any) -> Any:
    if not _is_array(spec):
        return spec
    values = list(spec)
    return [values[k] for k in index]


def _reference_length(
    unit: Any,
    sites_pos: NDArray[np.float64],
    end: NDArray[np.float64],
    start: NDArray[np.float64],
) -> float | None:
    if isinstance(unit, str) and unit == "pt":
        return None
    if isinstance(unit, str) and unit == "nn":
        if len(end):
            lengths = np.linalg.norm(end - start, axis=1)
        elif len(sites_pos) > 1:
            from scipy.spatial import cKDTree

            lengths = cKDTree(sites_pos).query(sites_pos, k=2)[0][:, 1]
        else:
            return 1.0
        longest = float(np.max(lengths)) if len(lengths) else 0.0
        usable = lengths[lengths > 1e-8 * longest]
        return float(np.min(usable)) if len(usable) and longest > 0 else 1.0
    try:
        reflen = float(unit)
    except (TypeError, ValueError):
        raise ValueError(
            f"unit must be 'nn', 'pt' or a length (a positive number), got {unit!r}"
        ) from None
    if not reflen > 0:
        raise ValueError(f"unit must be a positive length, got {unit!r}")
    return reflen


def _transformed(pos: NDArray[np.float64], pos_transform: Any) -> NDArray[np.float64]:
    if pos_transform is None:
        return pos
    rows = [np.asarray(pos_transform(p), dtype=float) for p in pos]
    if not rows:
        return pos
    return _positions(rows)


def _to_dim(pos: NDArray[np.float64], dim: int) -> NDArray[np.float64]:
    out = np.zeros((len(pos), dim))
    width = min(dim, pos.shape[1])
    out[:, :width] = pos[:, :width]
    return out


def _family_colors(syst: Any, sites: list) -> Callable[[Any], Any]:
    """Default site colors: one color of the matplotlib cycle per site family."""
    import matplotlib as mpl

    if isinstance(syst, Builder):
        family_of = {s: s.family for s, lead_nr, _ in sites if lead_nr is None}

        def family(site: Any) -> Any:
            return family_of[site]
    else:
        all_sites = syst.sites

        def family(site: Any) -> Any:
            return all_sites[site].family

    families: list[Any] = []
    for site, lead_nr, _ in sites:
        if lead_nr is None:
            fam = family(site)
            if fam not in families:
                families.append(fam)
    families.sort(key=lambda f: str(getattr(f, "name", "")))
    cycle = itertools.cycle(c["color"] for c in mpl.rcParams["axes.prop_cycle"])
    colors = [next(cycle) for _ in families]

    def color(site: Any) -> Any:
        return colors[families.index(family(site))]

    return color


def plot(
    sys: Any,
    num_lead_cells: int = 2,
    unit: Any = "nn",
    site_symbol: Any = None,
    site_size: Any = None,
    site_color: Any = None,
    site_edgecolor: Any = None,
    site_lw: Any = None,
    hop_color: Any = None,
    hop_lw: Any = None,
    lead_site_symbol: Any = None,
    lead_site_size: Any = None,
    lead_color: Any = None,
    lead_site_edgecolor: Any = None,
    lead_site_lw: Any = None,
    lead_hop_lw: Any = None,
    pos_transform: Callable[[Any], Any] | None = None,
    cmap: Any = "gray",
    colorbar: bool = True,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
) -> Any:
    """Draw the sites and hoppings of a system and a few unit cells of each lead.

    Parameters
    ----------
    sys : Builder or System
        A system under construction or a finalized one.
    num_lead_cells : int
        Unit cells drawn for each lead, fading from `lead_color` to white.
    unit : 'nn', 'pt' or float
        Unit of symbol sizes and line widths: the shortest hopping ('nn', so the sizes
        scale with the zoom and neighbours do not overlap), points ('pt'), or a length
        in the system's units.
    site_symbol : symbol, function, array or None
        'o' (circle of radius 1), 's' (square with inner radius 1), ``('p', n, angle)``
        (regular n-gon with inner radius 1 turned by `angle` degrees), 'S' and
        ``('P', n, angle)`` (the same with the area of the unit circle), 'no symbol', or
        a matplotlib Path. A function of the site, or (for a System) an array with one
        per site, gives each site its own.
    site_size, site_lw : float, function, array or None
        Symbol radius and edge width, in `unit`.
    site_color : color, function, array or None
        A matplotlib color; per site values that are floats are mapped through `cmap`.
        By default each site family has its own color of the matplotlib color cycle.
    site_edgecolor : color, function, array or None
    hop_color, hop_lw : color or float, or function of the two sites
    lead_site_symbol, lead_site_size, lead_color : optional
        The same for the lead cells (constants only); by default the system's value when
        that is a constant (red for `lead_color`).
    lead_site_edgecolor, lead_site_lw, lead_hop_lw : optional
        Likewise.
    pos_transform : function, optional
        Applied to each position before drawing (e.g. ``lambda r: r[:2]`` to project
        a 3-D system).
    cmap : colormap or (colormap, colormap)
        For sites (and hoppings) colored by numbers.
    colorbar : bool
        Add a color bar for colormapped sites or hoppings (not when `ax` is given).
    file : str or binary file, optional
        Save the figure there instead of showing it.
    show : bool
        Call ``pyplot.show()`` when `file` is None and the backend is interactive.
    dpi : float, optional
    fig_size : (float, float), optional
        Figure size in inches.
    ax : matplotlib Axes, optional
        Draw into it (a 3-D Axes for a 3-D system); `file`, `show`, `dpi`, `fig_size`
        are then ignored.

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.

    Notes
    -----
    For a Builder a "site" given to a function is a Site; for a System it is the
    site's index (into ``sys.sites``). Positions with one coordinate are drawn on a
    line, with three in 3-D (with mplot3d).
    """
    _require_engine("plot")
    _check_drawable(sys)
    syst = sys
    sites, site_cells = sys_leads_sites(syst, num_lead_cells)
    if not sites:
        raise ValueError("the system has no sites to plot")
    n_sites = sum(lead_nr is None for _, lead_nr, _ in sites)
    sites_pos = sys_leads_pos(syst, sites)
    hops, hop_cells = sys_leads_hoppings(syst, num_lead_cells)
    n_hops = sum(lead_nr is None for _, lead_nr, _ in hops)
    end_pos, start_pos = sys_leads_hopping_pos(syst, hops)

    sites_pos = _transformed(sites_pos, pos_transform)
    end_pos = _transformed(end_pos, pos_transform)
    start_pos = _transformed(start_pos, pos_transform)
    dim = 3 if sites_pos.shape[1] >= 3 else 2
    if dim == 3 and not _plotter.has3d:
        raise RuntimeError("3-D plots need mpl_toolkits.mplot3d, which is not installed")
    sites_pos, end_pos, start_pos = (_to_dim(p, dim) for p in (sites_pos, end_pos, start_pos))
    reflen = _reference_length(unit, sites_pos, end_pos, start_pos)

    if site_color is None:
        site_color = _family_colors(syst, sites)
    site_symbol = _site_spec("site_symbol", site_symbol, syst, sites, n_sites)
    site_size = _site_spec("site_size", site_size, syst, sites, n_sites)
    site_color = _site_spec("site_color", site_color, syst, sites, n_sites)
    site_edgecolor = _site_spec("site_edgecolor", site_edgecolor, syst, sites, n_sites)
    site_lw = _site_spec("site_lw", site_lw, syst, sites, n_sites)
    hop_color = _hop_spec("hop_color", hop_color, hops, n_hops)
    hop_lw = _hop_spec("hop_lw", hop_lw, hops, n_hops)

    def default(name: str, value: Any) -> Any:
        return _DEFAULTS[name][dim] if value is None else value

    site_symbol = default("site_symbol", site_symbol)
    site_size = default("site_size", site_size)
    site_edgecolor = default("site_edgecolor", site_edgecolor)
    site_lw = default("site_lw", site_lw)
    hop_color = default("hop_color", hop_color)
    hop_lw = default("hop_lw", hop_lw)

    def lead_default(name: str, value: Any, system_value: Any) -> Any:
        if value is not None:
            return value
        return _DEFAULTS[name][dim] if _is_array(system_value) else system_value

    lead_site_symbol = lead_default("site_symbol", lead_site_symbol, site_symbol)
    lead_site_size = lead_default("site_size", lead_site_size, site_size)
    lead_site_edgecolor = lead_default("site_edgecolor", lead_site_edgecolor, site_edgecolor)
    lead_site_lw = lead_default("site_lw", lead_site_lw, site_lw)
    lead_hop_lw = lead_default("hop_lw", lead_hop_lw, hop_lw)

    import matplotlib.colors as mcolors

    lead_rgba = mcolors.to_rgba(default("lead_color", lead_color))
    site_cmap, hop_cmap = cmap, None
    if cmap is not None and not isinstance(cmap, (str, mcolors.Colormap)):
        try:
            site_cmap, hop_cmap = cmap
        except (TypeError, ValueError):
            raise ValueError(
                f"cmap must be a colormap or a pair (site colormap, hopping colormap), "
                f"got {cmap!r}"
            ) from None

    # Sites with different symbols are drawn as separate collections.
    if _is_array(site_symbol):
        groups: list[tuple[Any, list[int]]] = []
        for k, symbol in enumerate(site_symbol):
            for known, members in groups:
                if known is symbol or (type(known) is type(symbol) and known == symbol):
                    members.append(k)
                    break
            else:
                groups.append((symbol, [k]))
    else:
        groups = [(site_symbol, list(range(n_sites)))]
    norm = None
    if len(groups) > 1 and _is_array(site_color):
        try:
            values = np.asarray(site_color, dtype=float)
            if values.ndim == 1:
                norm = mcolors.Normalize(values.min(), values.max())
        except (TypeError, ValueError):
            pass

    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        if dim == 2:
            ax = fig.add_subplot(1, 1, 1, aspect="equal")
        else:
            ax = fig.add_subplot(1, 1, 1, projection="3d")

    site_colls = []
    for symbol, members in groups:
        site_colls.append(
            _draw_symbols(
                ax,
                sites_pos[members],
                symbol=symbol,
                size=_take(site_size, members),
                reflen=reflen,
                facecolor=_take(site_color, members),
                edgecolor=_take(site_edgecolor, members),
                linewidth=_take(site_lw, members),
                cmap=site_cmap,
                norm=norm,
            )
        )
    hop_coll = _draw_lines(
        ax,
        end_pos[:n_hops],
        start_pos[:n_hops],
        reflen=reflen,
        colors=hop_color,
        linewidth=hop_lw,
        cmap=hop_cmap,
    )

    white = np.array([1.0, 1.0, 1.0, lead_rgba[3]])
    n_cells = max(_check_cells(num_lead_cells), 1)

    def faded(copies: list[int]) -> NDArray[np.float64]:
        fraction = (np.asarray(copies, dtype=float) + 0.5) / n_cells
        return (1 - fraction)[:, None] * np.array(lead_rgba) + fraction[:, None] * white

    for site_slice, hop_slice in zip(site_cells, hop_cells):
        copies = [c for _, _, c in sites[site_slice]]
        _draw_symbols(
            ax,
            sites_pos[site_slice],
            symbol=lead_site_symbol,
            size=lead_site_size,
            reflen=reflen,
            facecolor=faded(copies) if copies else lead_rgba,
            edgecolor=lead_site_edgecolor,
            linewidth=lead_site_lw,
        )
        hop_copies = [c for _, _, c in hops[hop_slice]]
        _draw_lines(
            ax,
            end_pos[hop_slice],
            start_pos[hop_slice],
            reflen=reflen,
            colors=faded(hop_copies) if hop_copies else lead_rgba,
            linewidth=lead_hop_lw,
        )

    low, high = sites_pos.min(axis=0), sites_pos.max(axis=0)
    middle = (low + high) / 2
    # Room for the largest symbol (sizes in units of reflen), or one reference length.
    pad = 0.0
    if reflen is not None:
        sizes = [np.max(np.atleast_1d(np.asarray(s, dtype=float))) for s in (site_size,)]
        if not _is_array(lead_site_size):
            sizes.append(float(lead_site_size))
        pad = reflen * max(max(sizes), 0.0)
    floor = reflen if reflen is not None else 0.5
    if dim == 2:
        half = np.maximum((high - low) / 2 + pad, floor)
        ax.set_xmargin(0.05)
        ax.set_ymargin(0.05)
        ax.update_datalim([middle - half, middle + half])
        ax.autoscale_view()
    else:
        half = max(float(np.max(high - low)) / 2 + pad, floor)
        ax.set_xlim3d(middle[0] - half, middle[0] + half)
        ax.set_ylim3d(middle[1] - half, middle[1] + half)
        ax.set_zlim3d(middle[2] - half, middle[2] + half)

    if fig is not None and colorbar:
        mappable = next((c for c in site_colls if c.get_array() is not None), None)
        if mappable is not None:
            fig.colorbar(mappable, ax=ax)
        if hop_coll.get_array() is not None:
            fig.colorbar(hop_coll, ax=ax)
    _output(fig, file, show)
    return fig


# ---- map ---------------------------------------------------------------------------------


def _default_cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps["Reds"]


def mask_interpolate(
    coords: Any,
    values: Any,
    a: float | None = None,
    method: str = "nearest",
    oversampling: int = 3,
) -> tuple[Any, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Interpolate values given at points onto a regular grid, masked away from the points.

    Parameters
    ----------
    coords : array_like, shape (n, d)
        Point coordinates.
    values : array_like, shape (n,)
        One value per point.
    a : float, optional
        Reference length; by default the shortest distance between two points.
    method : {'nearest', 'linear', 'cubic'}
        Passed to :func:`scipy.interpolate.griddata`.
    oversampling : int
        Grid points per reference length.

    Returns
    -------
    masked : numpy.ma.MaskedArray, shape of the grid
        The interpolated values, masked farther than about `a` from every point.
    img : ndarray
        The same, unmasked.
    cmin, cmax : ndarray, shape (d,)
        Coordinates of the first and last grid points. The grid pitch is
        ``a / oversampling`` and, for points on a square lattice of constant `a`, every
        point lies on a grid point.

    Raises
    ------
    ValueError
        If `values` does not have one value per point, or `a` is (nearly) zero.
    """
    from scipy import interpolate, spatial

    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values)
    if coords.ndim != 2 or len(coords) < 2:
        raise ValueError(f"coords must have shape (n >= 2, d), got {coords.shape}")
    if len(values) != len(coords):
        raise ValueError(
            f"values has {len(values)} entries but there are {len(coords)} points; give "
            "one value per point"
        )
    cmin, cmax = coords.min(axis=0), coords.max(axis=0)
    extent = float(np.linalg.norm(cmax - cmin))
    tree = spatial.cKDTree(coords)
    nearest = float(np.min(tree.query(coords, k=2)[0][:, 1]))
    if nearest < 1e-6 * extent:
        warnings.warn(
            "some points have nearly coinciding positions; the interpolation may hide one of them",
            RuntimeWarning,
            stacklevel=2,
        )
    if a is None:
        a = nearest
    if not a >= 1e-6 * extent or not a > 0:
        raise ValueError(
            f"the reference length a = {a!r} is too small for points spread over {extent:g}; "
            "give a typical distance between neighbouring points"
        )
    shape = np.round(((cmax - cmin) / a + 1) * oversampling).astype(int)
    margin = 0.5 * (oversampling - 1) * a / oversampling
    cmin = cmin - margin
    cmax = cmax + margin
    axes = [np.linspace(lo, hi, int(m)) for lo, hi, m in zip(cmin, cmax, shape)]
    grid = np.meshgrid(*axes, indexing="ij")
    img = np.asarray(interpolate.griddata(coords, values, tuple(grid), method), dtype=float)
    points = np.stack([g.ravel() for g in grid], axis=1)
    far = tree.query(points)[0].reshape(img.shape) > 0.99 * a
    return np.ma.masked_array(img, far), img, cmin, cmax


def map(
    sys: Any,
    value: Any,
    colorbar: bool = True,
    cmap: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    a: float | None = None,
    method: str = "nearest",
    oversampling: int = 3,
    num_lead_cells: int = 0,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
    pos_transform: Callable[[Any], Any] | None = None,
    background: Any = "#e0e0e0",
) -> Any:
    """Color map of one value per site of a 2-D system.

    Parameters
    ----------
    sys : Builder or System
    value : function or array_like
        A function of the site (a Site for a Builder, an index for a System), or for a
        System one value per site of ``sys.sites``.
    colorbar : bool
    cmap : colormap, optional
        Default: white to red.
    vmin, vmax : float, optional
        Color limits; default: the range of the values.
    a, method, oversampling :
        Passed to :func:`mask_interpolate`.
    num_lead_cells : int
        Lead cells drawn (as black squares) around the map.
    file, show, dpi, fig_size, ax :
        As for :func:`plot`.
    pos_transform : function, optional
        Applied to each position; the result must have two coordinates.
    background : color
        Fills the area without sites.

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.
    """
    _require_engine("map")
    _check_drawable(sys)
    sites = sys_leads_sites(sys, 0)[0]
    coords = _transformed(sys_leads_pos(sys, sites), pos_transform)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(
            f"map draws 2-D systems only; the positions have {coords.shape[-1]} coordinates "
            "(give pos_transform= to project them onto a plane)"
        )
    if callable(value):
        values = np.asarray([value(site) for site, _, _ in sites], dtype=float)
    else:
        if not isinstance(sys, System):
            raise ValueError(
                "map of a Builder needs value to be a function of the site (its site order "
                "is not defined); an array of values is accepted for a finalized System"
            )
        values = np.asarray(value, dtype=float)
    if values.shape != (len(sites),):
        raise ValueError(
            f"value must give one number per site ({len(sites)}), got shape {values.shape}"
        )
    img, _, cmin, cmax = mask_interpolate(coords, values, a, method, oversampling)
    shown = img.compressed()
    shown = shown[np.isfinite(shown)]
    if vmin is None:
        vmin = float(shown.min()) if shown.size else None
    if vmax is None:
        vmax = float(shown.max()) if shown.size else None

    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        ax = fig.add_subplot(1, 1, 1, aspect="equal")
    pitch = (cmax - cmin) / np.maximum(np.asarray(img.shape) - 1, 1)
    low, high = cmin - pitch / 2, cmax + pitch / 2
    image = ax.imshow(
        img.T,
        extent=(low[0], high[0], low[1], high[1]),
        origin="lower",
        interpolation="none",
        cmap=_default_cmap() if cmap is None else cmap,
        vmin=vmin,
        vmax=vmax,
    )
    if num_lead_cells:
        plot(
            sys,
            num_lead_cells,
            site_symbol="no symbol",
            hop_lw=0,
            lead_site_symbol="s",
            lead_site_size=0.5,
            lead_site_lw=0,
            lead_hop_lw=0,
            lead_color="black",
            colorbar=False,
            ax=ax,
            pos_transform=pos_transform,
        )
    ax.set_facecolor(background)
    if colorbar and fig is not None:
        fig.colorbar(image, ax=ax)
    _output(fig, file, show)
    return fig


# ---- bands and spectra ----------------------------------------------------------------


def bands(
    sys: Any,
    args: tuple[Any, ...] = (),
    momenta: Any = 65,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
    *,
    params: dict[str, Any] | None = None,
) -> Any:
    """Band structure E(k) of a finalized lead.

    Parameters
    ----------
    sys : InfiniteSystem
        A finalized lead (``fsys.leads[0]``).
    args : tuple
        Not supported (Kwant's deprecated positional parameters); use `params`.
    momenta : int or array_like
        Number of momenta in [-pi, pi], or the momenta (1/period).
    file, show, dpi, fig_size, ax :
        As for :func:`plot`.
    params : dict, optional
        Parameter values by name.

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.
    """
    from .physics import Bands

    _require_engine("bands")
    if not isinstance(sys, InfiniteSystem):
        raise TypeError(
            f"bands needs a finalized lead (InfiniteSystem, e.g. fsys.leads[0]), got "
            f"{type(sys).__name__}"
        )
    ks = np.asarray(momenta, dtype=float)
    if ks.ndim == 0:
        count = int(ks)
        if count != ks or count < 2:
            raise ValueError(f"momenta must be a number >= 2 of points or an array, got {momenta}")
        ks = np.linspace(-np.pi, np.pi, count)
    elif ks.ndim != 1:
        raise ValueError(f"momenta must be one-dimensional, got shape {ks.shape}")
    energies = Bands(sys, args, params=params).energies(ks)
    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_xlabel("k")
        ax.set_ylabel("Energy")
    ax.plot(ks, energies)
    _output(fig, file, show)
    return fig


def _spectrum_axis(pair: Any, name: str) -> tuple[str, NDArray[Any]]:
    try:
        key, values = pair
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (parameter name, values), got {pair!r}") from None
    if not isinstance(key, str):
        raise TypeError(f"{name}: the parameter name must be a string, got {key!r}")
    return key, np.asarray(values)


def spectrum(
    syst: Any,
    x: Any,
    y: Any = None,
    params: dict[str, Any] | None = None,
    mask: Callable[..., bool] | None = None,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
) -> Any:
    """Eigenvalues of a Hamiltonian against one parameter (curves) or two (surfaces).

    Parameters
    ----------
    syst : System or callable
        A finalized system (its Hamiltonian without leads), or a function taking
        parameters by name and returning a Hermitian matrix.
    x : (str, array_like)
        Parameter name and values along the horizontal axis.
    y : (str, array_like), optional
        A second parameter: the spectrum is drawn as surfaces over the grid (3-D axes).
    params : dict, optional
        The other parameters, held fixed.
    mask : callable, optional
        Called with the `x` (and `y`) parameters by name; True skips that point.
    file, show, dpi, fig_size, ax :
        As for :func:`plot`; with `y`, `ax` must be a 3-D Axes.

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.
    """
    _require_engine("spectrum")
    params = dict(params or {})
    if isinstance(syst, System):

        def ham(**values: Any) -> Any:
            return syst.hamiltonian_submatrix(params=values, sparse=False)

    elif callable(syst):
        ham = syst
    else:
        raise TypeError(
            f"spectrum needs a finalized System or a function returning a Hamiltonian, got "
            f"{type(syst).__name__}"
        )
    axes = [_spectrum_axis(x, "x")]
    if y is not None:
        axes.append(_spectrum_axis(y, "y"))
        if not _plotter.has3d:
            raise RuntimeError("a spectrum over two parameters needs mpl_toolkits.mplot3d")
    keys = [key for key, _ in axes]
    grids = [values for _, values in axes]
    results: list[Any] = []
    for point in itertools.product(*grids):
        chosen = dict(zip(keys, point))
        if mask is not None and mask(**chosen):
            results.append(None)
        else:
            matrix = np.atleast_2d(np.asarray(ham(**params, **chosen)))
            results.append(np.linalg.eigvalsh(matrix))
    computed = [r for r in results if r is not None]
    if not computed:
        raise ValueError("mask excludes every point; nothing to draw")
    blank = np.full(computed[0].shape, np.nan)
    energies: Any = np.array([blank if r is None else r for r in results])
    energies = energies.reshape([*(len(g) for g in grids), -1])

    if y is not None and ax is not None and not hasattr(ax, "plot_surface"):
        raise TypeError(
            "a spectrum over two parameters is drawn as surfaces: give an Axes made with "
            "projection='3d'"
        )
    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        if y is None:
            ax = fig.add_subplot(1, 1, 1)
            ax.set_ylabel("Energy")
        else:
            ax = fig.add_subplot(1, 1, 1, projection="3d")
            ax.set_ylabel(keys[1])
            ax.set_zlabel("Energy")
        ax.set_xlabel(keys[0])
        ax.set_title(", ".join(f"{k} = {v}" for k, v in params.items() if not callable(v)))
    if len(grids) == 1:
        ax.plot(grids[0], energies)
    else:
        mesh: Any = np.meshgrid(*grids, indexing="ij")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Z contains NaN values")
            for band in range(energies.shape[-1]):
                ax.plot_surface(
                    mesh[0], mesh[1], np.take(energies, band, axis=-1), rstride=1, cstride=1
                )
    _output(fig, file, show)
    return fig


# ---- interpolated densities and currents ----------------------------------------------

# Integral over R^d of the bump (1 - r^2)^2 (r < 1), d = 1, 2, 3.
_BUMP_INTEGRAL = {1: 16 / 15, 2: np.pi / 3, 3: 32 * np.pi / 105}


def _bump_line_antiderivative(z: NDArray[np.float64], r2: NDArray[np.float64]) -> Any:
    """Antiderivative in z of (r2 - z^2)^2, the bump along a line at squared offset 1 - r2."""
    return z * (r2 * r2 - (2 / 3) * r2 * z * z + z**4 / 5)


def _bump_width(
    lengths: NDArray[np.float64],
    abswidth: float | None,
    relwidth: float | None,
    box_size: NDArray[np.float64],
    pos: NDArray[np.float64],
) -> float:
    if abswidth is not None:
        width = float(abswidth)
    elif relwidth is not None:
        width = float(relwidth) * float(np.max(box_size))
    else:
        longest = float(np.max(lengths)) if len(lengths) else 0.0
        usable = lengths[lengths > 1e-3 * longest] if longest > 0 else lengths[:0]
        if len(usable):
            width = 4 * float(np.min(usable))
        elif len(pos) > 1:
            from scipy.spatial import cKDTree

            width = 4 * float(np.min(cKDTree(pos).query(pos, k=2)[0][:, 1]))
        else:
            width = 1.0
    if not width > 0 or not np.isfinite(width):
        raise ValueError(
            f"the bump width must be a positive length, got {width!r} (from abswidth="
            f"{abswidth!r}, relwidth={relwidth!r})"
        )
    return width


def _grid(
    low: NDArray[np.float64], high: NDArray[np.float64], width: float, n: int
) -> tuple[list[NDArray[np.float64]], tuple[tuple[float, float], ...]]:
    """Grid over the box padded by half a width, with about `n` points per width."""
    n = _checks.positive_int(n, "n (grid points per bump width)", minimum=2)
    pad = width / 2
    axes = []
    for lo, hi in zip(low, high):
        count = int((hi - lo) * n / width + n)
        count += count % 2
        axes.append(np.linspace(lo - pad, hi + pad, count))
    box = tuple((float(lo - pad), float(hi + pad)) for lo, hi in zip(low, high))
    return axes, box


def _window(axis: NDArray[np.float64], lo: float, hi: float) -> slice:
    return slice(int(np.searchsorted(axis, lo, "left")), int(np.searchsorted(axis, hi, "right")))


def interpolate_density(
    syst: Any,
    density: Any,
    relwidth: float | None = None,
    abswidth: float | None = None,
    n: int = 9,
    mask: bool = True,
) -> tuple[Any, tuple[tuple[float, float], ...]]:
    """Smooth density field from one value per site, on a regular grid.

    Each site's value is spread by the normalized bump ``(1 - (2 r / w)^2)^2``
    (``r < w / 2``) of width ``w``, so the field is a density per unit length, area or
    volume whose integral over space is the sum of the site values.

    Parameters
    ----------
    syst : System
    density : array_like, shape (n_sites,)
        One value per site of ``syst.sites``.
    relwidth : float, optional
        Bump width as a fraction of the longest side of the system's bounding box.
    abswidth : float, optional
        Bump width as a length (takes precedence). Default: four times the shortest
        hopping.
    n : int
        Grid points per bump width.
    mask : bool
        Mask the grid points farther than 0.6 widths from every site.

    Returns
    -------
    field : ndarray (masked if `mask`), shape (n_x, ..., 1)
        The field on the grid, indexed ``field[ix, iy, ..., 0]``.
    box : tuple of (float, float)
        The first and last grid coordinate along each axis.
    """
    _checks.finalized_system(syst, "interpolate_density")
    pos = np.asarray(syst.pos, dtype=float)
    values = np.asarray(density, dtype=float)
    if values.shape != (len(pos),):
        raise ValueError(
            f"density must have one value per site ({len(pos)}), got shape {values.shape}"
        )
    i, j = syst.hopping_indices
    lengths = np.linalg.norm(pos[i] - pos[j], axis=1)
    low, high = pos.min(axis=0), pos.max(axis=0)
    width = _bump_width(lengths, abswidth, relwidth, high - low, pos)
    axes, box = _grid(low, high, width, n)
    dim = pos.shape[1]
    half = width / 2
    field = np.zeros([len(a) for a in axes] + [1])
    norm = 1 / (half**dim * _BUMP_INTEGRAL[dim])
    for site, value in enumerate(values):
        if not value:
            continue
        window = tuple(_window(a, c - half, c + half) for a, c in zip(axes, pos[site]))
        local = np.meshgrid(*(a[w] for a, w in zip(axes, window)), indexing="ij")
        r2 = sum(((g - c) / half) ** 2 for g, c in zip(local, pos[site]))
        bump = np.where(r2 < 1, (1 - r2) ** 2, 0.0)
        field[..., 0][window] += value * norm * bump
    if mask:
        from scipy.spatial import cKDTree

        points = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
        far = cKDTree(pos).query(points, distance_upper_bound=0.6 * width)[0] == np.inf
        return np.ma.masked_array(field, far.reshape(field.shape)), box
    return field, box


def _bond_currents(
    syst: System, current: Any
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Tail and head sites and the current of each bond, from either current layout.

    One value per hopping ``(i, j)`` of ``syst.hopping_indices`` flows from j to i. One
    value per edge of ``syst.graph`` (each hopping in both directions, ordered by
    ``(a, b)``: the layout of ``operator.Current``), flows from b to a; the two
    directions of a hopping each carry half, so an antisymmetric input ``J_ba = -J_ab``
    gives the current ``J_ab``.
    """
    i, j = syst.hopping_indices
    values = np.asarray(current, dtype=float)
    if len(i) == 0:
        raise ValueError("the system has no hoppings, so it carries no current")
    pairs = np.concatenate([np.stack([i, j], 1), np.stack([j, i], 1)])
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    if values.shape == (len(i),):
        return np.asarray(j), np.asarray(i), values
    if values.shape == (len(pairs),):
        return pairs[:, 1], pairs[:, 0], values / 2
    raise ValueError(
        f"current must have one value per hopping of syst.hopping_indices ({len(i)}) or "
        f"per edge of syst.graph ({len(pairs)}, as operator.Current gives), got shape "
        f"{values.shape}"
    )


def interpolate_current(
    syst: Any,
    current: Any,
    relwidth: float | None = None,
    abswidth: float | None = None,
    n: int = 9,
) -> tuple[NDArray[np.float64], tuple[tuple[float, float], ...]]:
    """Smooth current density field from bond currents, on a regular grid.

    Each bond current flows along the straight segment between its sites; smoothing
    this line current with the normalized bump ``(1 - (2 r / w)^2)^2`` of width ``w``
    keeps it conserved: the flux of the field through any surface that cuts the system
    in two is the total current across that cut (exactly, once the surface is more than
    half a width from the cut's end sites), and the field's divergence is the smoothed
    net current into each site (zero where current is conserved).

    Parameters
    ----------
    syst : System
    current : array_like, shape (n_hoppings,) or (2 n_hoppings,)
        Current along each hopping ``(i, j)`` of ``syst.hopping_indices``, positive from
        site j to site i (as :func:`mesoscopic.transport.bond_currents` returns it), or along each
        hopping ``(a, b)`` in both directions, sorted, positive from b to a (as
        :class:`mesoscopic.operator.Current` returns it).
    relwidth, abswidth, n :
        As for :func:`interpolate_density`.

    Returns
    -------
    field : ndarray, shape (n_x, ..., dim)
        The current density vector at each grid point, ``field[ix, iy, ..., axis]``,
        in units of current per unit length (2-D) or area (3-D).
    box : tuple of (float, float)
        The first and last grid coordinate along each axis.
    """
    _checks.finalized_system(syst, "interpolate_current")
    pos = np.asarray(syst.pos, dtype=float)
    tails, heads, values = _bond_currents(syst, current)
    start, stop = pos[tails], pos[heads]  # positive current flows from tail to head
    segment = stop - start
    lengths = np.linalg.norm(segment, axis=1)
    ends = np.concatenate([start, stop])
    low, high = ends.min(axis=0), ends.max(axis=0)
    width = _bump_width(lengths, abswidth, relwidth, high - low, pos)
    axes, box = _grid(low, high, width, n)
    dim = pos.shape[1]
    half = width / 2
    field = np.zeros([len(a) for a in axes] + [dim])
    # Line integral of the bump kernel (1/(h^d N)) bump(|r|/h) along the segment: ds = h du.
    norm = half / (half**dim * _BUMP_INTEGRAL[dim])
    for k in range(len(values)):
        if not values[k] or lengths[k] == 0:
            continue
        direction = segment[k] / lengths[k]
        lo = np.minimum(start[k], stop[k]) - half
        hi = np.maximum(start[k], stop[k]) + half
        window = tuple(_window(a, low_, high_) for a, low_, high_ in zip(axes, lo, hi))
        local = np.meshgrid(*(a[w] for a, w in zip(axes, window)), indexing="ij")
        rel = [(g - s) / half for g, s in zip(local, start[k])]
        along = sum(r * d for r, d in zip(rel, direction))
        across2 = np.maximum(sum(r * r for r in rel) - along * along, 0.0)
        r2 = np.maximum(1 - across2, 0.0)
        reach = np.sqrt(r2)
        span = lengths[k] / half
        weight = _bump_line_antiderivative(
            np.clip(along, -reach, reach), r2
        ) - _bump_line_antiderivative(np.clip(along - span, -reach, reach), r2)
        field[window] += (values[k] * norm * weight)[..., None] * direction
    return field, box


# ---- streamlines and scalar fields --------------------------------------------------------


def _srgb_to_linear(c: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0), 1 / 2.4) - 0.055)


def _blend_cmap(background: Any, line: Any) -> Any:
    """Colormap from `background` (0) to `line` (1), mixed in linear light."""
    import matplotlib.colors as mcolors

    bg = _srgb_to_linear(np.array(mcolors.to_rgb(background)))
    fg = _srgb_to_linear(np.array(mcolors.to_rgb(line)))
    t = np.linspace(0, 1, 256)[:, None]
    return mcolors.ListedColormap(np.clip(_linear_to_srgb((1 - t) * bg + t * fg), 0, 1))


def streamplot(
    field: Any,
    box: Any,
    cmap: Any = None,
    bgcolor: Any = None,
    linecolor: Any = "k",
    max_linewidth: float = 3,
    min_linewidth: float = 1,
    density: float = 2 / 9,
    colorbar: bool = True,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
    vmax: float | None = None,
) -> Any:
    """Streamlines of a 2-D vector field over a color map of its magnitude.

    Line widths grow with the flow speed up to `max_linewidth`; lines that would be
    thinner than `min_linewidth` keep that width and fade into the background instead.

    Parameters
    ----------
    field : array_like, shape (n_x, n_y, 2)
        The field, ``field[ix, iy]`` (as :func:`interpolate_current` returns it).
    box : ((x0, x1), (y0, y1))
        The coordinates of the first and last grid points.
    cmap : colormap, optional
        Background map of the speed (default white to red); exclusive with `bgcolor`.
    bgcolor : color, optional
        A plain background instead of the speed map.
    linecolor : color
    max_linewidth, min_linewidth : float
        Line widths in points.
    density : float
        Streamlines per grid point (2/9: two per default bump width of
        :func:`interpolate_current`).
    colorbar : bool
    file, show, dpi, fig_size, ax :
        As for :func:`plot`.
    vmax : float, optional
        Speed at which the colors and widths saturate (default: the largest).

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.
    """
    import matplotlib

    _require_engine("streamplot")
    field = np.asarray(field, dtype=float)
    if field.ndim != 3 or field.shape[-1] != 2:
        raise ValueError(f"streamplot draws 2-D fields of shape (n_x, n_y, 2), got {field.shape}")
    if bgcolor is not None and cmap is not None:
        raise ValueError("give either cmap (a speed map) or bgcolor (a plain background)")
    if bgcolor is None:
        cmap = _default_cmap() if cmap is None else cmap
        if isinstance(cmap, str):
            cmap = matplotlib.colormaps[cmap]
        bgcolor = cmap(0.0)[:3]
    (x0, x1), (y0, y1) = box
    flow = field.transpose(1, 0, 2)  # matplotlib wants [iy, ix]
    xs = np.linspace(x0, x1, flow.shape[1])
    ys = np.linspace(y0, y1, flow.shape[0])
    speed = np.linalg.norm(flow, axis=-1)
    top = float(vmax) if vmax is not None else (float(speed.max()) or 1.0)

    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        ax = fig.add_subplot(1, 1, 1, aspect="equal")
    image = None
    if cmap is None:
        ax.set_facecolor(bgcolor)
    else:
        image = ax.imshow(
            speed,
            cmap=cmap,
            interpolation="bicubic",
            extent=(x0, x1, y0, y1),
            origin="lower",
            vmin=0,
            vmax=top,
        )
    widths = max_linewidth * speed / top
    shade = np.clip(widths / min_linewidth, 0, 1)
    widths = np.maximum(widths, min_linewidth)
    count = density * np.array(flow.shape[1::-1], dtype=float) / 30
    if np.any(speed > 0):
        ax.streamplot(
            xs,
            ys,
            flow[..., 0],
            flow[..., 1],
            density=tuple(count),
            linewidth=widths,
            color=shade,
            cmap=_blend_cmap(bgcolor, linecolor),
            norm=matplotlib.colors.Normalize(0, 1),
            arrowstyle="->",
        )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if colorbar and image is not None and fig is not None:
        fig.colorbar(image, ax=ax)
    _output(fig, file, show)
    return fig


def scalarplot(
    field: Any,
    box: Any,
    cmap: Any = None,
    colorbar: bool = True,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: Any = None,
    ax: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    background: Any = "#e0e0e0",
) -> Any:
    """A 2-D scalar field as an image (as :func:`interpolate_density` returns it).

    Parameters
    ----------
    field : array_like, shape (n_x, n_y, 1)
        Masked points show `background`.
    box : ((x0, x1), (y0, y1))
    cmap : colormap, optional
        Default: white to red.
    colorbar : bool
    file, show, dpi, fig_size, ax :
        As for :func:`plot`.
    vmin, vmax : float, optional
        Color limits; default: the range of the field.
    background : color

    Returns
    -------
    matplotlib Figure, or None when `ax` is given.
    """
    _require_engine("scalarplot")
    data = np.ma.asarray(field)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 2:
        raise ValueError(
            f"scalarplot draws 2-D scalar fields of shape (n_x, n_y, 1), got {np.shape(field)}"
        )
    image_data = data.T
    if vmin is None:
        vmin = float(np.ma.min(image_data))
    if vmax is None:
        vmax = float(np.ma.max(image_data))
    fig = None
    if ax is None:
        fig = _make_figure(dpi, fig_size, use_pyplot=file is None)
        ax = fig.add_subplot(1, 1, 1, aspect="equal")
    (x0, x1), (y0, y1) = box
    image = ax.imshow(
        image_data,
        cmap=_default_cmap() if cmap is None else cmap,
        interpolation="bicubic",
        extent=(x0, x1, y0, y1),
        origin="lower",
        vmin=vmin,
        vmax=vmax,
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_facecolor(background)
    if colorbar and fig is not None:
        fig.colorbar(image, ax=ax)
    _output(fig, file, show)
    return fig


def current(syst: Any, current: Any, relwidth: float | None = 0.05, **kwargs: Any) -> Any:
    """Streamlines of the smoothed current: ``streamplot(*interpolate_current(...))``.

    Parameters
    ----------
    syst : System
    current : array_like, shape (n_hoppings,)
        As for :func:`interpolate_current`.
    relwidth : float
        Bump width as a fraction of the system's longest side.
    **kwargs :
        Passed to :func:`streamplot` (``cmap``, ``file``, ``show``, ``ax``, ...).
    """
    return streamplot(*interpolate_current(syst, current, relwidth), **kwargs)


def density(syst: Any, density: Any, relwidth: float | None = 0.05, **kwargs: Any) -> Any:
    """Image of the smoothed density: ``scalarplot(*interpolate_density(...))``.

    Parameters
    ----------
    syst : System
    density : array_like, shape (n_sites,)
        As for :func:`interpolate_density`.
    relwidth : float
        Bump width as a fraction of the system's longest side.
    **kwargs :
        Passed to :func:`scalarplot`.
    """
    return scalarplot(*interpolate_density(syst, density, relwidth), **kwargs)
