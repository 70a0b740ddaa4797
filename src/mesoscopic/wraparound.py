"""Bloch Hamiltonians of periodic systems: translational symmetries become momenta.

:func:`wraparound` turns a :class:`~mesoscopic.Builder` with a translational symmetry of
``n`` periods ``a_1 .. a_n`` into a Builder of one unit cell (or of a lead, with ``keep=``)
whose values depend on the momenta ``k_x, k_y, ...`` (Kwant's names; one per wrapped
period, in the order of the periods). A hopping from a site ``a`` to the image of ``b``
displaced by ``d = (d_1, ..., d_n)`` periods becomes the hopping ``a -> b`` times
``exp(i k . d)``, where ``k_i`` is the Bloch phase per period ``a_i`` (so
``k_i = K . a_i`` for a Cartesian wave vector ``K``). Hoppings that come back onto their
own site add ``exp(i k . d) t + h.c.`` to its onsite value. The finalized result gives
``H(k)`` through :meth:`~mesoscopic.System.hamiltonian_submatrix` with
``params={"k_x": ..., "k_y": ...}``, or, with ``keep=``, a lead whose bands
:class:`mesoscopic.physics.Bands` computes at the given transverse momenta.

:func:`plot_2d_bands` draws the bands of a fully wrapped two-dimensional system over the
Brillouin zone, in Cartesian momenta.

Examples
--------
The square lattice, ``E(k) = 2 t (cos k_x + cos k_y)`` with ``t = -1``:

>>> import numpy as np
>>> import mesoscopic as meso
>>> lat = meso.lattice.square(norbs=1)
>>> bulk = meso.Builder(meso.TranslationalSymmetry((1, 0), (0, 1)))
>>> bulk[lat(0, 0)] = 0.0
>>> bulk[lat.neighbors()] = -1.0
>>> cell = meso.wraparound.wraparound(bulk).finalized()
>>> h = cell.hamiltonian_submatrix(params={"k_x": 0.3, "k_y": 1.2})
>>> bool(np.isclose(h[0, 0].real, -2 * (np.cos(0.3) + np.cos(1.2))))
True
"""

from __future__ import annotations

import cmath
import functools
import inspect
import itertools
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks
from .builder import Builder
from .lattice import TranslationalSymmetry

__all__ = ["plot_2d_bands", "wraparound"]

# Momentum names and wrapped symmetry of every system finalized from a wrapped Builder,
# for plot_2d_bands (a finalized System is frozen, so they are kept here).
_WRAPPED: weakref.WeakKeyDictionary[Any, tuple[tuple[str, ...], TranslationalSymmetry]] = (
    weakref.WeakKeyDictionary()
)


class _WrappedBuilder(Builder):
    """A Builder made by :func:`wraparound`; its finalized systems remember the momenta."""

    _momentum_names: tuple[str, ...] = ()
    _wrapped_symmetry: TranslationalSymmetry | None = None

    def finalized(self, *args: Any, **kwargs: Any) -> Any:
        result = super().finalized(*args, **kwargs)
        if self._wrapped_symmetry is not None:
            _WRAPPED[result] = (self._momentum_names, self._wrapped_symmetry)
        return result


def _site_parameters(value: Callable[..., Any], n_sites: int) -> list[inspect.Parameter]:
    """The parameters of a value function after its `n_sites` site arguments."""
    try:
        parameters = list(inspect.signature(value).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(
            f"wraparound needs value functions with a signature, got {value!r}"
        ) from None
    rest = parameters[n_sites:]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in rest):
        raise TypeError(
            f"wraparound cannot combine the value function {value!r}: it takes *args or "
            "**kwargs; name its parameters"
        )
    return rest


def _dagger(value: Any) -> Any:
    """Hermitian conjugate of a number or a matrix."""
    if np.ndim(value) == 0:
        return np.conj(value)
    return np.conj(np.transpose(value))


@dataclass(frozen=True)
class _Positional:
    """Parameter values given by position (Kwant's deprecated ``args``)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class _Term:
    """One contribution to a value of the wrapped Builder.

    ``shift``: the displacement in wrapped periods of the original hopping's second site
    (None for an onsite value); ``onsite``: a hopping folded onto its own site (adds its
    Hermitian conjugate); ``reverse``: the term is stored on the reversed hopping (its value
    is the conjugate of the original evaluated with the sites swapped).
    """

    value: Any
    shift: tuple[int, ...] | None = None
    onsite: bool = False
    reverse: bool = False

    @property
    def n_sites(self) -> int:
        return 1 if self.shift is None else 2

    @functools.cached_property
    def parameters(self) -> list[inspect.Parameter]:
        """The parameters of the value function after its sites (read once)."""
        return _site_parameters(self.value, self.n_sites) if callable(self.value) else []

    @functools.cached_property
    def _parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def evaluate(
        self,
        sites: Sequence[Any],
        params: Any,
        momenta: NDArray[np.float64],
        symmetry: TranslationalSymmetry,
    ) -> Any:
        if self.shift is None:  # an onsite value of the original Builder
            return self._call((sites[0],), params)
        phase = cmath.exp(1j * float(np.dot(self.shift, momenta)))
        if self.onsite:
            a = sites[0]
            v = phase * self._call((a, symmetry.act(self.shift, a)), params)
            return v + _dagger(v)
        a, b = (sites[1], sites[0]) if self.reverse else (sites[0], sites[1])
        v = phase * self._call((a, symmetry.act(self.shift, b)), params)
        return _dagger(v) if self.reverse else v

    def _call(self, sites: tuple[Any, ...], params: Any) -> Any:
        if not callable(self.value):
            return self.value
        if isinstance(params, _Positional):
            return self.value(*sites, *params.values)
        given = {n: params[n] for n in self._parameter_names if n in params}
        return self.value(*sites, **given)


def _combined(
    terms: list[_Term],
    n_sites: int,
    momenta: tuple[str, ...],
    symmetry: TranslationalSymmetry,
) -> Callable[..., Any]:
    """One value function summing `terms`, with the union of their parameters + momenta."""
    required: dict[str, inspect.Parameter] = {}
    optional: dict[str, inspect.Parameter] = {}
    for term in terms:
        for p in term.parameters:
            if p.name in momenta:
                raise ValueError(
                    f"the value function {term.value!r} takes a parameter named {p.name!r}, "
                    "which wraparound uses for a momentum; rename it or choose other "
                    "coordinate_names"
                )
            if p.default is p.empty:
                optional.pop(p.name, None)
                required.setdefault(p.name, p.replace(kind=p.POSITIONAL_OR_KEYWORD))
            elif p.name not in required:
                optional.setdefault(p.name, p.replace(kind=p.KEYWORD_ONLY))
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    site_names = [f"_site{i}" for i in range(n_sites)]
    signature = inspect.Signature(
        [
            *(inspect.Parameter(name, positional) for name in site_names),
            *required.values(),
            *(inspect.Parameter(k, positional) for k in momenta),
            *optional.values(),
        ]
    )

    def value(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) <= n_sites:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given: Any = dict(bound.arguments)
            sites = [given[name] for name in site_names]
            k = np.array([given[name] for name in momenta], dtype=float)
        else:
            # Kwant's positional ``args``: every value function gets all of them, and the
            # momenta are the last ones.
            sites = list(args[:n_sites])
            rest = args[n_sites:]
            if len(rest) < len(momenta):
                raise TypeError(
                    f"the wrapped value function needs the momenta {momenta} after the "
                    f"other parameters; got {len(rest)} positional values"
                )
            split = len(rest) - len(momenta)
            given = _Positional(rest[:split])
            k = np.array(rest[split:], dtype=float)
        total: Any = 0
        for term in terms:
            total = total + term.evaluate(sites, given, k, symmetry)
        return total

    value.__signature__ = signature  # type: ignore[attr-defined]
    return value


def _with_momenta(value: Any, momenta: tuple[str, ...]) -> Any:
    """A site function of the original Builder (a conservation law, a chiral symmetry)
    taking the momenta as extra, ignored parameters."""
    if not callable(value):
        return value
    parameters = _site_parameters(value, 1)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [
            inspect.Parameter("_site0", positional),
            *(p.replace(kind=positional) for p in parameters),
            *(inspect.Parameter(k, positional) for k in momenta),
        ]
    )
    names = [p.name for p in parameters]

    def bound(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments
        return value(given["_site0"], **{n: given[n] for n in names})

    bound.__signature__ = signature  # type: ignore[attr-defined]
    return bound


def wraparound(
    builder: Builder,
    keep: int | None = None,
    *,
    coordinate_names: Sequence[str] = "xyz",
) -> Builder:
    """Replace the translational symmetries of a Builder by momentum parameters.

    Parameters
    ----------
    builder : Builder
        A Builder with a :class:`~mesoscopic.TranslationalSymmetry` of one or more periods.
    keep : int, optional
        The index of one period to keep as the symmetry of the result (a lead, whose bands
        :class:`mesoscopic.physics.Bands` computes); by default every period is wrapped
        and the result has no symmetry.
    coordinate_names : sequence of str, keyword-only, optional
        Names of the directions, in the order of the periods: the momentum of period ``i``
        is the parameter ``"k_" + coordinate_names[i]`` (default ``k_x, k_y, k_z``).

    Returns
    -------
    Builder
        One unit cell (modulo the kept period) whose values take the momenta of the wrapped
        periods as parameters, after the parameters of the original value functions.
        ``k_i`` is the Bloch phase per period ``i``: a hopping to the image ``d`` periods
        away gets the factor ``exp(i k . d)``.

    Raises
    ------
    TypeError
        `builder` is not a Builder with a translational symmetry.
    ValueError
        `keep` is not the index of a period, or `coordinate_names` names too few directions.

    Warns
    -----
    RuntimeWarning
        The Builder declares a time-reversal or particle-hole symmetry: it is dropped, since
        it maps ``k`` to ``-k`` and does not hold at a given ``k`` (a conservation law and a
        chiral symmetry are kept).
    """
    if not isinstance(builder, Builder):
        raise TypeError(f"wraparound needs a Builder, got {type(builder).__name__}")
    symmetry = builder.symmetry
    if not isinstance(symmetry, TranslationalSymmetry):
        raise TypeError(
            "wraparound needs a Builder with a TranslationalSymmetry, got one with "
            f"{type(symmetry).__name__}"
        )
    periods = np.asarray(symmetry.periods)
    count = len(periods)
    if len(coordinate_names) < count:
        raise ValueError(
            f"coordinate_names must name all {count} symmetry directions, got "
            f"{list(coordinate_names)!r}"
        )
    names = [f"k_{coordinate_names[i]}" for i in range(count)]
    if keep is None:
        result = _WrappedBuilder()
        wrapped = symmetry
    else:
        keep = _checks.index(keep, count, "keep (the period to keep)")
        result = _WrappedBuilder(TranslationalSymmetry(periods[keep]))
        others = [periods[i] for i in range(count) if i != keep]
        wrapped = TranslationalSymmetry(*others)
        del names[keep]
    momenta = tuple(names)
    result._momentum_names = momenta
    result._wrapped_symmetry = symmetry

    result.conservation_law = _with_momenta(builder.conservation_law, momenta)
    result.chiral = _with_momenta(builder.chiral, momenta)
    if builder.time_reversal is not None or builder.particle_hole is not None:
        warnings.warn(
            "the Builder's time-reversal and particle-hole symmetries are dropped by "
            "wraparound: they relate k to -k and do not hold at a given momentum",
            RuntimeWarning,
            stacklevel=2,
        )
    result.time_reversal = None
    result.particle_hole = None

    kept = result.symmetry
    to_fd: Callable[..., Any] = (
        kept.to_fd if kept is not None else (lambda *s: s[0] if len(s) == 1 else s)
    )
    sites: dict[Any, list[_Term]] = {}
    for site, value in builder.site_value_pairs():
        sites[to_fd(site)] = [_Term(value)]
    hoppings: dict[tuple[Any, Any], list[_Term]] = {}
    for (a, b), value in builder.hopping_value_pairs():
        shift = np.asarray(symmetry.which(b), dtype=int)
        if keep is not None:
            shift = np.delete(shift, keep)
        # b's image in the unit cell of the wrapped periods, then the pair moved into the
        # fundamental domain of the kept period.
        a_cell, b_cell = to_fd(a, wrapped.act(-shift, b))
        element = tuple(int(x) for x in shift)
        if a_cell == b_cell:
            sites[a_cell].append(_Term(value, element, onsite=True))
            continue
        reverse_key = to_fd(b_cell, a_cell)
        if reverse_key in hoppings:
            hoppings[reverse_key].append(_Term(value, element, reverse=True))
        else:
            hoppings.setdefault((a_cell, b_cell), []).append(_Term(value, element))

    # Terms with the same content share one value function (the System groups sites and
    # hoppings by value function).
    cache: dict[Any, Callable[..., Any]] = {}

    def value_of(terms: list[_Term], n_sites: int) -> Any:
        (first,) = terms[:1]
        plain = first.shift is None or not any(first.shift)
        if len(terms) == 1 and not callable(first.value) and not first.onsite and plain:
            return _dagger(first.value) if first.reverse else first.value
        key = (n_sites, tuple((id(t.value), t.shift, t.onsite, t.reverse) for t in terms))
        if key not in cache:
            cache[key] = _combined(terms, n_sites, momenta, wrapped)
        return cache[key]

    for site, terms in sites.items():
        result[site] = value_of(terms, 1)
    for hopping, terms in hoppings.items():
        result[hopping] = value_of(terms, 2)
    return result


def _wrapped_info(syst: Any) -> tuple[tuple[str, ...], TranslationalSymmetry]:
    from .system import System

    try:
        info = _WRAPPED.get(syst)
    except TypeError:
        info = None
    if info is None:
        raise TypeError(
            "plot_2d_bands needs a system finalized from wraparound(builder), got "
            f"{type(syst).__name__}"
        )
    if not isinstance(syst, System) or len(info[0]) != len(info[1].periods):
        raise TypeError(
            "plot_2d_bands needs every period wrapped: call wraparound(builder) without keep="
        )
    return info


def _brillouin_zone(reciprocal: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vertices of the first Brillouin zone (Wigner-Seitz cell of `reciprocal`), in order."""
    import scipy.spatial

    points = np.array(
        [
            i * reciprocal[0] + j * reciprocal[1]
            for i, j in itertools.product(range(-2, 3), repeat=2)
        ]
    )
    voronoi = scipy.spatial.Voronoi(points)
    origin = int(np.argmin(np.linalg.norm(points, axis=1)))
    region = voronoi.regions[voronoi.point_region[origin]]
    vertices = voronoi.vertices[region]
    angles = np.arctan2(vertices[:, 1], vertices[:, 0])
    return np.asarray(vertices[np.argsort(angles)])


def _momentum_axis(value: Any, low: float, high: float, name: str) -> NDArray[np.float64]:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number of points or a sequence of momenta")
    if isinstance(value, (int, np.integer)):
        count = _checks.positive_int(value, name, minimum=2)
        return np.linspace(low, high, count)
    axis = _checks.real_array(value, name)
    if axis.ndim != 1 or axis.size < 2:
        raise ValueError(f"{name} must be a 1-D sequence of at least two momenta")
    return axis


def plot_2d_bands(
    syst: Any,
    k_x: int | ArrayLike = 31,
    k_y: int | ArrayLike = 31,
    params: dict[str, Any] | None = None,
    mask_brillouin_zone: bool = False,
    extend_bbox: float = 0,
    file: Any = None,
    show: bool = True,
    dpi: float | None = None,
    fig_size: tuple[float, float] | None = None,
    ax: Any = None,
) -> Any:
    """Bands of a fully wrapped two-dimensional system over the Brillouin zone.

    The momenta are Cartesian (inverse length): ``K = (k_x, k_y)`` enters the wrapped
    system as the Bloch phases ``K . a_i`` of its periods ``a_i``, so non-orthogonal
    periods (graphene) give an undistorted Brillouin zone.

    Parameters
    ----------
    syst : System
        Finalized from ``wraparound(builder)`` (every period wrapped) of a Builder with two
        periods in two dimensions.
    k_x, k_y : int or 1-D array_like, optional
        Number of points across the bounding box of the Brillouin zone (default 31), or
        the Cartesian momenta themselves.
    params : dict, optional
        The other parameters of the system (not the momenta).
    mask_brillouin_zone : bool, optional
        Draw only the points inside the first Brillouin zone.
    extend_bbox : float, optional
        Enlarge the bounding box by this fraction of its size on every side.
    file, show, dpi, fig_size, ax
        As in :func:`mesoscopic.plotter.spectrum`.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, or None when drawn into a given `ax`.

    Raises
    ------
    TypeError
        `syst` was not made by :func:`wraparound`, or a period was kept.
    ValueError
        The symmetry does not have two periods in two dimensions.
    """
    from . import plotter

    momenta, symmetry = _wrapped_info(syst)
    periods = np.asarray(symmetry.periods, dtype=float)
    if periods.shape != (2, 2):
        raise ValueError(
            "plot_2d_bands needs two periods in two dimensions; this system's symmetry has "
            f"{periods.shape[0]} period(s) in {periods.shape[1]} dimension(s)"
        )
    extend = float(_checks.positive(extend_bbox, "extend_bbox", allow_zero=True))
    reciprocal = 2 * np.pi * np.linalg.inv(periods).T
    zone = _brillouin_zone(reciprocal)
    low, high = zone.min(axis=0), zone.max(axis=0)
    margin = extend * (high - low)
    low, high = low - margin, high + margin
    xs = _momentum_axis(k_x, low[0], high[0], "k_x")
    ys = _momentum_axis(k_y, low[1], high[1], "k_y")
    fixed = dict(params or {})

    def hamiltonian(k_x: float, k_y: float, **others: Any) -> Any:
        phases = periods @ np.array([k_x, k_y])
        values = {**others, **dict(zip(momenta, phases))}
        return syst.hamiltonian_submatrix(params=values, sparse=False)

    mask = None
    if mask_brillouin_zone:
        from matplotlib.path import Path

        outline = Path(zone)

        def mask(k_x: float, k_y: float, **_: Any) -> bool:
            return not outline.contains_point((k_x, k_y), radius=1e-9)

    return plotter.spectrum(
        hamiltonian,
        ("k_x", xs),
        ("k_y", ys),
        params=fixed,
        mask=mask,
        file=file,
        show=show,
        dpi=dpi,
        fig_size=fig_size,
        ax=ax,
    )
