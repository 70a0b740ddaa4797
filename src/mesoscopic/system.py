"""Finalized, immutable tight-binding systems: a scattering region and its leads.

``Builder.finalized()`` produces a :class:`System` (the scattering region with
leads attached) or, for a Builder with a translational symmetry, an
:class:`InfiniteSystem` (a lead). Both evaluate their Hamiltonian for a set of
named parameters.

Magnetic field
--------------
``finalized(magnetic_flux="phi")`` multiplies every hopping ``<a|H|b>`` by the
Peierls factor ``exp(-2j*pi*phi * integral_b^a A.dl)`` of a uniform field along
+z, for particles of charge -e (electrons), with ``A`` normalized to unit curl:
``phi`` is the flux through a unit area of the xy-plane in units of the flux
quantum h/e. In the scattering region the gauge is the Landau gauge
``A = (-y, 0)``; each lead with direction ``u`` uses ``A_u = (u x r).z * u``...
precisely ``A_u = (s x - c y) (c, s)`` for ``u = (c, s)``, which is
translation invariant along the lead. The two are joined by the exact gauge
transformation ``A_u = A + grad chi_u`` applied to the lead's interface sites,
so any number of leads in any directions (a Hall bar) is handled consistently.

Value functions
---------------
A value function must be a pure function of its site(s) and its parameters, as Kwant
requires: the same arguments give the same value. Each group of terms that share a value
function remembers the values of its last evaluation together with the parameter values
the function took, and reuses them while those are unchanged (a disorder loop in a fixed
field evaluates the hoppings once). Parameters compare by value when they are numbers,
strings, tuples of these or NumPy arrays (copied, so an array changed in place is seen),
and other objects by identity; a random generator, an iterator or a mutable container
(list, dict) as a parameter, or a function that takes no parameter, turns the reuse off
for that group. A function that reads a global which changes between calls, or draws
random numbers from a generator that is not a parameter, is not pure: pass that value
as a parameter instead.

A function written for one site is called once for a whole group of terms, with
``site.tag`` and ``site.pos`` as ``(d, n)`` arrays over its ``n`` sites, when its code is
arithmetic on coordinates and parameters (NumPy functions, numbers, arrays, helper
functions of the same kind) and a sample of ordinary calls agrees with the array call to
1e-12; functions that read random generators, counters, ``site.family`` or methods of
parameter objects, or that branch on a coordinate, are called site by site as always
(see :mod:`mesoscopic._autovec`; ``MESOSCOPIC_VECTORIZE=0`` turns this off).

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.chain(norbs=1)
>>> syst = meso.Builder()
>>> syst[(lat(i) for i in range(3))] = 0.0
>>> syst[lat.neighbors()] = -1.0
>>> fsys = syst.finalized()
>>> fsys.hamiltonian_submatrix().real.tolist()
[[0.0, -1.0, 0.0], [-1.0, 0.0, -1.0], [0.0, -1.0, 0.0]]
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import os
import pickle
import random
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from . import _autovec, _checks
from ._bulk import LazySites, SiteSource
from ._params import PositionalArgs as _PositionalArgs
from ._params import legacy_params
from .lattice import Site, _described

__all__ = [
    "Graph",
    "InfiniteSystem",
    "LeadList",
    "LeadWithoutModesError",
    "MissingParameterError",
    "ModesLead",
    "SelfEnergyLead",
    "System",
    "TermGroup",
    "UnusedParameterWarning",
    "UserCodeError",
]


class UserCodeError(Exception):
    """A value function raised an exception while the Hamiltonian was evaluated.

    The message names the function (qualified name, file and line), the site or
    hopping it was evaluating (tags and positions) and the parameters it received.
    The original exception is chained as ``__cause__``, so its traceback is printed
    above this one. Value functions that come with the package (``models``) are not
    user code: their errors, such as a refused parameter value, propagate unchanged.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = lambda site, v: 1 / v
    >>> try:
    ...     syst.finalized().hamiltonian_submatrix(params={"v": 0})
    ... except meso.system.UserCodeError as exc:
    ...     print(type(exc.__cause__).__name__)
    ZeroDivisionError
    """


class UnusedParameterWarning(UserWarning):
    """``params`` holds a name that no value function of the system takes.

    Raised by :meth:`System.hamiltonian_submatrix` (so by every solver) when a
    parameter is neither taken by a value function of the scattering region or of
    a lead nor the magnetic-flux parameter: usually a misspelt name, whose
    intended parameter then silently keeps its default or is reported missing.
    Value functions with ``**kwargs`` take every name, and then nothing is
    reported. Like every warning it is shown once per distinct message and line;
    silence it with ``warnings.simplefilter("ignore", UnusedParameterWarning)``.

    Examples
    --------
    >>> import warnings
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = lambda site, gate: gate
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = syst.finalized().hamiltonian_submatrix(params={"gate": 0.0, "gaet": 1.0})
    >>> caught[0].category.__name__
    'UnusedParameterWarning'
    """


def _digest_object(obj: Any, digest: Any, depth: int = 0) -> None:
    """Feed a stable description of a value (number, array, function) into a hash.

    Functions contribute their byte code, constants, defaults and closure contents (so two
    closures of the same function over different arrays differ); other objects their
    pickled state where possible, else their type. Memory addresses never enter.
    """
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        digest.update(repr(obj).encode())
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc":
        digest.update(repr((obj.shape, obj.dtype.str)).encode())
        digest.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (list, tuple)) and depth < 6:
        digest.update(f"{type(obj).__name__}{len(obj)}".encode())
        for item in obj:
            _digest_object(item, digest, depth + 1)
    elif hasattr(obj, "__code__") and depth < 6:
        code = obj.__code__
        digest.update(code.co_code)
        for const in code.co_consts:
            _digest_object(
                const.co_code if hasattr(const, "co_code") else const, digest, depth + 1
            )
        digest.update(repr(code.co_names).encode())
        _digest_object(getattr(obj, "__defaults__", None), digest, depth + 1)
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                contents = None
            _digest_object(contents, digest, depth + 1)
    else:
        try:
            digest.update(pickle.dumps(obj, protocol=4))
        except Exception:
            digest.update(f"{type(obj).__module__}.{type(obj).__qualname__}".encode())


def _digest_groups(groups: Sequence[Any], digest: Any) -> None:
    for group in groups:
        digest.update(np.ascontiguousarray(group.rows).tobytes())
        digest.update(np.ascontiguousarray(group.cols).tobytes())
        digest.update(repr((group.shape, group.conj)).encode())
        _digest_object(group.value, digest)


# --------------------------------------------------------------------------------------
# Value functions
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _signature_info(
    func: Callable[..., Any], n_sites: int
) -> tuple[tuple[str, ...], frozenset[str], bool]:
    """Parameter names a value function takes after its site arguments.

    Returns (names, names_with_defaults, takes_all_params).
    """
    target = func
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return (), frozenset(), True
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < n_sites and not any(
        p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()
    ):
        what = (
            "an onsite function takes the site"
            if n_sites == 1
            else "a hopping function takes two sites"
        )
        raise TypeError(
            f"value function {_function_name(func)!r} takes {len(positional)} "
            "positional "
            f"arguments, but {what} first, then parameters by name"
        )
    names = []
    defaults = set()
    takes_all = False
    for p in list(sig.parameters.values())[n_sites:]:
        if p.kind == p.VAR_KEYWORD:
            takes_all = True
        elif p.kind == p.VAR_POSITIONAL:
            continue
        else:
            names.append(p.name)
            if p.default is not p.empty:
                defaults.add(p.name)
    return tuple(names), frozenset(defaults), takes_all


class MissingParameterError(ValueError, TypeError):
    """A value function needs a parameter that was not given.

    Both a ValueError and, as in Kwant (where the call fails), a TypeError.
    """


class LeadWithoutModesError(ValueError, NotImplementedError):
    """A computation needs modes (or the self-energy) that a lead does not have.

    Raised for a lead known only by its self-energy (``precalculate(what='selfenergy')``,
    or a lead object with only Kwant's ``selfenergy`` method) where modes are needed: the
    S-matrix elements into or out of it, its scattering states, the LDOS; and for a lead
    holding only its modes (``precalculate(what='modes')``) where its self-energy is
    needed. Both a ValueError and, as Kwant's ``ldos`` raises for self-energy leads, a
    NotImplementedError.
    """


def _check_lead_use(syst: Any, leads: Any, need: str, what: str) -> None:
    """Raise :class:`LeadWithoutModesError` if a lead of `syst` among `leads` (indices;
    None: all) lacks what `what` (a phrase: "the scattering matrix") needs.

    Parameters
    ----------
    syst : System
    leads : sequence of int or None
        The leads the computation uses; indices out of range are left to the caller.
    need : {'modes', 'selfenergy'}
    what : str
        The computation, for the message.
    """
    count = len(syst.leads)
    chosen = range(count) if leads is None else leads
    for k in chosen:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < count:
            continue
        lead = syst.leads[k]
        if need == "modes" and not getattr(lead, "has_modes", True):
            raise LeadWithoutModesError(
                f"lead {int(k)} is known only by its self-energy (no modes), so {what} is "
                "not defined for it; leave it out of the in/out leads, or give the lead its "
                "modes (precalculate with what='all')"
            )
        if need == "selfenergy" and not getattr(lead, "has_selfenergy", True):
            raise LeadWithoutModesError(
                f"lead {int(k)} holds only its modes (precalculated with what='modes'), not "
                f"its self-energy, which {what} needs; precalculate with what='all'"
            )


def _legacy_params(args: Any, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The parameters of a call that may use Kwant's deprecated positional ``args``.

    ``args`` given as a dict is taken as ``params`` (a positional ``params``); a
    non-empty sequence is Kwant's ``args``: accepted with a DeprecationWarning, as in
    Kwant 1.5, and passed to value functions by position after the sites. Giving both
    ``args`` and ``params`` is a TypeError, as in Kwant.
    """
    return legacy_params(args, params)


def _value_kwargs(
    func: Callable[..., Any], n_sites: int, params: Mapping[str, Any], what: str
) -> dict[str, Any]:
    """The parameters a value function takes, by name, from `params`.

    A parameter the function needs (no default) that `params` lacks is a
    :class:`MissingParameterError`.
    """
    names, defaults, takes_all = _signature_info(func, n_sites)
    missing = [n for n in names if n not in params and n not in defaults]
    if missing:
        given = sorted(params) if params else "none"
        raise MissingParameterError(
            f"missing parameter {missing[0]!r} needed by the {what} function "
            f"{_function_name(func)!r}; parameters given: {given}. "
            "Pass it at solve time, e.g. params={" + repr(missing[0]) + ": ...}"
        )
    return dict(params) if takes_all else {n: params[n] for n in names if n in params}


def _call_value(
    func: Callable[..., Any],
    sites: tuple[Any, ...],
    params: Mapping[str, Any],
    what: str,
    where: Callable[[], str] | None = None,
) -> Any:
    """Call a value function with the sites and the parameters it takes.

    `where` describes the site or hopping for an error message; an exception the
    function raises comes back as :class:`UserCodeError` naming it.
    """
    if isinstance(params, _PositionalArgs):
        return _call_positional(func, sites, params.args, what, where)
    kwargs = _value_kwargs(func, len(sites), params, what)
    try:
        return func(*sites, **kwargs)
    except Exception as exc:
        if isinstance(exc, UserCodeError) or _is_package_function(func):
            raise
        place = where() if where is not None else f"the {what} value"
        shown = ", ".join(f"{k}={_checks._show(v)}" for k, v in kwargs.items()) or "none"
        short = getattr(_unwrapped(func), "__name__", None) or _function_name(func)
        raise UserCodeError(
            f'Error occurred in user-supplied value function "{short}": the {what} value '
            f"function {_function_name(func)}{_function_location(func)} "
            f"raised {type(exc).__name__}: {exc}\n"
            f"  while evaluating {place}\n"
            f"  with parameters: {shown}\n"
            "(the traceback of the original error is shown above)"
        ) from exc


def _call_positional(
    func: Callable[..., Any],
    sites: tuple[Any, ...],
    args: tuple[Any, ...],
    what: str,
    where: Callable[[], str] | None,
) -> Any:
    """Call a value function as Kwant's deprecated ``args=`` does: ``func(*sites, *args)``."""
    try:
        return func(*sites, *args)
    except Exception as exc:
        if isinstance(exc, UserCodeError) or _is_package_function(func):
            raise
        place = where() if where is not None else f"the {what} value"
        short = getattr(_unwrapped(func), "__name__", None) or _function_name(func)
        raise UserCodeError(
            f'Error occurred in user-supplied value function "{short}": the {what} value '
            f"function {_function_name(func)}{_function_location(func)} "
            f"raised {type(exc).__name__}: {exc}\n"
            f"  while evaluating {place}\n"
            f"  with positional args: {_checks._show(args)}\n"
            "(the traceback of the original error is shown above)"
        ) from exc


def _unwrapped(func: Any) -> Any:
    """The user's function inside wrappers (``Builder.substituted``, partial, decorators)."""
    for _ in range(16):
        inner: Any
        if isinstance(func, functools.partial):
            inner = func.func
        else:
            inner = getattr(func, "__wrapped__", None)
            if inner is None and type(func).__module__.startswith("mesoscopic."):
                inner = getattr(func, "function", None)
        if inner is None or not callable(inner):
            break
        func = inner
    return func


def _function_name(func: Any) -> str:
    """Qualified name of a value function, with its module unless it is a script's."""
    target = _unwrapped(func)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if name is None:
        return _checks._show(target)
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module and module not in ("__main__", "builtins") else name


def _function_location(func: Any) -> str:
    code = getattr(_unwrapped(func), "__code__", None)
    return f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_package_function(func: Any) -> bool:
    """Whether a value function is defined inside this package (a model's), not user code."""
    target = _unwrapped(func)
    code = getattr(target, "__code__", None)
    if code is not None:
        return os.path.abspath(code.co_filename).startswith(_PACKAGE_DIR)
    module = getattr(target, "__module__", None) or ""
    return module == "mesoscopic" or module.startswith("mesoscopic.")


def _site_text(site: Any) -> str:
    try:
        pos = tuple(float(x) for x in np.ravel(site.pos))
    except NotImplementedError:  # a family without positions (Kwant allows them)
        return _described(site)
    return f"{_described(site)} at position {pos}"


def _function_parameters(func: Callable[..., Any], n_sites: int) -> set[str]:
    names, _, _ = _signature_info(func, n_sites)
    return set(names)


# --------------------------------------------------------------------------------------
# Peierls phases
# --------------------------------------------------------------------------------------


def _landau_line_integral(ra: NDArray[np.float64], rb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Integral of A = (-y, 0) along the straight line from rb to ra (unit curl)."""
    return -0.5 * (ra[..., 1] + rb[..., 1]) * (ra[..., 0] - rb[..., 0])


def _lead_line_integral(
    ra: NDArray[np.float64], rb: NDArray[np.float64], direction: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Integral of A_u = (s x - c y)(c, s) from rb to ra; A_u is invariant along u = (c, s)."""
    c, s = direction
    mid = 0.5 * (ra + rb)
    d = ra - rb
    return (s * mid[..., 0] - c * mid[..., 1]) * (c * d[..., 0] + s * d[..., 1])


def _gauge_function(r: NDArray[np.float64], direction: NDArray[np.float64]) -> NDArray[np.float64]:
    """chi_u with A_u = A_landau + grad chi_u."""
    c, s = direction
    x, y = r[..., 0], r[..., 1]
    return s * c * (x * x - y * y) / 2 + s * s * x * y


def _lead_direction(period: NDArray[np.float64]) -> NDArray[np.float64]:
    if period.size < 2:
        raise ValueError("a magnetic field needs a system in at least two dimensions")
    if period.size > 2 and abs(period[2]) > 1e-12 * np.linalg.norm(period):
        raise ValueError(
            f"leads along z (period {period.tolist()}) are not supported with a field along z"
        )
    u = period[:2] / np.linalg.norm(period[:2])
    return u


# --------------------------------------------------------------------------------------
# Shared assembly
# --------------------------------------------------------------------------------------


class _Uncacheable(Exception):
    """A parameter value that cannot be compared safely with a later one."""


# Parameters whose state changes when a value function uses them: never compared.
_STATEFUL_TYPES = (
    np.random.Generator,
    np.random.RandomState,
    np.random.BitGenerator,
    random.Random,
)


class _Same:
    """A parameter compared by identity (holding it, so that its id is not reused)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    __hash__ = None  # type: ignore[assignment]


def _parameter_token(value: Any, depth: int = 0) -> Any:
    """A token equal to another value's token only if a pure function cannot tell them apart.

    Numbers compare by their exact bits (``0.0`` and ``-0.0`` differ) and type; strings,
    bytes and None by value; tuples item by item; NumPy arrays by dtype, shape and a copy of
    their bytes (an array modified in place differs); other hashable objects by identity.
    Random generators, iterators, unhashable objects (lists, dicts, sets) and arrays of
    Python objects raise :class:`_Uncacheable`.
    """
    kind = type(value)
    if value is None or kind in (bool, int, str, bytes):
        return (kind, value)
    if kind is float:
        return (kind, value.hex())
    if kind is complex:
        return (kind, value.real.hex(), value.imag.hex())
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return (kind, value.dtype.str, value.tobytes())
    if kind is np.ndarray:
        if value.dtype.hasobject:
            raise _Uncacheable
        return (kind, value.dtype.str, value.shape, value.tobytes())
    if kind is tuple and depth < 8:
        return (kind, tuple(_parameter_token(item, depth + 1) for item in value))
    if isinstance(value, (_STATEFUL_TYPES, np.ndarray)) or hasattr(value, "__next__"):
        raise _Uncacheable
    try:
        hash(value)
    except TypeError:
        raise _Uncacheable from None
    return _Same(value)


def _frozen_indices(values: Any, what: str) -> NDArray[np.int64]:
    """`values` as a read-only 1-d int64 array (a copy where needed)."""
    array = np.array(values, dtype=np.int64, copy=True)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array of site indices, got shape {array.shape}")
    array.flags.writeable = False
    return array


def _site_positions(sites: Sequence[Any]) -> NDArray[np.float64]:
    """Positions of `sites`, shape (n, dim); (n, 0) when a site's family has none.

    `dim` is the largest dimension of the sites' families; a site of a lower-dimensional
    family has its position in the first coordinates and zeros after (``site.pos`` keeps
    its own dimension).

    Kwant allows site families without positions (e.g. tags that are not lattice
    coordinates); such a system works except where geometry is needed (a magnetic
    field, plots), which then says so.
    """
    try:
        positions = [np.ravel(np.asarray(s.pos, dtype=float)) for s in sites]
    except NotImplementedError:
        return np.zeros((len(sites), 0))
    dim = max((len(p) for p in positions), default=0)
    out = np.zeros((len(positions), dim))
    for k, p in enumerate(positions):
        # Families of a lower dimension (a chain beside a square lattice, as Kwant allows)
        # sit in the first coordinates of the common space, the others zero.
        out[k, : len(p)] = p
    return out


def _frozen(array: Any, dtype: Any) -> NDArray[Any]:
    """A read-only copy of `array` as `dtype`."""
    out = np.array(array, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


class TermGroup:
    """Hamiltonian terms that share one value (a constant or a value function) and one block shape.

    The unit in which a builder hands a Hamiltonian to :class:`System` and
    :class:`InfiniteSystem`: the terms are evaluated together, with one call of a
    vectorized value function or one call per term otherwise. Immutable: the index
    arrays are read-only and attributes cannot be assigned.

    Parameters
    ----------
    rows, cols : array_like of int, shape (n,)
        Site indices: term ``k`` is the block ``<rows[k]|H|cols[k]>`` (``rows == cols``
        for onsite terms).
    value : number, matrix or callable
        The value of every term: a constant, or a value function taking the site(s)
        and then parameters by name.
    shape : (int, int)
        Block shape, the orbitals of the ``rows`` and of the ``cols`` sites.
    sites : sequence
        What a value function receives: one Site (onsite) or ``(Site, Site)`` pair
        (hopping) per term, or, for a vectorized group, a tuple of one
        :class:`~mesoscopic.lattice.SiteArray` per site argument.
    onsite : bool
        Onsite terms (True) or hoppings (False).
    vectorized : bool
        The value function is called once, with SiteArrays.
    conj : bool
        The terms enter as their conjugate transpose at ``(cols, rows)`` (a lead's
        hopping to the previous cell, stored as part of the hopping to the next).

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> group = TermGroup([1], [0], -1.0, (1, 1), [(lat(1), lat(0))], onsite=False)
    >>> group.rows.flags.writeable, len(group)
    (False, 1)
    """

    __slots__ = (
        "_column_memo",
        "_memo",
        "_site_table",
        "cols",
        "conj",
        "onsite",
        "rows",
        "shape",
        "sites",
        "value",
        "vectorized",
    )

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    value: Any
    shape: tuple[int, int]
    sites: Any
    onsite: bool
    vectorized: bool
    conj: bool
    _memo: tuple[Any, NDArray[np.complex128]] | None
    _column_memo: tuple[Any] | None
    _site_table: Callable[[], Any] | None

    def __init__(
        self,
        rows: ArrayLike,
        cols: ArrayLike,
        value: Any,
        shape: tuple[int, int],
        sites: Any,
        *,
        onsite: bool,
        vectorized: bool = False,
        conj: bool = False,
    ) -> None:
        set_ = object.__setattr__
        rows_array = _frozen_indices(rows, "rows")
        cols_array = _frozen_indices(cols, "cols")
        if rows_array.shape != cols_array.shape:
            raise ValueError(
                f"rows and cols of a term group differ in length ({len(rows_array)} vs "
                f"{len(cols_array)})"
            )
        if (
            len(shape) != 2
            or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in shape)
            or min(shape) < 1
        ):
            raise ValueError(f"shape must be two positive orbital counts, got {shape!r}")
        if not isinstance(sites, LazySites):
            sites = tuple(sites)
        if not _site_arrays(sites) and len(sites) != len(rows_array):
            raise ValueError(
                f"a term group of {len(rows_array)} terms got {len(sites)} sites; give one "
                "Site or (Site, Site) pair per term, or one SiteArray per site argument"
            )
        if vectorized and not _site_arrays(sites):
            raise ValueError("a vectorized term group needs one SiteArray per site argument")
        set_(self, "rows", rows_array)
        set_(self, "cols", cols_array)
        set_(self, "value", value)
        set_(self, "shape", (int(shape[0]), int(shape[1])))
        set_(self, "sites", sites)
        set_(self, "onsite", bool(onsite))
        set_(self, "vectorized", bool(vectorized))
        set_(self, "conj", bool(conj))
        # (parameter token, blocks) of the last evaluation; not pickled (see blocks()).
        set_(self, "_memo", None)
        # (the sites as columns or None,) once made (see _columns); not pickled.
        set_(self, "_column_memo", None)
        # The owning System's table of tags and positions by site index (see _columns).
        set_(self, "_site_table", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a TermGroup is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a TermGroup is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _restore_term_group,
            (
                self.rows,
                self.cols,
                self.value,
                self.shape,
                self.sites,
                self.onsite,
                self.vectorized,
                self.conj,
            ),
        )

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        kind = "onsite" if self.onsite else "hopping"
        return f"<TermGroup of {len(self)} {kind} terms, blocks {self.shape}>"

    @classmethod
    def collect(
        cls,
        items: Sequence[Any],
        values: Sequence[Any],
        rows: ArrayLike,
        cols: ArrayLike,
        norbs: ArrayLike,
        *,
        onsite: bool,
        vectorize: bool = False,
        conj: bool = False,
    ) -> tuple[TermGroup, ...]:
        """Group terms by (value, block shape[, families]) for evaluation in bulk.

        Parameters
        ----------
        items : sequence
            The Site (onsite) or ``(Site, Site)`` pair (hopping) of each term.
        values : sequence
            The value of each term.
        rows, cols : array_like of int, shape (n,)
            Site indices of each term.
        norbs : array_like of int, shape (n_sites,)
            Orbitals of every site the indices refer to.
        onsite, conj
            As for :class:`TermGroup`.
        vectorize : bool
            Call each value function once per group with SiteArrays (per site family).

        Returns
        -------
        tuple of TermGroup
        """
        from .lattice import SiteArray

        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        norbs = np.asarray(norbs, dtype=np.int64)
        keyed: dict[tuple[Any, ...], list[int]] = {}
        for k, value in enumerate(values):
            shape = (int(norbs[rows[k]]), int(norbs[cols[k]]))
            if callable(value):
                key: tuple[Any, ...] = ("f", getattr(value, "_term_key", id(value)), shape)
                if vectorize:
                    fams = (items[k],) if onsite else items[k]
                    key += tuple(id(s.family) for s in fams)
            else:
                arr = np.asarray(value)
                key = ("c", arr.tobytes(), arr.dtype.str, arr.shape, shape)
            keyed.setdefault(key, []).append(k)
        groups = []
        for ks in keyed.values():
            idx = np.array(ks, dtype=np.int64)
            value = values[ks[0]]
            shape = (int(norbs[rows[ks[0]]]), int(norbs[cols[ks[0]]]))
            sites: Any
            if callable(value) and vectorize:
                if onsite:
                    fam = items[ks[0]].family
                    sites = (SiteArray(fam, [items[k].tag for k in ks]),)
                else:
                    fa, fb = items[ks[0]][0].family, items[ks[0]][1].family
                    sites = (
                        SiteArray(fa, [items[k][0].tag for k in ks]),
                        SiteArray(fb, [items[k][1].tag for k in ks]),
                    )
            else:
                sites = [items[k] for k in ks]
            groups.append(
                cls(
                    rows[idx],
                    cols[idx],
                    value,
                    shape,
                    sites,
                    onsite=onsite,
                    vectorized=bool(callable(value) and vectorize),
                    conj=conj,
                )
            )
        return tuple(groups)

    def _subset(self, keep: NDArray[np.bool_]) -> TermGroup:
        """The group's terms where `keep` is true."""
        from .lattice import SiteArray

        idx = np.flatnonzero(keep)
        sites: Any
        if _site_arrays(self.sites):
            sites = tuple(SiteArray(sa.family, np.asarray(sa.tags)[idx]) for sa in self.sites)
        else:
            sites = [self.sites[int(k)] for k in idx]
        return TermGroup(
            self.rows[idx],
            self.cols[idx],
            self.value,
            self.shape,
            sites,
            onsite=self.onsite,
            vectorized=self.vectorized,
            conj=self.conj,
        )

    def describe(self, k: int, *, with_function: bool = True) -> str:
        """The term(s) for a message: site or hopping with positions, and the function."""
        kind = "onsite" if self.onsite else "hopping"
        if _site_arrays(self.sites):
            fam = self.sites[0].family.name
            n = len(self.rows)
            tags = np.asarray(self.sites[0].tags)[:3].tolist()
            more = ", ..." if n > 3 else ""
            if self.onsite:
                text = (
                    f"the {kind} values of {n} site(s) of family {fam!r} (tags "
                    f"{str(tags)[:-1]}{more}])"
                )
            else:
                fam_b = self.sites[1].family.name
                text = (
                    f"the {kind} values of {n} hopping(s) from family {fam_b!r} to family "
                    f"{fam!r} (tags of the sites hopped to {str(tags)[:-1]}{more}])"
                )
        else:
            item = self.sites[k]
            if self.onsite:
                text = f"the {kind} value of {_site_text(item)}"
            else:
                a, b = item
                text = f"the {kind} value of ({_site_text(a)}, {_site_text(b)})"
        if with_function and callable(self.value):
            text += (
                f" from the function {_function_name(self.value)}{_function_location(self.value)}"
            )
        return text

    def blocks(self, params: Mapping[str, Any]) -> NDArray[np.complex128]:
        """Evaluate the value for every term: array of shape ``(n, *shape)``, read-only.

        The blocks of the last evaluation are reused while the parameters the value
        function takes are unchanged (see the module's notes on value functions): only
        for a function that takes at least one parameter, and only for parameters that
        compare safely.
        """
        if not callable(self.value):
            block = _as_block(self.value, self.shape, self.describe, 0)
            return np.broadcast_to(block, (len(self.rows), *self.shape))
        token = self._parameter_token(params)
        memo = self._memo
        if token is not None and memo is not None and memo[0] == token:
            return memo[1]
        out = self._evaluate(params)
        if self.vectorized:
            out = np.array(out)  # it may be (a view of) the value function's own array
        out.flags.writeable = False
        object.__setattr__(self, "_memo", None if token is None else (token, out))
        return out

    def _parameter_token(self, params: Mapping[str, Any]) -> Any:
        """What identifies the parameters the value function takes; None: do not reuse."""
        if isinstance(params, _PositionalArgs):
            return None
        names, defaults, takes_all = _signature_info(self.value, 1 if self.onsite else 2)
        if takes_all:
            names = tuple(params)
        elif any(n not in params and n not in defaults for n in names):
            return None  # evaluation says which parameter is missing
        try:
            token = tuple((n, _parameter_token(params[n])) for n in names if n in params)
        except _Uncacheable:
            return None
        return token or None

    def _evaluate(self, params: Mapping[str, Any]) -> NDArray[np.complex128]:
        """The blocks of a value function's terms, evaluated now."""
        n = len(self.rows)
        what = "onsite" if self.onsite else "hopping"
        if self.vectorized:
            raw = _call_value(
                self.value,
                tuple(self.sites),
                params,
                what,
                lambda: self.describe(0, with_function=False),
            )
            out = _as_complex(raw, self.describe, 0)
            if out.ndim == 0 or out.shape == self.shape:
                return np.broadcast_to(
                    _as_block(out, self.shape, self.describe, 0), (n, *self.shape)
                )
            if out.shape == (n,) and self.shape == (1, 1):
                out = out.reshape(n, 1, 1)
            if out.shape != (n, *self.shape):
                raise ValueError(
                    f"{self.describe(0)} has shape {out.shape}; a vectorized value function "
                    f"returns a scalar, {self.shape}, ({n},) for one orbital, or "
                    f"{(n, *self.shape)}"
                )
            bad = ~np.isfinite(out)
            if np.any(bad):
                first = int(np.argwhere(bad)[0][0])
                raise ValueError(
                    f"{self.describe(0)} contains NaN or inf (first at the site with tag "
                    f"{np.asarray(self.sites[0].tags)[first].tolist()})"
                )
            return out
        if isinstance(params, _PositionalArgs) or not n:
            return self._blocks_term_by_term(params)
        func = self.value
        kwargs = _value_kwargs(func, 1 if self.onsite else 2, params, what)
        columns = self._columns(func, kwargs)
        if columns is not None:
            by_columns = _autovec.evaluate_columns(
                func, columns, kwargs, n, self.shape, lambda k: self._one_block(k, kwargs)
            )
            if by_columns is not None:
                return by_columns
        try:
            if self.onsite and not isinstance(self.sites[0], tuple):
                raw = [func(site, **kwargs) for site in self.sites]
            else:
                raw = [func(*item, **kwargs) for item in self.sites]
        except Exception:
            # Redo term by term, so that the error names the function and the term.
            return self._blocks_term_by_term(params)
        return self._converted(raw)

    def _columns(self, func: Any, kwargs: Mapping[str, Any]) -> Any:
        """The group's sites as columns for one call of `func`, or None (site by site).

        See :mod:`mesoscopic._autovec`; the columns are made once per group.
        """
        if (
            len(self.rows) < _autovec.MIN_TERMS
            or not _autovec.enabled()
            or not _autovec.is_column_safe(func)
            or not _autovec.params_are_safe(kwargs)
        ):
            return None
        cached = self._column_memo
        if cached is None:
            made = self._columns_from_table()
            if made is None:
                made = _autovec.columns_of(self.sites, 1 if self.onsite else 2)
            cached = (made,)
            if len(self.rows) <= _autovec.MAX_KEPT_TERMS or made is None:
                object.__setattr__(self, "_column_memo", cached)
        return cached[0]

    def _columns_from_table(self) -> Any:
        """Columns read off the owning System's tag and position arrays by site index.

        Used where the terms' sites are those of the System at ``rows`` (and ``cols``),
        which a few terms confirm; None otherwise (the sites are read one by one).
        """
        table = self._site_table() if self._site_table is not None else None
        if table is None:
            return None
        tags, positions = table
        indices = (self.rows,) if self.onsite else (self.rows, self.cols)
        count = len(self.rows)
        for k in {0, count // 2, count - 1}:
            item = (self.sites[k],) if self.onsite else tuple(self.sites[k])
            for site, index in zip(item, indices):
                if tuple(site.tag) != tuple(tags[index[k]].tolist()):
                    return None
        return _autovec.ColumnSet([_autovec.make_columns(tags[i], positions[i]) for i in indices])

    def _one_block(self, k: int, kwargs: Mapping[str, Any]) -> NDArray[np.complex128]:
        """Term `k`'s block from a call of the value function with its own sites."""
        item = self.sites[k]
        args = (item,) if self.onsite else tuple(item)
        return _as_block(self.value(*args, **kwargs), self.shape, self.describe, k)

    def _converted(self, raw: list[Any]) -> NDArray[np.complex128]:
        """The values `raw` of a value function, one per term, as blocks ``(n, *shape)``.

        One conversion and one finiteness check for all terms; anything unusual (a
        string or None, mixed or wrong shapes, NaN) is converted term by term, so the
        error names the term.
        """
        n = len(raw)
        kinds = set(map(type, raw))
        if not any(k is type(None) or issubclass(k, (str, bytes)) for k in kinds):
            try:
                out = np.array(raw, dtype=complex)
            except (TypeError, ValueError):
                out = None
            if out is not None and self.shape == (1, 1) and out.shape in ((n,), (n, 1)):
                # Numbers, or one-element vectors (as _as_block accepts).
                out = out.reshape(n, 1, 1)
            if out is not None and out.shape == (n, *self.shape) and np.isfinite(out).all():
                return out
        result = np.empty((n, *self.shape), dtype=complex)
        for k in range(n):
            result[k] = _as_block(raw[k], self.shape, self.describe, k)
        return result

    def _blocks_term_by_term(self, params: Mapping[str, Any]) -> NDArray[np.complex128]:
        """:meth:`blocks` of a value function called one term at a time."""
        n = len(self.rows)
        what = "onsite" if self.onsite else "hopping"
        result = np.empty((n, *self.shape), dtype=complex)
        args = self.sites
        for k in range(n):
            item = args[k]
            value = _call_value(
                self.value,
                item if isinstance(item, tuple) else (item,),
                params,
                what,
                functools.partial(self.describe, k, with_function=False),
            )
            result[k] = _as_block(value, self.shape, self.describe, k)
        return result


def _id_by_site(system: Any) -> Mapping[Site, int]:
    """The index of each site of a System or InfiniteSystem, made once."""
    cached = system._cache.get("id_by_site")
    if cached is None:
        cached = types.MappingProxyType({s: i for i, s in enumerate(system.sites)})
        system._cache["id_by_site"] = cached
    return cached


def _site_arrays(sites: tuple[Any, ...]) -> bool:
    """Whether a term group's sites are SiteArrays (one per site argument)."""
    from .lattice import SiteArray

    return bool(sites) and isinstance(sites[0], SiteArray)


def _restore_term_group(
    rows: Any,
    cols: Any,
    value: Any,
    shape: tuple[int, int],
    sites: Any,
    onsite: bool,
    vectorized: bool,
    conj: bool,
) -> TermGroup:
    return TermGroup(
        rows, cols, value, shape, sites, onsite=onsite, vectorized=vectorized, conj=conj
    )


def _as_complex(
    value: Any, what: str | Callable[[int], str], k: int = 0
) -> NDArray[np.complex128]:
    """`value` as a complex array; a non-numeric value is a TypeError naming `what` (`what(k)`)."""
    error: Exception | None = None
    if value is not None and not isinstance(value, (str, bytes)):
        try:
            return np.asarray(value, dtype=complex)
        except (TypeError, ValueError) as exc:
            error = exc
    name = what if isinstance(what, str) else what(k)
    hint = " (does the value function lack a return statement?)" if value is None else ""
    raise TypeError(
        f"{name} must be a number or a matrix of numbers, got {_checks._show(value)}{hint}"
    ) from error


def _as_block(
    value: Any,
    shape: tuple[int, int],
    what: str | Callable[[int], str],
    k: int = 0,
) -> NDArray[np.complex128]:
    """`value` as a (shape) complex block; `what(k)` (or `what`) names it in errors.

    The description is built only when a check fails, so the per-term loop stays cheap.
    """

    def name() -> str:
        return what if isinstance(what, str) else what(k)

    if isinstance(value, (int, float, complex)) and shape == (1, 1):
        if not np.isfinite(value):
            raise ValueError(f"{name()} is {value!r}; values must be finite (no NaN or inf)")
        return np.full((1, 1), value, dtype=complex)
    block = _as_complex(value, what, k)
    if block.ndim == 1 and block.shape == (1,) and shape == (1, 1):
        # A one-element vector for a one-orbital site (e.g. from ``site.pos[0]``
        # arithmetic on a chain), accepted as Kwant does.
        block = block.reshape(1, 1)
    if block.ndim == 0:
        if shape != (1, 1):
            raise ValueError(
                f"{name()} is a scalar but the sites have {shape[0]} and {shape[1]} "
                "orbitals; give a matrix"
            )
        block = block.reshape(1, 1)
    elif block.shape != shape:
        raise ValueError(
            f"{name()} has shape {block.shape}, expected {shape} from the sites' norbs "
            "(set norbs= on the lattice)"
        )
    if not np.all(np.isfinite(block)):
        raise ValueError(f"{name()} contains NaN or inf: {_checks._show(block.tolist())}")
    return block


class Other:
    """Marks, in :attr:`System.hoppings` (as Kwant's ``builder.Other``), the edge whose
    value is the Hermitian conjugate of the hopping set in the other direction."""


class Graph:
    """A system's graph as Kwant's (``kwant.graph.CGraph``): nodes ``0 .. num_nodes-1``
    are the sites, and each hopping is two directed edges, ``(i, j)`` and ``(j, i)``.

    Edges are numbered by tail, then head: iterating gives ``(tail, head)`` pairs in
    that order, and ``out_edge_ids(i)`` / ``out_neighbors(i)`` are the edges (neighbours)
    of node ``i``. Read-only.

    Parameters
    ----------
    num_nodes : int
    hop_i, hop_j : array_like of int, shape (n_hoppings,)
        Each hopping once (either direction).

    Examples
    --------
    >>> g = Graph(3, [0, 1], [1, 2])
    >>> g.num_nodes, g.num_edges, list(g)
    (3, 4, [(0, 1), (1, 0), (1, 2), (2, 1)])
    >>> g.out_neighbors(1).tolist(), g.first_edge_id(2, 1)
    ([0, 2], 3)
    """

    def __init__(self, num_nodes: int, hop_i: ArrayLike, hop_j: ArrayLike) -> None:
        i = np.asarray(hop_i, dtype=np.int64)
        j = np.asarray(hop_j, dtype=np.int64)
        tails, heads = np.concatenate([i, j]), np.concatenate([j, i])
        order = np.lexsort((heads, tails))
        self._tails = _frozen(tails[order], np.int64)
        self._heads = _frozen(heads[order], np.int64)
        starts = np.searchsorted(self._tails, np.arange(num_nodes + 1))
        self._starts = _frozen(starts, np.int64)
        self._num_nodes = int(num_nodes)

    @property
    def num_nodes(self) -> int:
        return self._num_nodes

    @property
    def num_edges(self) -> int:
        return len(self._tails)

    @property
    def twoway(self) -> bool:
        """Incoming edges are known (always: each hopping is in both directions)."""
        return True

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._tails.tolist(), self._heads.tolist())

    def __repr__(self) -> str:
        return f"<Graph with {self.num_nodes} nodes and {self.num_edges} edges>"

    def _node(self, node: Any) -> int:
        if isinstance(node, (bool, np.bool_)) or not isinstance(node, (int, np.integer)):
            raise TypeError(f"a node is a site index (int), got {_checks._show(node)}")
        if not 0 <= node < self._num_nodes:
            raise IndexError(f"node {node} does not exist; nodes are 0..{self._num_nodes - 1}")
        return int(node)

    def _edge(self, edge_id: Any) -> int:
        if isinstance(edge_id, (bool, np.bool_)) or not isinstance(edge_id, (int, np.integer)):
            raise TypeError(f"an edge id is an int, got {_checks._show(edge_id)}")
        if not 0 <= edge_id < self.num_edges:
            raise IndexError(f"edge {edge_id} does not exist; edges are 0..{self.num_edges - 1}")
        return int(edge_id)

    def out_edge_ids(self, node: int) -> NDArray[np.int64]:
        """Ids of the edges leaving `node`."""
        n = self._node(node)
        return np.arange(self._starts[n], self._starts[n + 1], dtype=np.int64)

    def out_neighbors(self, node: int) -> NDArray[np.int64]:
        """Heads of the edges leaving `node`."""
        n = self._node(node)
        return self._heads[self._starts[n] : self._starts[n + 1]]

    def in_neighbors(self, node: int) -> NDArray[np.int64]:
        """Tails of the edges entering `node` (its out-neighbours: hoppings go both ways)."""
        return self.out_neighbors(node)

    def in_edge_ids(self, node: int) -> NDArray[np.int64]:
        """Ids of the edges entering `node`."""
        return np.array(
            [self.first_edge_id(int(t), node) for t in self.out_neighbors(node)], dtype=np.int64
        )

    def has_edge(self, tail: int, head: int) -> bool:
        t, h = self._node(tail), self._node(head)
        start, stop = self._starts[t], self._starts[t + 1]
        k = start + np.searchsorted(self._heads[start:stop], h)
        return bool(k < stop and self._heads[k] == h)

    def all_edge_ids(self, tail: int, head: int) -> NDArray[np.int64]:
        """Ids of the edges from `tail` to `head` (one, or none)."""
        t, h = self._node(tail), self._node(head)
        ids = self.out_edge_ids(t)
        return ids[self._heads[ids] == h]

    def first_edge_id(self, tail: int, head: int) -> int:
        """Id of the edge from `tail` to `head` (KeyError when there is none)."""
        ids = self.all_edge_ids(tail, head)
        if not len(ids):
            raise KeyError(f"there is no edge from node {tail} to node {head}")
        return int(ids[0])

    def head(self, edge_id: int) -> int:
        return int(self._heads[self._edge(edge_id)])

    def tail(self, edge_id: int) -> int:
        return int(self._tails[self._edge(edge_id)])

    def has_dangling_edges(self) -> bool:
        """Whether edges lead out of the graph (never, for a finalized system)."""
        return False


def _value_parameter_pairs(
    groups: Sequence[TermGroup], count: int
) -> tuple[tuple[Any, tuple[str, ...] | None], ...]:
    """``(value, parameter names or None)`` for each of `count` terms, from their groups."""
    pairs: list[Any] = [(None, None)] * count
    for g in groups:
        pair = _value_parameter_pair(g)
        for row in g.rows.tolist():
            pairs[row] = pair
    return tuple(pairs)


def _value_parameter_pair(group: TermGroup) -> tuple[Any, tuple[str, ...] | None]:
    """A term group's ``(value, parameter names)``, names None for a constant (Kwant's)."""
    if not callable(group.value):
        return group.value, None
    return group.value, tuple(_signature_info(group.value, 1 if group.onsite else 2)[0])


def _group_parameters(groups: Sequence[TermGroup]) -> set[str]:
    names: set[str] = set()
    for g in groups:
        if callable(g.value):
            names |= _function_parameters(g.value, 1 if g.onsite else 2)
    return names


def _groups_take_any_parameter(groups: Sequence[TermGroup]) -> bool:
    """Whether a value function takes ``**kwargs`` (or has no signature): every name."""
    return any(
        callable(g.value) and _signature_info(g.value, 1 if g.onsite else 2)[2] for g in groups
    )


def _warn_unused_parameters(
    params: Mapping[str, Any], known: frozenset[str], takes_any: bool
) -> None:
    """Warn (UnusedParameterWarning) about parameters no value function takes."""
    if takes_any:
        return
    unknown = sorted((name for name in params if name not in known), key=str)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), sorted(known), n=1)
        if close:
            hints.append(f"{close[0]!r} for {name!r}")
    message = (
        f"parameter(s) {', '.join(repr(n) for n in unknown)} in params are taken by no value "
        "function of this system or its leads and are ignored; "
        + (f"the system's parameters are {sorted(known)}" if known else "it takes no parameters")
        + (f" (did you mean {', '.join(hints)}?)" if hints else "")
    )
    warnings.warn(message, UnusedParameterWarning, stacklevel=_checks.user_stacklevel())


def _assemble(
    n_orbitals: int,
    offsets: NDArray[np.int64],
    onsite_groups: Sequence[TermGroup],
    hopping_groups: Sequence[TermGroup],
    params: Mapping[str, Any],
    *,
    phases: Callable[[TermGroup], NDArray[np.complex128] | None] | None = None,
    hermitian_part: bool = True,
    check_hermiticity: bool = True,
    cache: dict[str, Any] | None = None,
) -> sp.csr_matrix:
    """Sparse matrix from evaluated term groups (hoppings added with their conjugates).

    ``cache``: a finalized system's private cache, where the sparsity structure of these
    groups is kept (it does not depend on the values), so that later calls only place the
    values: the same matrix, without building and sorting the indices again.
    """
    rows, cols, data = [], [], []
    key = f"assembly {n_orbitals} {hermitian_part} " + " ".join(
        str(id(g)) for g in (*onsite_groups, *hopping_groups)
    )
    structure = None if cache is None else cache.get(key)
    build_indices = not isinstance(structure, tuple)

    def add(
        r_sites: NDArray[np.int64], c_sites: NDArray[np.int64], blocks: NDArray[np.complex128]
    ) -> None:
        data.append(np.ascontiguousarray(blocks).ravel())
        if not build_indices:
            return
        na, nb = blocks.shape[1:]
        r = offsets[r_sites][:, None, None] + np.arange(na)[None, :, None]
        c = offsets[c_sites][:, None, None] + np.arange(nb)[None, None, :]
        r, c = np.broadcast_arrays(r, c)
        rows.append(r.ravel())
        cols.append(c.ravel())

    def hermitian(checked: NDArray[np.complex128]) -> NDArray[np.bool_]:
        # Relative to each block's own size: a Hamiltonian in any energy unit is checked
        # alike.
        asymmetry = np.abs(checked - checked.conj().transpose(0, 2, 1)).max(axis=(1, 2))
        return np.asarray(asymmetry <= 1e-12 * np.abs(checked).max(axis=(1, 2)))

    for run in _onsite_runs(onsite_groups, hermitian if check_hermiticity else None):
        if isinstance(run, tuple):  # constant groups, checked together
            unique, counts, members = run
            stacked = np.repeat(unique, counts, axis=0)
            if build_indices:
                start = 0
                for g, count in zip(members, counts, strict=True):
                    add(g.rows, g.cols, stacked[start : start + count])
                    start += int(count)
            else:
                data.append(stacked.ravel())
            continue
        g = run
        blocks = g.blocks(params)
        if check_hermiticity:
            # A constant is one block for the whole group (checked once).
            checked = blocks if callable(g.value) else blocks[:1]
            bad = ~hermitian(checked)
            if np.any(bad):
                k = int(np.argmax(bad))
                raise ValueError(f"{g.describe(k)} is not Hermitian: {blocks[k].tolist()}")
        add(g.rows, g.cols, blocks)
    for g in hopping_groups:
        blocks = g.blocks(params)
        ph = phases(g) if phases is not None else None
        if ph is not None:
            blocks = blocks * ph[:, None, None]
        r_sites, c_sites = g.rows, g.cols
        if g.conj:
            blocks = blocks.conj().transpose(0, 2, 1)
            r_sites, c_sites = c_sites, r_sites
        add(r_sites, c_sites, blocks)
        if hermitian_part:
            add(c_sites, r_sites, blocks.conj().transpose(0, 2, 1))
    if not data:
        return sp.csr_matrix((n_orbitals, n_orbitals), dtype=complex)
    values = np.concatenate(data)
    if build_indices:
        row, col = np.concatenate(rows), np.concatenate(cols)
        if structure is None and cache is not None:
            structure = _csr_structure(row, col, n_orbitals)
            cache[key] = structure
        if not isinstance(structure, tuple):  # no cache, or entries that add up
            return sp.coo_matrix((values, (row, col)), shape=(n_orbitals, n_orbitals)).tocsr()
    assert isinstance(structure, tuple)
    order, indices, indptr = structure
    matrix = sp.csr_matrix(
        (values[order], indices.copy(), indptr.copy()), shape=(n_orbitals, n_orbitals)
    )
    matrix.has_sorted_indices = True
    return matrix


#: Fewest constant onsite groups in a row that are converted and checked together.
_MIN_CONSTANT_RUN = 8


def _onsite_runs(
    groups: Sequence[TermGroup],
    hermitian: Callable[[NDArray[np.complex128]], NDArray[np.bool_]] | None,
) -> Iterator[TermGroup | tuple[NDArray[np.complex128], NDArray[np.intp], list[TermGroup]]]:
    """The onsite groups, runs of constant ones taken together.

    A site given its own constant matrix (disorder drawn once, a position-dependent
    potential written out site by site) is a group of its own: thousands of them. A run
    of at least ``_MIN_CONSTANT_RUN`` such groups whose values are all arrays of the
    block shape (or numbers, for one orbital) is yielded as ``(blocks, counts, groups)``,
    one block per group, converted and checked (finite; ``hermitian``, if given) in one
    pass, from the values as they are now (a value changed in place is seen). A run that
    fails a check is yielded group by group, whose own conversion names the bad value.
    """
    run: list[TermGroup] = []

    def flush() -> Iterator[Any]:
        if len(run) >= _MIN_CONSTANT_RUN:
            taken = _constant_blocks(run, hermitian)
            if taken is not None:
                counts = np.array([len(g.rows) for g in run], dtype=np.intp)
                yield taken, counts, list(run)
                run.clear()
                return
        yield from run
        run.clear()

    for g in groups:
        if callable(g.value):
            yield from flush()
            yield g
            continue
        if run and g.shape != run[0].shape:
            yield from flush()
        run.append(g)
    yield from flush()


def _constant_blocks(
    groups: Sequence[TermGroup],
    hermitian: Callable[[NDArray[np.complex128]], NDArray[np.bool_]] | None,
) -> NDArray[np.complex128] | None:
    """``(len(groups), *shape)`` blocks of constant groups of one shape, or None where a
    value is not an array of that shape (or a number for one orbital), is not finite or
    (with ``hermitian``) not Hermitian."""
    shape = groups[0].shape
    values = [g.value for g in groups]
    if all(type(v) is np.ndarray and v.shape == shape for v in values):
        pass
    elif shape == (1, 1) and all(isinstance(v, (int, float, complex)) for v in values):
        values = [[[v]] for v in values]
    else:
        return None
    try:
        blocks = np.array(values, dtype=complex)
    except (TypeError, ValueError):
        return None
    if blocks.shape != (len(groups), *shape) or not np.all(np.isfinite(blocks)):
        return None
    if hermitian is not None and not np.all(hermitian(blocks)):
        return None
    return blocks


def _csr_structure(
    row: NDArray[np.int64], col: NDArray[np.int64], n: int
) -> tuple[NDArray[np.intp], NDArray[Any], NDArray[Any]] | bool:
    """Where entries given as (row, col) go in a CSR matrix with sorted indices: the order
    of the entries, the column indices and the row pointers; False if two entries share a
    place (they would be added)."""
    keys = row.astype(np.int64) * n + col
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    if ordered.size > 1 and not np.all(ordered[1:] != ordered[:-1]):
        return False
    index_dtype = np.int32 if n < 2**31 - 1 and keys.size < 2**31 - 1 else np.int64
    indices = col[order].astype(index_dtype)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]).astype(index_dtype)
    return order, indices, indptr


_SPARSE_INSTEAD = "ask for sparse=True (a scipy.sparse matrix) instead"
_NARROWER_LEAD = (
    "ask for sparse=True (a scipy.sparse matrix) instead; the lead-mode solvers need the "
    "dense unit cell, so a solve needs a lead with fewer orbitals per unit cell"
)


def _check_dense(n_orbitals: int, what: str, alternative: str = _SPARSE_INSTEAD) -> None:
    """Refuse a dense complex (n, n) matrix that would not fit in memory."""
    _checks.memory(
        16.0 * n_orbitals * n_orbitals,
        f"{what} ({n_orbitals} x {n_orbitals} complex numbers)",
        alternative=alternative,
    )


def _params_dict(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of parameter values by name, got {params!r}")
    return params


def _flux_value(params: Mapping[str, Any], name: str | None) -> float:
    if name is None:
        return 0.0
    if name not in params:
        raise ValueError(
            f"missing parameter {name!r} (the magnetic flux per unit area in units of h/e); "
            f"parameters given: {sorted(params) or 'none'}"
        )
    value = params[name]
    try:
        flux = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"magnetic flux {name!r} must be a real number, got {value!r}") from exc
    if not np.isfinite(flux):
        raise ValueError(f"magnetic flux {name!r} must be finite, got {value!r}")
    return flux


# --------------------------------------------------------------------------------------
# Leads
# --------------------------------------------------------------------------------------


class _Frozen:
    """Attribute assignment refused after construction; a private cache stays writable.

    Construction sets attributes with ``_freeze_set``; lazily computed values live in the
    ``_cache`` dict made at construction. Pickling restores ``__dict__`` directly.
    """

    _cache: dict[str, Any]

    def _freeze_set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__} is finalized and immutable; cannot set {name!r} "
            "(change the Builder and call finalized() again)"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(
            f"{type(self).__name__} is finalized and immutable; cannot delete {name!r}"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Derived values are recomputed after unpickling; the sites themselves are kept.
        state = dict(self.__dict__)
        cache = state.get("_cache")
        if cache is not None:
            state["_cache"] = {k: v for k, v in cache.items() if k == "sites"}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Pickles do not keep NumPy's writeable flag: freeze the arrays again.
        for value in state.values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, np.ndarray):
                    item.flags.writeable = False
        self.__dict__.update(state)

    def _adopt(self, builder: Any, spin_degeneracy: int, magnetic_flux: str | None) -> None:
        """The deprecated ``System(builder)``: take over ``builder.finalized()``'s state."""
        name = type(self).__name__
        warnings.warn(
            f"{name}(builder) is deprecated; call builder.finalized() instead",
            DeprecationWarning,
            stacklevel=3,
        )
        made = builder.finalized(spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux)
        if type(made) is not type(self):
            raise TypeError(
                f"{name}(builder) got a builder that finalizes into a {type(made).__name__}"
            )
        self.__dict__.update(made.__dict__)


def _check_groups(groups: Any, what: str) -> tuple[TermGroup, ...]:
    groups = tuple(groups)
    for group in groups:
        if not isinstance(group, TermGroup):
            raise TypeError(f"{what} must be TermGroups, got {_checks._show(group)}")
    return groups


def _check_norbs(norbs: ArrayLike, num_sites: int) -> NDArray[np.int64]:
    array = _frozen(norbs, np.int64)
    if array.shape != (num_sites,) or np.any(array < 1):
        raise ValueError(
            f"norbs must hold one positive orbital count per site ({num_sites} sites), got "
            f"{_checks._show(np.asarray(norbs).tolist())}"
        )
    return array


def _offsets(norbs: NDArray[np.int64]) -> NDArray[np.int64]:
    return _frozen(np.concatenate([[0], np.cumsum(norbs)]), np.int64)


def _check_terms_in_range(groups: tuple[TermGroup, ...], num_sites: int, what: str) -> None:
    for group in groups:
        for index in (group.rows, group.cols):
            if len(index) and (index.min() < 0 or index.max() >= num_sites):
                raise ValueError(
                    f"{what} refer to site {int(index.max())} or {int(index.min())}, "
                    f"outside 0..{num_sites - 1}"
                )


class _DiscreteSymmetries:
    """The Builder's conservation law and discrete symmetries of a finalized system or lead."""

    sites: Any
    norbs: Any
    conservation_law: Any
    time_reversal: Any
    particle_hole: Any
    chiral: Any

    def _symmetries(self) -> dict[str, Any]:
        return {
            name: getattr(self, name, None)
            for name in ("conservation_law", "time_reversal", "particle_hole", "chiral")
        }

    def discrete_symmetry(self, args: Any = (), *, params: Mapping[str, Any] | None = None) -> Any:
        """The Builder's conservation law and discrete symmetries as Kwant's
        :class:`mesoscopic.physics.DiscreteSymmetry` (projectors onto the conservation-law
        blocks, time-reversal, particle-hole and chiral operators), per site evaluated with
        `params` where they are functions. ``args`` is Kwant's deprecated positional form."""
        from .physics.symmetry import _onsite_discrete_symmetry

        return _onsite_discrete_symmetry(
            self.sites[: len(self.norbs)], self.norbs, self.conservation_law, self.time_reversal,
            self.particle_hole, self.chiral, args=tuple(args), params=params,
        )  # fmt: skip


class InfiniteSystem(_DiscreteSymmetries, _Frozen):
    """A finalized lead: one unit cell repeated along a translational symmetry.

    Cells are numbered ``m = 0, 1, 2, ...`` along the symmetry period (away from
    the scattering region when attached). :meth:`cell_hamiltonian` is
    ``<m|H|m>`` and :meth:`hopping_away` is ``<m|H|m+1>``, so the Bloch Hamiltonian is
    ``H(k) = h_cell + hop e^{ik} + hop^dagger e^{-ik}``; :meth:`inter_cell_hopping` is
    Kwant's, the conjugate transpose of :meth:`hopping_away`.

    Made by ``Builder.finalized()`` for a Builder with a translational symmetry, which
    hands over its parts through the keyword-only constructor below. Immutable: its
    arrays are read-only and attributes cannot be assigned.

    Parameters
    ----------
    sites : sequence of Site
        Sites of the unit cell (the fundamental domain), in the order of the orbitals.
    symmetry : TranslationalSymmetry
        The lead's symmetry, with one period.
    norbs : array_like of int, shape (n_sites,)
        Orbitals per site.
    onsite : sequence of TermGroup
        Onsite terms (site indices into `sites`).
    cell_hoppings : sequence of TermGroup
        Hoppings within the cell, ``<m|H|m>``.
    inter_cell_hoppings : sequence of TermGroup
        Hoppings ``<m|H|m+1>``, rows in cell m and columns in cell m+1 (or their
        conjugates, ``conj=True``).
    conservation_law : optional
        A matrix or a function of the site, as for the Builder.
    spin_degeneracy : {1, 2}
    magnetic_flux : str, optional
        Name of the flux parameter (see the module notes).
    time_reversal, particle_hole, chiral : optional
        The Builder's discrete symmetries (matrices, or functions of the site), read by
        :meth:`discrete_symmetry`.

    Attributes
    ----------
    sites : tuple of Site
        Sites of the unit cell (the fundamental domain), then, as Kwant's, the copies of
        the interface sites in the previous cell, which :meth:`hamiltonian` numbers after
        the cell; the cell is ``sites[:cell_size]``.
    cell_size : int
        Sites per unit cell.
    pos : ndarray, shape (cell_size, dim)
        Positions of the unit cell's sites (read-only).
    norbs, orb_offsets : ndarray of int
        Orbitals per site and each site's first orbital, ``(n_sites + 1,)`` (read-only).
    interface_sites : ndarray of int
        Indices (into `sites`) of the cell sites that have hoppings into the next cell,
        ascending: the sites a scattering region must hold in the lead's place (read-only).
    symmetry : TranslationalSymmetry
    spin_degeneracy : int
    """

    sites: tuple[Site, ...]
    interface_sites: NDArray[np.int64]
    symmetry: Any
    _cell_size: int
    pos: NDArray[np.float64]
    norbs: NDArray[np.int64]
    orb_offsets: NDArray[np.int64]
    spin_degeneracy: int
    magnetic_flux: str | None
    conservation_law: Any
    time_reversal: Any
    particle_hole: Any
    chiral: Any
    parameters: frozenset[str]
    _onsite: tuple[TermGroup, ...]
    _cell: tuple[TermGroup, ...]
    _inter: tuple[TermGroup, ...]
    _takes_any_parameter: bool
    _direction: NDArray[np.float64]
    #: A builder lead has both its modes and its self-energy (as every lead kind says).
    has_modes = True
    has_selfenergy = True

    def __init__(
        self,
        builder: Any = None,
        interface_order: Sequence[Site] | None = None,
        /,
        *,
        sites: Sequence[Site] = (),
        symmetry: Any = None,
        norbs: ArrayLike = (),
        onsite: Sequence[TermGroup] = (),
        cell_hoppings: Sequence[TermGroup] = (),
        inter_cell_hoppings: Sequence[TermGroup] = (),
        conservation_law: Any = None,
        spin_degeneracy: int = 1,
        magnetic_flux: str | None = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
    ) -> None:
        if builder is not None:
            # Kwant's InfiniteSystem(builder, interface_order): the order must be the one
            # the lead has (sorted), which is checked.
            self._adopt(builder, spin_degeneracy, magnetic_flux)
            if interface_order is not None:
                self._check_interface_order(interface_order)
            return
        if interface_order is not None:
            raise TypeError("interface_order is given with a lead Builder")
        sites = tuple(sites)
        if not sites:
            raise ValueError("the lead has no sites")
        if symmetry is None or getattr(symmetry, "num_directions", None) != 1:
            raise ValueError(
                f"a lead needs a translational symmetry with one period, got {symmetry!r}"
            )
        set_ = self._freeze_set
        set_("_cache", {})
        set_("symmetry", symmetry)
        set_("spin_degeneracy", _check_degeneracy(spin_degeneracy))
        set_("magnetic_flux", _check_flux_name(magnetic_flux))
        set_("conservation_law", conservation_law)
        set_("time_reversal", time_reversal)
        set_("particle_hole", particle_hole)
        set_("chiral", chiral)
        set_("_cell_size", len(sites))
        set_("sites", sites)
        set_("pos", _frozen(_site_positions(sites), float))
        set_("norbs", _check_norbs(norbs, len(sites)))
        set_("orb_offsets", _offsets(self.norbs))
        set_("_onsite", _check_groups(onsite, "onsite terms"))
        set_("_cell", _check_groups(cell_hoppings, "cell hoppings"))
        set_("_inter", _check_groups(inter_cell_hoppings, "inter-cell hoppings"))
        for groups, what in ((self._onsite, "onsite terms"), (self._cell, "cell hoppings")):
            _check_terms_in_range(groups, len(sites), f"the lead's {what}")
        _check_terms_in_range(self._inter, len(sites), "the lead's inter-cell hoppings")
        if not self._inter:
            # As Kwant: a warning, and a lead that couples to nothing (no interface sites).
            warnings.warn(
                "the lead's unit cells are disconnected: it has no hoppings between "
                "neighbouring unit cells, so it carries no current and couples to nothing "
                "(add hoppings across the period, e.g. lead[lat.neighbors()] = -t)",
                RuntimeWarning,
                stacklevel=4,
            )
        # Rows of <m|H|m+1>: a forward group's rows, a conjugated (backward) group's cols.
        coupled = [g.cols if g.conj else g.rows for g in self._inter]
        interface = np.unique(np.concatenate(coupled)) if coupled else np.zeros(0, np.int64)
        set_("interface_sites", _frozen(interface, np.int64))
        # As Kwant's: after the cell, the interface sites' copies in the previous cell.
        previous = tuple(symmetry.act((-1,), sites[i]) for i in self.interface_sites)
        set_("sites", tuple(sites) + previous)
        parts = (self._onsite, self._cell, self._inter)
        names: set[str] = set().union(*(_group_parameters(part) for part in parts))
        set_("_takes_any_parameter", any(_groups_take_any_parameter(part) for part in parts))
        if magnetic_flux:
            names.add(magnetic_flux)
            set_("_direction", _frozen(_lead_direction(symmetry.period), float))
        set_("parameters", frozenset(names))

    def __repr__(self) -> str:
        return (
            f"<InfiniteSystem with {self.cell_size} sites per cell, {self.num_orbitals} orbitals>"
        )

    def _check_interface_order(self, interface_order: Sequence[Site]) -> None:
        """Refuse an `interface_order` (Kwant's) that is not this lead's interface, in
        its order: the copies, all in one cell, of the sites that hop into the next
        cell."""
        order = list(interface_order)
        cell = self.sites[: self.cell_size]
        expected = [cell[int(i)] for i in self.interface_sites]
        try:
            domains = {int(self.symmetry.which(site)[0]) for site in order}
            images = [self.symmetry.to_fd(site) for site in order]
        except (TypeError, ValueError, AttributeError):
            raise ValueError(
                f"interface_order must hold sites of the lead, got {_checks._show(order)}"
            ) from None
        if len(domains) > 1:
            raise ValueError("the sites of interface_order must all lie in one unit cell")
        if images != expected:
            if sorted(map(repr, images)) == sorted(map(repr, expected)):
                raise ValueError(
                    "interface_order must list the interface sites sorted, as the lead orders them"
                )
            raise ValueError(
                "interface_order must hold each interface site (a site with hoppings into "
                f"the next cell) once: {len(expected)} sites, got {len(order)}"
            )

    @property
    def graph(self) -> Graph:
        """The lead's graph, as Kwant's: nodes are :attr:`sites` (the cell, then the
        interface sites' copies in the previous cell), each hopping two directed edges;
        a hopping between cells joins a site of the cell and a copy."""
        cached = self._cache.get("graph")
        if cached is None:
            rows, cols, _ = self._graph_hoppings()
            count = self.cell_size + len(self.interface_sites)
            cached = Graph(count, np.array(rows, np.int64), np.array(cols, np.int64))
            self._cache["graph"] = cached
        return cached

    def _graph_hoppings(
        self,
    ) -> tuple[list[int], list[int], dict[tuple[int, int], tuple[Any, Any]]]:
        """Each hopping once as graph nodes, and ``(value, parameter names)`` of each, by
        the direction in which the Builder holds it."""
        n = self.cell_size
        copy_of = {int(site): n + k for k, site in enumerate(self.interface_sites)}
        rows: list[int] = []
        cols: list[int] = []
        given: dict[tuple[int, int], tuple[Any, Any]] = {}
        for g in self._cell:
            pair = _value_parameter_pair(g)
            for r, c in zip(g.rows.tolist(), g.cols.tolist()):
                rows.append(r)
                cols.append(c)
                given[(c, r) if g.conj else (r, c)] = pair
        for g in self._inter:
            pair = _value_parameter_pair(g)
            for r, c in zip(g.rows.tolist(), g.cols.tolist()):
                # Held as (a, b) with a in the cell: b in the previous cell (conj) is a
                # copy; b in the next cell, shifted back one cell with a, makes a a copy.
                edge = (r, copy_of[c]) if g.conj else (copy_of[r], c)
                rows.append(edge[0])
                cols.append(edge[1])
                given[edge] = pair
        return rows, cols, given

    @property
    def hoppings(self) -> tuple[tuple[Any, tuple[str, ...] | None], ...]:
        """Each edge's hopping value, in the order of :attr:`graph`'s edges, as
        :attr:`System.hoppings`: ``(value, parameter names or None)`` for the direction
        the Builder holds, ``(Other, ())`` for the reverse."""
        cached = self._cache.get("hoppings")
        if cached is None:
            given = self._graph_hoppings()[2]
            cached = tuple(given.get(edge, (Other, ())) for edge in self.graph)
            self._cache["hoppings"] = cached
        return cached

    @property
    def onsites(self) -> tuple[tuple[Any, tuple[str, ...] | None], ...]:
        """Each cell site's onsite value, as :attr:`System.onsites`."""
        cached = self._cache.get("onsites")
        if cached is None:
            cached = _value_parameter_pairs(self._onsite, self.cell_size)
            self._cache["onsites"] = cached
        return cached

    @property
    def id_by_site(self) -> Mapping[Site, int]:
        """Index of each site of :attr:`sites` (read-only mapping)."""
        return _id_by_site(self)

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    @property
    def cell_size(self) -> int:
        """Number of sites in one unit cell (Kwant's ``cell_size``)."""
        return int(self.__dict__.get("_cell_size", len(self.sites)))  # older pickles

    def hamiltonian(
        self, i: int, j: int, *args: Any, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The block ``<i|H|j>`` between two sites, numbered as in Kwant's InfiniteSystem.

        Sites ``0 .. cell_size - 1`` are those of one unit cell (``sites``); sites
        ``cell_size + k`` are the copies, in the previous cell, of the interface site
        ``interface_sites[k]``.

        Parameters
        ----------
        i, j : int
            Site indices, ``0 <= i, j < cell_size + len(interface_sites)``.
        *args
            Kwant's deprecated positional parameters (with a DeprecationWarning).
        params : dict, optional
            Parameter values by name.

        Returns
        -------
        complex or (norbs_i, norbs_j) complex ndarray
            A number for one-orbital sites, else the block (zero where no hopping).
        """
        params = _legacy_params(args, params)
        n, count = self.cell_size, self.cell_size + len(self.interface_sites)
        cell_site = []
        for name, index in (("i", i), ("j", j)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{name} must be a site index (int), got {index!r}")
            if not 0 <= index < count:
                raise ValueError(f"site index {name}={index} is out of range 0..{count - 1}")
            cell_site.append(int(index) if index < n else int(self.interface_sites[index - n]))
        previous = (i >= n, j >= n)
        if previous[0] == previous[1]:
            matrix = self.cell_hamiltonian(params=params, sparse=True)
        elif previous[0]:  # <m-1|H|m> is <m|H|m+1>
            matrix = self.hopping_away(params=params, sparse=True)
        else:  # <m|H|m-1>, the conjugate transpose
            matrix = self.hopping_away(params=params, sparse=True).conj().T.tocsr()
        a, b = cell_site
        rows = slice(self.orb_offsets[a], self.orb_offsets[a + 1])
        cols = slice(self.orb_offsets[b], self.orb_offsets[b + 1])
        block = np.asarray(matrix[rows, cols].toarray())
        return complex(block[0, 0]) if block.shape == (1, 1) else block

    def _phase_function(
        self, params: Mapping[str, Any]
    ) -> Callable[[TermGroup], NDArray[np.complex128] | None] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0:
            return None

        def phases(g: TermGroup) -> NDArray[np.complex128]:
            if g.vectorized:
                ra, rb = g.sites[0].pos[:, :2], g.sites[1].pos[:, :2]
            else:
                ra = np.array([a.pos[:2] for a, _ in g.sites])
                rb = np.array([b.pos[:2] for _, b in g.sites])
            return np.exp(-2j * np.pi * flux * _lead_line_integral(ra, rb, self._direction))

        return phases

    def cell_hamiltonian(
        self,
        args: Any = (),
        sparse: bool = False,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Hamiltonian of one unit cell, ``<m|H|m>``, shape (n, n) with n orbitals per cell.

        ``args`` is Kwant's deprecated positional form of the parameters (a dict given
        there is taken as `params`).
        """
        params = _params_dict(_legacy_params(args, params))
        if not sparse:
            _check_dense(
                self.num_orbitals, "the dense unit-cell Hamiltonian of the lead", _NARROWER_LEAD
            )
        mat = _assemble(
            self.num_orbitals,
            self.orb_offsets,
            self._onsite,
            self._cell,
            params,
            phases=self._phase_function(params),
            cache=self._cache,
        )
        return mat if sparse else mat.toarray()

    def _hopping_matrix(self, params: Mapping[str, Any]) -> sp.csr_matrix:
        """The cell's hoppings alone (no onsite value function is called), sparse."""
        return _assemble(
            self.num_orbitals,
            self.orb_offsets,
            (),
            self._cell,
            _params_dict(params),
            phases=self._phase_function(_params_dict(params)),
        )

    def inter_cell_hopping(
        self,
        args: Any = (),
        sparse: bool = False,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Kwant's inter-cell hopping: ``<m+1|H|m>``, shape (n, n), cells numbered away from
        the scattering region.

        The Bloch Hamiltonian is then Kwant's ``H(k) = h_cell + hop e^{-ik} + h.c.``, and
        ``kwant.physics.modes(h_cell - E, hop)`` (:func:`mesoscopic.leads.modes`) takes it as
        it is. The conjugate transpose, ``<m|H|m+1>``, is :meth:`hopping_away`, the
        convention of the package's solvers. ``args`` as for :meth:`cell_hamiltonian`.
        """
        away = self.hopping_away(params=_params_dict(_legacy_params(args, params)), sparse=True)
        kwant = away.conj().T.tocsr()
        return kwant if sparse else kwant.toarray()

    def hopping_away(
        self, params: Mapping[str, Any] | None = None, *, sparse: bool = False
    ) -> Any:
        """Hopping from cell m+1 to cell m, ``<m|H|m+1>``, shape (n, n), cells numbered away
        from the scattering region: ``H(k) = h_cell + hop e^{ik} + h.c.``, the convention of
        the package's solvers and of :func:`mesoscopic.leads.bands` (the conjugate transpose
        of Kwant's :meth:`inter_cell_hopping`)."""
        params = _params_dict(params)
        if not sparse:
            _check_dense(
                self.num_orbitals, "the dense inter-cell hopping of the lead", _NARROWER_LEAD
            )
        mat = _assemble(
            self.num_orbitals,
            self.orb_offsets,
            [],
            self._inter,
            params,
            phases=self._phase_function(params),
            hermitian_part=False,
            cache=self._cache,
        )
        return mat if sparse else mat.toarray()

    def conservation_projectors(self) -> list[NDArray[np.complex128]] | None:
        """Projectors onto the blocks of the conservation law, or None.

        Returns a list of (n, n_b) matrices with orthonormal columns, one per
        distinct eigenvalue of the conservation law, in ascending order.
        """
        law = self.conservation_law
        if law is None:
            return None
        n = self.num_orbitals
        mat = np.zeros((n, n), dtype=complex)
        for i, site in enumerate(self.sites[: self.cell_size]):
            value = law(site) if callable(law) else law
            block = np.atleast_2d(np.asarray(value, dtype=complex))
            k = int(self.norbs[i])
            if block.shape != (k, k):
                raise ValueError(
                    f"conservation law on {_described(site)} has shape {block.shape}, expected "
                    f"({k}, {k})"
                )
            if not np.allclose(block, block.conj().T, atol=1e-12):
                raise ValueError(f"conservation law on {_described(site)} must be Hermitian")
            o = self.orb_offsets[i]
            mat[o : o + k, o : o + k] = block
        vals, vecs = np.linalg.eigh(mat)
        groups: list[list[int]] = []
        for idx in np.argsort(vals, kind="stable"):
            if groups and abs(vals[idx] - vals[groups[-1][0]]) < 1e-8:
                groups[-1].append(int(idx))
            else:
                groups.append([int(idx)])
        return [vecs[:, g] for g in groups]

    def modes(
        self, energy: float = 0.0, args: Any = (), *, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Propagating and stabilized modes at `energy` (see :func:`mesoscopic.leads.modes`).

        ``args`` as for :meth:`cell_hamiltonian`.
        """
        from . import leads

        params = _legacy_params(args, params)
        return leads._modes_at_energy(
            self.cell_hamiltonian(params=params),
            self.hopping_away(params=params),
            energy,
            projectors=self.conservation_projectors(),
        )

    def selfenergy(
        self, energy: float = 0.0, args: Any = (), *, params: Mapping[str, Any] | None = None
    ) -> NDArray[np.complex128]:
        """Retarded self-energy on a copy of the unit cell next to the lead, shape (n, n).

        ``args`` as for :meth:`cell_hamiltonian`.
        """
        from . import leads

        params = _legacy_params(args, params)
        h_cell = self.cell_hamiltonian(params=params)
        return leads._selfenergy_at_energy(h_cell, self.hopping_away(params=params), energy)


# --------------------------------------------------------------------------------------
# Leads known by a function: self-energy leads and modes leads
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _takes_params(func: Callable[..., Any]) -> bool:
    """Whether a lead function accepts ``params=`` (by name or through ``**kwargs``)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return True
    return any(
        p.kind == p.VAR_KEYWORD
        or (p.name == "params" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in sig.parameters.values()
    )


@lru_cache(maxsize=1024)
def _takes_two_positional(func: Callable[..., Any]) -> bool:
    """Whether a lead function takes a second positional argument (Kwant's ``args``)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in sig.parameters.values()]
    # A second positional parameter with a default (``lambda e, eta=eta: ...``, a value
    # bound at definition) is not Kwant's ``args``.
    required = [
        p
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.default is inspect.Parameter.empty
    ]
    return len(required) >= 2 or inspect.Parameter.VAR_POSITIONAL in kinds


class _AtOneEnergy:
    """A lead's modes or self-energy computed at one energy (:meth:`System.precalculate`).

    Asked at another energy, it computes them again (``recompute(energy)``, with the
    parameters given to ``precalculate``) and says so by a RuntimeWarning: Kwant returns
    the stored values there, which belong to another energy.
    """

    def __init__(
        self, value: Any, energy: float, lead: int, recompute: Callable[[float], Any]
    ) -> None:
        self.value = value
        self.energy = float(energy)
        self.lead = lead
        self.recompute = recompute

    def __call__(
        self, energy: float, args: Any = (), *, params: Mapping[str, Any] | None = None
    ) -> Any:
        if np.isclose(energy, self.energy, rtol=1e-12, atol=1e-14):
            return self.value
        warnings.warn(
            f"lead {self.lead} was precalculated at energy {self.energy!r}; at energy "
            f"{energy!r} it is computed again (with the parameters given to precalculate); "
            "precalculate at this energy to save the time",
            RuntimeWarning,
            stacklevel=2,
        )
        return self.recompute(energy)


def _lead_part(
    lead: Any,
    part: str,
    params: Mapping[str, Any] | None,
    cell_orbitals: NDArray[np.int64] | None,
    energy: float,
) -> Any:
    """A lead's modes (``part='modes'``) or self-energy at `energy`, the self-energy on
    `cell_orbitals` (all when None): what :meth:`System.precalculate` stores."""
    if part == "modes":
        return lead.modes(energy, params=params)
    sigma = lead.selfenergy(energy, params=params)
    return sigma if cell_orbitals is None else sigma[np.ix_(cell_orbitals, cell_orbitals)]


class _FunctionLead(_Frozen):
    """A lead given by a function of the energy and the parameters, on interface sites."""

    interface: tuple[Any, ...]
    parameters: frozenset[str]
    has_modes: bool
    has_selfenergy: bool
    _function: Callable[..., Any]
    _what: str

    def __init__(
        self, function: Any, interface: Any, parameters: Sequence[str] = (), *, what: str
    ) -> None:
        if not callable(function):
            raise TypeError(f"{what} must be a function, got {_checks._show(function)}")
        if isinstance(parameters, str):
            raise TypeError(
                f"parameters must be a sequence of parameter names, got the string "
                f"{parameters!r}; write ({parameters!r},)"
            )
        names = frozenset(parameters)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"parameters must be names (str), got {name!r}")
        try:
            sites = tuple(interface)
        except TypeError:
            raise TypeError(
                f"interface must be a sequence of sites, got {_checks._show(interface)}"
            ) from None
        if not sites:
            raise ValueError("interface must hold at least one site")
        self._freeze_set("_cache", {})
        self._freeze_set("_function", function)
        self._freeze_set("_what", what)
        self._freeze_set("interface", sites)
        self._freeze_set("parameters", names)

    def finalized(self) -> _FunctionLead:
        """Trivial finalization: the lead itself (as Kwant's)."""
        return self

    def _call(self, energy: float, args: Sequence[Any], params: Mapping[str, Any] | None) -> Any:
        func = self._function
        given = _params_dict(_legacy_params(args, params))
        try:
            if _takes_params(func):
                return func(energy, params=given)
            if _takes_two_positional(func):
                # Kwant's older lead functions take (energy, args).
                values = given.args if isinstance(given, _PositionalArgs) else ()
                return func(energy, values)
            return func(energy)
        except Exception as exc:
            if isinstance(exc, UserCodeError) or _is_package_function(func):
                raise
            shown = ", ".join(f"{k}={_checks._show(v)}" for k, v in given.items()) or "none"
            raise UserCodeError(
                f"the {self._what} {_function_name(func)}{_function_location(func)} raised "
                f"{type(exc).__name__}: {exc}\n  at energy {energy!r}\n"
                f"  with parameters: {shown}\n"
                "(the traceback of the original error is shown above)"
            ) from exc

    def _digest(self, digest: Any) -> None:
        flags = (getattr(self, "has_modes", None), getattr(self, "has_selfenergy", None))
        digest.update(f"{type(self).__name__}{sorted(self.parameters)}{flags}".encode())
        _digest_object(self._function, digest)


class SelfEnergyLead(_FunctionLead):
    """A lead given by its retarded self-energy on interface sites, as Kwant's.

    Wide-band electrodes (``-i Gamma / 2`` on chosen sites), Büttiker probes and leads
    computed elsewhere. Every solver accepts it: its channels are the eigenvectors of
    ``Gamma = i (Sigma - Sigma^dagger)`` with nonzero eigenvalues, its S-matrix rows the
    Fisher-Lee amplitudes ``-delta + i W^dagger G W`` with ``Gamma = W W^dagger`` (see
    :mod:`mesoscopic.solvers._embedding`), so transmissions into and out of it are the
    Caroli ones and the S-matrix is unitary.

    Parameters
    ----------
    selfenergy_func : callable
        ``selfenergy_func(energy, args=(), *, params=None)`` (Kwant's signature; a function
        of the energy alone is accepted too) returning the self-energy, a complex
        ``(n_orb, n_orb)`` matrix over the orbitals of the interface sites in order, in
        energy units. It must be retarded (``Gamma >= 0``). Called once per energy.
    interface : sequence of Site
        The sites of the scattering region the lead couples to.
    parameters : sequence of str, optional
        Names of the parameters the function reads from ``params``.
    with_modes : bool, keyword-only
        True (the default): the eigenvectors of ``Gamma`` are the lead's channels, so
        S-matrix elements and scattering states of the lead are defined. False: a lead
        known only by its self-energy, as Kwant's self-energy leads (and
        ``precalculate(what='selfenergy')``): Green's functions and transmissions from
        them accept it; ``smatrix`` with it among the in or out leads, its scattering
        states and ``ldos`` refuse it.

    Attributes
    ----------
    has_modes : bool
        ``with_modes``.
    has_selfenergy : bool
        True.

    Examples
    --------
    A single level at ``eps = 0.3`` between two wide-band leads of widths ``gamma_L`` and
    ``gamma_R`` transmits the Breit-Wigner
    ``gamma_L gamma_R / ((E - eps)^2 + (gamma_L + gamma_R)^2 / 4)``:

    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[lat(0)] = 0.3
    >>> fsys = syst.finalized()
    >>> left = meso.system.SelfEnergyLead(lambda e: [[-0.05j]], [lat(0)])
    >>> right = meso.system.SelfEnergyLead(lambda e: [[-0.15j]], [lat(0)])
    >>> fsys = fsys.with_leads([left, right])
    >>> T = meso.batch.transmission(fsys, [0.3, 0.5], 1, 0)
    >>> bool(abs(T[0] - 0.1 * 0.3 / 0.2**2) < 1e-12)
    True
    """

    has_selfenergy = True

    def __init__(
        self,
        selfenergy_func: Any,
        interface: Sequence[Any],
        parameters: Sequence[str] = (),
        *,
        with_modes: bool = True,
    ) -> None:
        super().__init__(selfenergy_func, interface, parameters, what="self-energy function")
        self._freeze_set("has_modes", bool(with_modes))

    @property
    def selfenergy_func(self) -> Callable[..., Any]:
        """The self-energy function."""
        return self._function

    def selfenergy(
        self,
        energy: float = 0.0,
        args: Sequence[Any] = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> NDArray[np.complex128]:
        """The self-energy on the interface orbitals at ``energy``, a complex ndarray."""
        return np.asarray(self._call(energy, args, params), dtype=complex)


class ModesLead(_FunctionLead):
    """A lead given by its modes on interface sites, as Kwant's.

    Parameters
    ----------
    modes_func : callable
        ``modes_func(energy, args=(), *, params=None)`` returning
        ``(PropagatingModes, StabilizedModes)`` of :mod:`mesoscopic.leads`, with the lead's
        cell ``-1`` being the orbitals of ``interface`` in order (as
        :func:`mesoscopic.leads.modes` returns for a lead whose hopping couples them all).
    interface : sequence of Site
        The sites of the scattering region the lead couples to.
    parameters : sequence of str, optional
        Names of the parameters the function reads from ``params``.
    with_selfenergy : bool, keyword-only
        True (the default): the self-energy is that of the modes. False: only the modes
        are known (``precalculate(what='modes')``, as Kwant's): Green's functions refuse
        the lead.

    Attributes
    ----------
    has_modes : bool
        True.
    has_selfenergy : bool
        ``with_selfenergy``.
    """

    has_modes = True

    def __init__(
        self,
        modes_func: Any,
        interface: Sequence[Any],
        parameters: Sequence[str] = (),
        *,
        with_selfenergy: bool = True,
    ) -> None:
        super().__init__(modes_func, interface, parameters, what="modes function")
        self._freeze_set("has_selfenergy", bool(with_selfenergy))

    @property
    def modes_func(self) -> Callable[..., Any]:
        """The modes function."""
        return self._function

    def modes(
        self,
        energy: float = 0.0,
        args: Sequence[Any] = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """``(PropagatingModes, StabilizedModes)`` at ``energy``."""
        return self._call(energy, args, params)

    def selfenergy(
        self,
        energy: float = 0.0,
        args: Sequence[Any] = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> NDArray[np.complex128]:
        """The self-energy on the interface orbitals at ``energy``."""
        if not self.has_selfenergy:
            raise ValueError(
                "this lead holds only its modes (precalculated with what='modes'), not its "
                "self-energy; precalculate with what='all' (or 'selfenergy')"
            )
        return np.asarray(self.modes(energy, args, params=params)[1].selfenergy, dtype=complex)


#: The kinds of lead a :class:`System` holds.
AnyLead = InfiniteSystem | SelfEnergyLead | ModesLead


class _KwantLeadMethod:
    """A method of a lead object given in Kwant's form, called as Kwant calls it:
    ``method(energy, args, params=params)``, with ``params=None`` when none were given."""

    def __init__(self, lead: Any, name: str) -> None:
        self.lead = lead
        self.name = name
        self.__name__ = f"{type(lead).__name__}.{name}"

    def __call__(self, energy: float, *, params: Mapping[str, Any] | None = None) -> Any:
        method = getattr(self.lead, self.name)
        return method(energy, params=dict(params) if params else None)


def _kwant_style_lead(lead: Any, interface: tuple[Site, ...], index: int) -> AnyLead:
    """A lead object in Kwant's form (with ``modes`` and/or ``selfenergy`` methods, as
    Kwant's solvers call them) as a lead of this package on the given interface.

    With ``modes`` it is a :class:`ModesLead` (its ``selfenergy`` too, when it has one);
    with only ``selfenergy`` it is a :class:`SelfEnergyLead` without modes, as Kwant
    treats such a lead.
    """
    has_modes = callable(getattr(lead, "modes", None))
    has_selfenergy = callable(getattr(lead, "selfenergy", None))
    if not (has_modes or has_selfenergy):
        raise TypeError(
            f"leads[{index}] must be a lead: an InfiniteSystem, SelfEnergyLead or ModesLead, "
            "or an object with Kwant's lead methods modes(energy, args, *, params) and/or "
            f"selfenergy(energy, args, *, params); got {_checks._show(lead)}"
        )
    parameters = tuple(getattr(lead, "parameters", ()) or ())
    if has_modes:
        return ModesLead(
            _KwantLeadMethod(lead, "modes"),
            interface,
            parameters,
            with_selfenergy=has_selfenergy,
        )
    return SelfEnergyLead(
        _KwantLeadMethod(lead, "selfenergy"), interface, parameters, with_modes=False
    )


class LeadList(Sequence[AnyLead]):
    """The leads of a finalized :class:`System`: a read-only sequence, except that a lead
    may be replaced, as in Kwant: ``fsys.leads[k] = lead``.

    The new lead must fit lead ``k``'s interface (``fsys.lead_interfaces[k]``, which does
    not change): an :class:`InfiniteSystem` whose unit cell hops into the next cell from as
    many sites with the same orbitals, a :class:`SelfEnergyLead` or :class:`ModesLead` on the
    same sites, or an object with Kwant's lead methods ``modes(energy, args, *, params)``
    and/or ``selfenergy(energy, args, *, params)`` (an object with only ``selfenergy`` is a
    lead without modes, as in Kwant: see :class:`SelfEnergyLead`'s ``with_modes``). The
    system's :attr:`~System.parameters` follow the new lead. Leads cannot be added or
    removed here: use :meth:`System.with_leads`, or the Builder.
    """

    __slots__ = ("_leads", "_system")

    def __init__(self, system: System, leads: Sequence[AnyLead]) -> None:
        self._system = system
        self._leads: tuple[AnyLead, ...] = tuple(leads)

    def __len__(self) -> int:
        return len(self._leads)

    def __getitem__(self, index: Any) -> Any:
        return self._leads[index]

    def __iter__(self) -> Iterator[AnyLead]:
        return iter(self._leads)

    def __setitem__(self, index: int, lead: Any) -> None:
        self._system._replace_lead(index, lead)

    def __delitem__(self, index: Any) -> None:
        raise TypeError(
            "leads cannot be removed from a finalized system; remove the lead from the "
            "Builder and finalize again"
        )

    def append(self, lead: Any) -> None:
        raise TypeError(
            "leads cannot be added to a finalized system here; use "
            "fsys.with_leads([lead]) (a new system), or add the lead to the Builder"
        )

    def __add__(self, other: Any) -> tuple[AnyLead, ...]:
        return self._leads + tuple(other)

    def __radd__(self, other: Any) -> tuple[AnyLead, ...]:
        return tuple(other) + self._leads

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LeadList):
            return self._leads == other._leads
        if isinstance(other, (tuple, list)):
            return self._leads == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LeadList({list(self._leads)!r})"


def _check_flux_name(name: Any) -> str | None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"magnetic_flux must be a parameter name (str), got {name!r}")
    return name


_check_degeneracy = _checks.spin_degeneracy


# --------------------------------------------------------------------------------------
# Finite systems
# --------------------------------------------------------------------------------------


class System(_DiscreteSymmetries, _Frozen):
    """A finalized scattering region with its leads.

    Made by ``Builder.finalized()`` (or ``ArrayBuilder.finalized()``), which hands over
    its parts through the keyword-only constructor below; this module knows no builder.
    Immutable: its arrays are read-only, its sequences are tuples, and attributes cannot
    be assigned.

    Parameters
    ----------
    sites : sequence of Site, or a callable returning them
        All sites, in the order of the Hamiltonian's rows; a callable is called on the
        first access of :attr:`sites` (then `pos` is required).
    norbs : array_like of int, shape (n_sites,)
        Orbitals per site.
    onsite, hoppings : sequence of TermGroup
        Onsite terms and hoppings ``<rows|H|cols>`` (each hopping once; its Hermitian
        conjugate is implied), with site indices into `sites`.
    leads : sequence of InfiniteSystem
        The leads, numbered in this order.
    lead_interfaces : sequence of array_like of int
        For each lead, the indices of the sites that stand for the lead's cell sites
        ``leads[k].interface_sites`` (same order): the sites with hoppings into the lead.
    pos : array_like, shape (n_sites, dim), optional
        Site positions; computed from `sites` when not given.
    spin_degeneracy : {1, 2}
    magnetic_flux : str, optional
        Name of the flux parameter (see the module notes).
    lead_paddings : sequence of array_like of int, optional
        For each lead, the indices of its padding sites (none by default).
    conservation_law, time_reversal, particle_hole, chiral : optional
        The Builder's conservation law and discrete symmetries (matrices, or functions of
        the site), read by :meth:`discrete_symmetry`.

    Attributes
    ----------
    sites : tuple of Site
        All sites, in the order of the Hamiltonian's rows (orbital blocks).
    pos : ndarray, shape (n_sites, dim)
        Site positions (Kwant's method ``pos(i)`` is ``pos[i]`` here).
    norbs : ndarray of int, shape (n_sites,)
        Orbitals per site; ``orb_offsets`` (n_sites + 1,) locates each site's block.
    leads : tuple of InfiniteSystem, SelfEnergyLead or ModesLead
        The leads, numbered in the order they were attached: finalized builder leads, or
        leads given by a function (:class:`SelfEnergyLead`, :class:`ModesLead`).
    lead_interfaces : tuple of ndarray of int
        For each lead, the indices of the sites that stand for the lead's cell sites
        ``leads[k].interface_sites`` (same order), the sites with hoppings into the
        lead, as Kwant's interface; for a SelfEnergyLead or ModesLead, the indices of its
        ``interface`` sites.
    lead_paddings : tuple of ndarray of int
        For each lead, the indices of the sites that :meth:`Builder.attach_lead` added to
        the scattering region for it (the lead's ``padding``), sorted by site, as Kwant's;
        empty for leads given by a function.
    parameters : frozenset of str
        Names of all parameters the value functions take.
    spin_degeneracy : int
        1 or 2; multiplies conductances.

    Examples
    --------
    >>> import mesoscopic as meso
    >>> lat = meso.lattice.chain(norbs=1)
    >>> syst = meso.Builder()
    >>> syst[(lat(i) for i in range(2))] = 0.0
    >>> syst[lat.neighbors()] = -1.0
    >>> fsys = syst.finalized()
    >>> fsys.pos.flags.writeable
    False
    >>> try:
    ...     fsys.spin_degeneracy = 2
    ... except AttributeError as exc:
    ...     print(str(exc).split(";")[0])
    System is finalized and immutable
    """

    pos: NDArray[np.float64]
    norbs: NDArray[np.int64]
    orb_offsets: NDArray[np.int64]
    leads: LeadList
    lead_interfaces: tuple[NDArray[np.int64], ...]
    lead_paddings: tuple[NDArray[np.int64], ...]
    parameters: frozenset[str]
    spin_degeneracy: int
    magnetic_flux: str | None
    conservation_law: Any
    time_reversal: Any
    particle_hole: Any
    chiral: Any
    _site_source: Callable[[], Sequence[Site]] | None
    _onsite: tuple[TermGroup, ...]
    _hoppings: tuple[TermGroup, ...]
    _hop_i: NDArray[np.int64]
    _hop_j: NDArray[np.int64]
    _takes_any_parameter: bool
    _chi: NDArray[np.float64] | None

    def __init__(
        self,
        builder: Any = None,
        /,
        *,
        sites: Sequence[Site] | Callable[[], Sequence[Site]] = (),
        norbs: ArrayLike = (),
        onsite: Sequence[TermGroup] = (),
        hoppings: Sequence[TermGroup] = (),
        leads: Sequence[AnyLead] = (),
        lead_interfaces: Sequence[ArrayLike] = (),
        pos: ArrayLike | None = None,
        spin_degeneracy: int = 1,
        magnetic_flux: str | None = None,
        lead_paddings: Sequence[ArrayLike] | None = None,
        conservation_law: Any = None,
        time_reversal: Any = None,
        particle_hole: Any = None,
        chiral: Any = None,
    ) -> None:
        if builder is not None:
            self._adopt(builder, spin_degeneracy, magnetic_flux)
            return
        set_ = self._freeze_set
        set_("_cache", {})
        if callable(sites):
            if pos is None:
                raise ValueError("sites given as a callable need their positions, pos=")
            set_("_site_source", sites)
        else:
            sites = tuple(sites)
            for site in sites:
                if not isinstance(site, Site):
                    raise TypeError(f"sites must be Site objects, got {_checks._show(site)}")
            self._cache["sites"] = sites
            set_("_site_source", None)
            if pos is None:
                pos = _site_positions(sites)
        set_("pos", _frozen(pos, float))
        if self.pos.ndim != 2 or len(self.pos) == 0:
            raise ValueError("the system has no sites")
        num_sites = len(self.pos)
        if not callable(sites) and len(sites) != num_sites:
            raise ValueError(f"{len(sites)} sites but {num_sites} positions")
        set_("spin_degeneracy", _check_degeneracy(spin_degeneracy))
        set_("magnetic_flux", _check_flux_name(magnetic_flux))
        set_("conservation_law", conservation_law)
        set_("time_reversal", time_reversal)
        set_("particle_hole", particle_hole)
        set_("chiral", chiral)
        set_("norbs", _check_norbs(norbs, num_sites))
        set_("orb_offsets", _offsets(self.norbs))
        set_("_onsite", _check_groups(onsite, "onsite terms"))
        set_("_hoppings", _check_groups(hoppings, "hoppings"))
        _check_terms_in_range(self._onsite, num_sites, "onsite terms")
        _check_terms_in_range(self._hoppings, num_sites, "hoppings")
        for group in (*self._onsite, *self._hoppings):
            if callable(group.value) and not group.vectorized and group._site_table is None:
                object.__setattr__(group, "_site_table", self._site_table)
        leads = tuple(leads)
        for lead in leads:
            if not isinstance(lead, (InfiniteSystem, SelfEnergyLead, ModesLead)):
                raise TypeError(
                    "leads must be InfiniteSystems (finalized builder leads), SelfEnergyLeads "
                    f"or ModesLeads, got {_checks._show(lead)}"
                )
        interfaces = tuple(_frozen_indices(i, "a lead interface") for i in lead_interfaces)
        if len(interfaces) != len(leads):
            raise ValueError(
                f"{len(leads)} leads but {len(interfaces)} lead interfaces; give one per lead"
            )
        for k, (lead, iface) in enumerate(zip(leads, interfaces)):
            if len(iface) and (iface.min() < 0 or iface.max() >= num_sites):
                raise ValueError(
                    f"the interface of lead {k} refers to sites outside 0..{num_sites - 1}"
                )
            if isinstance(lead, InfiniteSystem):
                if not len(lead.interface_sites):
                    raise ValueError(
                        f"lead {k} has no hoppings between its unit cells (its cells are "
                        "disconnected), so it couples to nothing and carries no current; add "
                        "hoppings across its period, or leave the lead out"
                    )
                if len(iface) != len(lead.interface_sites):
                    raise ValueError(
                        f"the interface of lead {k} has {len(iface)} sites, but "
                        f"{len(lead.interface_sites)} sites of its unit cell hop into the "
                        "next cell"
                    )
                continue
            if len(iface) != len(lead.interface):
                raise ValueError(
                    f"the interface of lead {k} has {len(iface)} sites, but the "
                    f"{type(lead).__name__} has {len(lead.interface)} interface sites"
                )
            if not callable(sites):
                for site, index in zip(lead.interface, iface):
                    if site != sites[int(index)]:
                        raise ValueError(
                            f"the interface of lead {k} puts {_described(site)} on site "
                            f"{int(index)}, "
                            f"which is {_described(sites[int(index)])}"
                        )
        set_("leads", LeadList(self, leads))
        set_("lead_interfaces", interfaces)
        if lead_paddings is None:
            lead_paddings = [()] * len(leads)
        paddings = tuple(_frozen_indices(p, "a lead padding") for p in lead_paddings)
        if len(paddings) != len(leads):
            raise ValueError(
                f"{len(leads)} leads but {len(paddings)} lead paddings; give one per lead"
            )
        for k, padding in enumerate(paddings):
            if len(padding) and (padding.min() < 0 or padding.max() >= num_sites):
                raise ValueError(
                    f"the padding of lead {k} refers to sites outside 0..{num_sites - 1}"
                )
        set_("lead_paddings", paddings)
        hop_i = np.concatenate([g.rows for g in self._hoppings]) if self._hoppings else ()
        hop_j = np.concatenate([g.cols for g in self._hoppings]) if self._hoppings else ()
        set_("_hop_i", _frozen(hop_i, np.int64))
        set_("_hop_j", _frozen(hop_j, np.int64))
        self._set_lead_derived()

    def _set_lead_derived(self) -> None:
        """The values derived from the leads: parameter names and the field's gauge."""
        set_ = self._freeze_set
        names = _group_parameters(self._onsite) | _group_parameters(self._hoppings)
        takes_any = _groups_take_any_parameter(self._onsite) or _groups_take_any_parameter(
            self._hoppings
        )
        for flead in self.leads:
            names |= flead.parameters
            if isinstance(flead, InfiniteSystem):
                takes_any = takes_any or flead._takes_any_parameter
        set_("_takes_any_parameter", takes_any)
        if self.magnetic_flux:
            names.add(self.magnetic_flux)
        set_("parameters", frozenset(names))
        chi = None if self.magnetic_flux is None else _frozen(self._gauge(), float)
        set_("_chi", chi)

    def _replace_lead(self, index: Any, lead: Any) -> None:
        """``leads[index] = lead`` (see :class:`LeadList`)."""
        count = len(self.leads)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"a lead is replaced by its index (int), got {_checks._show(index)}")
        if not -count <= index < count:
            raise IndexError(
                f"lead {int(index)} does not exist; this system has leads 0..{count - 1}"
            )
        k = int(index) % count
        iface = self.lead_interfaces[k]
        interface = tuple(self.sites[int(i)] for i in iface)
        if isinstance(lead, InfiniteSystem):
            if len(lead.interface_sites) != len(iface) or np.any(
                lead.norbs[lead.interface_sites] != self.norbs[iface]
            ):
                raise ValueError(
                    f"the new lead {k} does not fit its interface: {len(iface)} sites with "
                    f"{self.norbs[iface].tolist()} orbitals, but {len(lead.interface_sites)} "
                    "sites of its unit cell hop into the next cell, with "
                    f"{lead.norbs[lead.interface_sites].tolist()} orbitals"
                )
        elif isinstance(lead, (SelfEnergyLead, ModesLead)):
            if tuple(lead.interface) != interface:
                raise ValueError(
                    f"the new lead {k} is on the interface sites {list(lead.interface)}, but "
                    f"lead {k} of this system is on {list(interface)}; give a lead on those "
                    "sites, or add it with with_leads()"
                )
        else:
            lead = _kwant_style_lead(lead, interface, k)
        previous = self.leads
        leads = (*previous._leads[:k], lead, *previous._leads[k + 1 :])
        self._freeze_set("leads", LeadList(self, leads))
        try:
            self._set_lead_derived()
        except Exception:
            self._freeze_set("leads", previous)
            self._set_lead_derived()
            raise

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # A copy (copy.copy, pickle) gets its own lead list, bound to itself.
        object.__setattr__(self, "leads", LeadList(self, tuple(self.leads)))

    def content_digest(self) -> str:
        """A hash of everything that defines this system, stable across runs.

        Sites, orbitals, hoppings, leads, spin degeneracy, field parameter, and the values:
        constants by their numbers, value functions by their code and what they close
        over. Used to tell checkpoints of different systems apart.
        """
        digest = hashlib.sha256()
        for array in (self.pos, self.norbs, self._hop_i, self._hop_j):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr((self.spin_degeneracy, self.magnetic_flux)).encode())
        _digest_groups([*self._onsite, *self._hoppings], digest)
        for flead, interface in zip(self.leads, self.lead_interfaces):
            digest.update(np.ascontiguousarray(interface).tobytes())
            if not isinstance(flead, InfiniteSystem):
                flead._digest(digest)
                continue
            for array in (flead.pos, flead.norbs):
                digest.update(np.ascontiguousarray(array).tobytes())
            for name in ("_onsite", "_cell", "_inter"):
                _digest_groups(getattr(flead, name, []), digest)
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"<System with {len(self.pos)} sites, {len(self._hop_i)} hoppings, "
            f"{len(self.leads)} leads>"
        )

    @property
    def sites(self) -> tuple[Site, ...]:
        """All sites, in the order of the Hamiltonian's rows."""
        cached = self._cache.get("sites")
        if cached is None:
            assert self._site_source is not None  # given sites are cached at construction
            cached = tuple(self._site_source())
            if len(cached) != len(self.pos):
                raise ValueError(f"{len(cached)} sites but {len(self.pos)} positions")
            self._cache["sites"] = cached
        return cached

    def _site_table(self) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        """Tags (n, d) and positions (n, dim) of all sites by index, for value functions
        called with columns (:mod:`mesoscopic._autovec`); None where the sites' families
        differ in tag length or in the dimension of their positions. Made once."""
        if "site_table" not in self._cache:
            self._cache["site_table"] = self._make_site_table()
        table: tuple[NDArray[np.int64], NDArray[np.float64]] | None = self._cache["site_table"]
        return table

    def _make_site_table(self) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        dim = self.pos.shape[1]
        source = self._site_source
        if isinstance(source, SiteSource):
            families = source.families
            if any(getattr(f, "prim_vecs", None) is None for f in families):
                return None
            if any(np.asarray(f.prim_vecs).shape[1] != dim for f in families):
                return None
            fam = source._fam[source._order]
            lengths = {source._lengths[int(f)] for f in np.unique(fam)}
            if len(lengths) != 1:
                return None
            tags = np.ascontiguousarray(source._tags[source._order][:, : lengths.pop()])
        else:
            sites = self.sites
            tag_list = [tuple(site.tag) for site in sites]
            if len({len(t) for t in tag_list}) != 1:
                return None
            if any(len(site.pos) != dim for site in sites):
                return None
            tags = np.array(tag_list, dtype=np.int64)
        return tags, np.asarray(self.pos, dtype=float)

    @property
    def id_by_site(self) -> Mapping[Site, int]:
        """Index of each site (read-only mapping)."""
        return _id_by_site(self)

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    @property
    def hopping_indices(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Hoppings as two read-only index arrays ``(i, j)``, each hopping once: the
        Hamiltonian holds ``<i|H|j>`` and its conjugate ``<j|H|i>``. Current arrays of
        :mod:`mesoscopic.plot` and :func:`mesoscopic.bond_currents` follow this order."""
        return self._hop_i, self._hop_j

    @property
    def graph(self) -> Graph:
        """The system's graph, as Kwant's: sites are nodes and each hopping is two edges
        ``(i, j)`` and ``(j, i)``; see :class:`Graph` (:attr:`hopping_indices` lists each
        hopping once, as two arrays)."""
        cached = self._cache.get("graph")
        if cached is None:
            cached = Graph(len(self.pos), self._hop_i, self._hop_j)
            self._cache["graph"] = cached
        return cached

    @property
    def hoppings(self) -> tuple[tuple[Any, tuple[str, ...] | None], ...]:
        """Each edge's hopping value, as Kwant's ``FiniteSystem.hoppings``, in the order of
        :attr:`graph`'s edges: ``(value, parameter names or None)`` for the edge ``(i, j)``
        whose value gives ``<i|H|j>`` as set in the Builder, ``(Other, ())`` for its
        reverse (the Hermitian conjugate)."""
        cached = self._cache.get("hoppings")
        if cached is None:
            given = {}
            for g in self._hoppings:
                pair = _value_parameter_pair(g)
                for r, c in zip(g.rows.tolist(), g.cols.tolist()):
                    given[(c, r) if g.conj else (r, c)] = pair
            cached = tuple(given.get(edge, (Other, ())) for edge in self.graph)
            self._cache["hoppings"] = cached
        return cached

    def _adjacency(self) -> sp.csr_matrix:
        n = len(self.pos)
        adj = sp.coo_matrix((np.ones(len(self._hop_i)), (self._hop_i, self._hop_j)), shape=(n, n))
        return (adj + adj.T).tocsr()

    def _gauge(self) -> NDArray[np.float64]:
        """The gauge function chi at every site (each lead's gauge on its interface)."""
        if self.pos.shape[1] < 2:
            raise ValueError("a magnetic field needs a system in at least two dimensions")
        chi = np.zeros(len(self.pos))
        owner = np.full(len(self.pos), -1)
        for k, (flead, iface) in enumerate(zip(self.leads, self.lead_interfaces)):
            if not isinstance(flead, InfiniteSystem):
                continue  # a self-energy or modes lead brings its own gauge
            direction = _lead_direction(flead.symmetry.period)
            values = _gauge_function(self.pos[iface, :2], direction)
            clash = (owner[iface] >= 0) & ~np.isclose(chi[iface], values)
            if np.any(clash):
                raise ValueError(
                    f"the site at {self.pos[iface[np.argmax(clash)]].tolist()} is an interface "
                    "site of two leads in different directions; enlarge the scattering region"
                )
            chi[iface] = values
            owner[iface] = k
        return chi

    def _phase_function(
        self, params: Mapping[str, Any]
    ) -> Callable[[TermGroup], NDArray[np.complex128] | None] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0:
            return None

        chi = self._chi
        assert chi is not None  # set whenever magnetic_flux is

        def phases(g: TermGroup) -> NDArray[np.complex128]:
            ra, rb = self.pos[g.rows, :2], self.pos[g.cols, :2]
            integral = _landau_line_integral(ra, rb) + chi[g.rows] - chi[g.cols]
            return np.exp(-2j * np.pi * flux * integral)

        return phases

    def hamiltonian(
        self, i: int, j: int, *args: Any, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The Hamiltonian block ``<i|H|j>`` between sites ``i`` and ``j``, as Kwant's method.

        Parameters
        ----------
        i, j : int
            Site indices (into ``sites``).
        params : dict, optional
            Parameter values by name.

        Returns
        -------
        complex or (norbs_i, norbs_j) complex ndarray
            A number for one-orbital sites, else the block (zero where no hopping).

        Notes
        -----
        Each call evaluates only this element's value (its value function is called for
        this site or hopping alone); for many elements, take them from one
        :meth:`hamiltonian_submatrix`.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain(norbs=1)
        >>> syst = meso.Builder()
        >>> syst[(lat(x) for x in range(3))] = lambda site, v: v
        >>> syst[lat.neighbors()] = -1.0
        >>> fsys = syst.finalized()
        >>> fsys.hamiltonian(1, 1, params={"v": 0.5}), fsys.hamiltonian(0, 1, params={"v": 0.5})
        ((0.5+0j), (-1+0j))
        """
        params = _legacy_params(args, params)
        count = len(self.pos)
        for name, index in (("i", i), ("j", j)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{name} must be a site index (int), got {index!r}")
            if not 0 <= index < count:
                raise ValueError(f"site index {name}={index} is out of range 0..{count - 1}")
        # Only the value function(s) of this element are called, as in Kwant.
        params = _params_dict(params)
        _warn_unused_parameters(params, self.parameters, self._takes_any_parameter)
        terms = self._onsite if i == j else self._hoppings
        wanted = []
        for g in terms:
            keep = ((g.rows == i) & (g.cols == j)) | ((g.rows == j) & (g.cols == i))
            if np.any(keep):
                wanted.append(g._subset(keep))
        onsite, hoppings = (wanted, []) if i == j else ([], wanted)
        matrix = _assemble(
            self.num_orbitals,
            self.orb_offsets,
            onsite,
            hoppings,
            params,
            phases=self._phase_function(params),
        ).tocsr()
        rows = slice(self.orb_offsets[i], self.orb_offsets[i + 1])
        cols = slice(self.orb_offsets[j], self.orb_offsets[j + 1])
        block = np.asarray(matrix[rows, cols].toarray())
        return complex(block[0, 0]) if block.shape == (1, 1) else block

    def hamiltonian_submatrix(
        self,
        args: Sequence[Any] = (),
        to_sites: Any = None,
        from_sites: Any = None,
        sparse: bool = False,
        return_norb: bool = False,
        *,
        params: Mapping[str, Any] | None = None,
        check_hermiticity: bool = True,
    ) -> Any:
        """The Hamiltonian of the scattering region (without leads), or a block of it.

        Parameters
        ----------
        args : tuple, optional
            Positional parameters (Kwant's older convention); use `params` instead.
        to_sites, from_sites : sequence of int, optional
            Indices (into :attr:`sites`) of the sites of the rows and of the columns, in
            the order wanted; ``None`` (the default) is every site, in order.
        sparse : bool
            Return a ``scipy.sparse.coo_matrix`` (as Kwant) instead of a dense array.
        return_norb : bool
            Also return the orbital counts of the row sites and of the column sites.
        params : dict, optional
            Values of the parameters the value functions take, by name.
        check_hermiticity : bool
            Refuse a non-Hermitian onsite value (ValueError).

        Returns
        -------
        ndarray or scipy.sparse.coo_matrix, shape (n_row_orbitals, n_column_orbitals)
            Complex Hamiltonian elements ``<to|H|from>``, orbitals ordered site by site.
        to_norb, from_norb : ndarray of int
            Only with ``return_norb``: orbitals per row site and per column site.

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain()
        >>> syst = meso.Builder()
        >>> syst[lat(0)] = lambda site, v: v
        >>> syst.finalized().hamiltonian_submatrix(params={"v": 2.0}).real.tolist()
        [[2.0]]
        """
        to_idx = self._site_selection(to_sites, "to_sites")
        from_idx = self._site_selection(from_sites, "from_sites")
        params = _params_dict(_legacy_params(args, params))
        if not sparse:
            rows = self.num_orbitals if to_idx is None else int(self.norbs[to_idx].sum())
            cols = self.num_orbitals if from_idx is None else int(self.norbs[from_idx].sum())
            _check_dense(max(rows, cols), "the dense Hamiltonian of the scattering region")
        mat = self._hamiltonian_csr(params, check_hermiticity)
        if to_idx is not None:
            mat = mat[self._orbitals_of(to_idx), :]
        if from_idx is not None:
            mat = mat[:, self._orbitals_of(from_idx)]
        out = mat.tocoo() if sparse else mat.toarray()
        if return_norb:
            to_norb = self.norbs if to_idx is None else self.norbs[to_idx]
            from_norb = self.norbs if from_idx is None else self.norbs[from_idx]
            return out, to_norb.copy(), from_norb.copy()
        return out

    def _hamiltonian_csr(
        self, params: Mapping[str, Any] | None, check_hermiticity: bool = True
    ) -> sp.csr_matrix:
        """:meth:`hamiltonian_submatrix` of all sites as the solvers take it: a CSR matrix
        with sorted indices (no round trip through Kwant's COO format)."""
        params = _params_dict(params)
        _warn_unused_parameters(params, self.parameters, self._takes_any_parameter)
        return _assemble(
            self.num_orbitals,
            self.orb_offsets,
            self._onsite,
            self._hoppings,
            params,
            phases=self._phase_function(params),
            check_hermiticity=check_hermiticity,
            cache=self._cache,
        )

    def _hopping_matrix(self, params: Mapping[str, Any]) -> sp.csr_matrix:
        """The hoppings alone (no onsite value function is called), sparse: what a current
        needs, as Kwant's operators evaluate only the matrix elements they use."""
        params = _params_dict(params)
        return _assemble(
            self.num_orbitals,
            self.orb_offsets,
            (),
            self._hoppings,
            params,
            phases=self._phase_function(params),
        )

    def _site_selection(self, sites: Any, name: str) -> NDArray[np.int64] | None:
        """Site indices given as `to_sites` / `from_sites` (None: all sites)."""
        if sites is None:
            return None
        try:
            idx = np.asarray(sites)
        except (TypeError, ValueError):
            idx = np.asarray([object()])
        if idx.ndim == 1 and idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(
                f"{name} must be a sequence of site indices (ints, as in Kwant) or None, got "
                f"{_checks._show(sites)}"
            )
        n = len(self.sites)
        if np.any((idx < -n) | (idx >= n)):
            raise IndexError(
                f"{name} holds site index {int(idx[(idx < -n) | (idx >= n)][0])}; this system "
                f"has sites 0..{n - 1}"
            )
        return np.asarray(idx % n, dtype=np.int64)

    def _orbitals_of(self, site_indices: NDArray[np.int64]) -> NDArray[np.int64]:
        """Orbital indices of these sites, site by site."""
        if len(site_indices) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(
            [
                np.arange(self.orb_offsets[i], self.orb_offsets[i] + self.norbs[i])
                for i in site_indices
            ]
        ).astype(np.int64)

    @property
    def onsites(self) -> tuple[tuple[Any, tuple[str, ...] | None], ...]:
        """Each site's onsite value, as Kwant's ``FiniteSystem.onsites``: a pair ``(value,
        parameter names)`` per site (in :attr:`sites` order), the names ``None`` for a
        constant."""
        cached = self._cache.get("onsites")
        if cached is None:
            cached = _value_parameter_pairs(self._onsite, len(self.pos))
            self._cache["onsites"] = cached
        return cached

    def lead_interface_orbitals(self, lead: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Orbital indices of a lead's interface: (system orbitals, lead-cell orbitals).

        The system orbitals of the sites with hoppings into lead `lead`, and the orbitals
        of the lead cell they stand for (those with hoppings into the next cell), in
        matching order.
        """
        flead = self.leads[lead]
        iface = self.lead_interfaces[lead]

        def orbitals(offsets: NDArray[np.int64], sites: NDArray[np.int64]) -> NDArray[np.int64]:
            return np.concatenate(
                [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in sites]
            )

        if not isinstance(flead, InfiniteSystem):
            system_orbitals = orbitals(self.orb_offsets, iface)
            return system_orbitals, np.arange(system_orbitals.size, dtype=np.int64)
        cell = flead.interface_sites
        if np.any(self.norbs[iface] != flead.norbs[cell]):
            k = int(np.argmax(self.norbs[iface] != flead.norbs[cell]))
            raise ValueError(
                f"the site at {self.pos[iface[k]].tolist()} has {int(self.norbs[iface[k]])} "
                f"orbitals in the system but {int(flead.norbs[cell[k]])} in lead {lead}"
            )
        return orbitals(self.orb_offsets, iface), orbitals(flead.orb_offsets, cell)

    def with_leads(
        self,
        leads: Sequence[AnyLead],
        lead_interfaces: Sequence[ArrayLike] | None = None,
    ) -> System:
        """This system with more leads attached after its own (a new System).

        Parameters
        ----------
        leads : sequence of SelfEnergyLead, ModesLead or InfiniteSystem
            The leads to add, numbered ``len(self.leads), ...`` in this order.
        lead_interfaces : sequence of array_like of int, optional
            Site indices of each new lead's interface; by default those of the sites in
            each SelfEnergyLead's or ModesLead's ``interface`` (required for InfiniteSystems).

        Returns
        -------
        System

        Examples
        --------
        A wide-band probe on the middle site of a chain:

        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain(norbs=1)
        >>> syst = meso.Builder()
        >>> syst[(lat(i) for i in range(3))] = 0.0
        >>> syst[lat.neighbors()] = -1.0
        >>> probe = meso.system.SelfEnergyLead(lambda e: [[-0.5j]], [lat(1)])
        >>> len(syst.finalized().with_leads([probe]).leads)
        1
        """
        leads = tuple(leads)
        interfaces: list[Any] = []
        if lead_interfaces is None:
            for k, lead in enumerate(leads):
                if isinstance(lead, InfiniteSystem):
                    raise ValueError(
                        f"leads[{k}] is an InfiniteSystem; give its interface site indices "
                        "as lead_interfaces="
                    )
                if not isinstance(lead, (SelfEnergyLead, ModesLead)):
                    raise TypeError(
                        f"leads[{k}] must be a SelfEnergyLead, ModesLead or InfiniteSystem, "
                        f"got {_checks._show(lead)}"
                    )
                indices = []
                for site in lead.interface:
                    try:
                        indices.append(self.id_by_site[site])
                    except (KeyError, TypeError):
                        raise ValueError(
                            f"the interface site {_described(site)} of leads[{k}] is not a site "
                            "of the "
                            "scattering region"
                        ) from None
                interfaces.append(np.array(indices, dtype=np.int64))
        else:
            interfaces.extend(lead_interfaces)
        return System(
            sites=self._site_source if self._site_source is not None else self.sites,
            norbs=self.norbs,
            onsite=self._onsite,
            hoppings=self._hoppings,
            leads=self.leads + leads,
            lead_interfaces=self.lead_interfaces + tuple(interfaces),
            pos=self.pos,
            spin_degeneracy=self.spin_degeneracy,
            magnetic_flux=self.magnetic_flux,
            lead_paddings=self.lead_paddings + tuple(() for _ in leads),
            **self._symmetries(),
        )

    def precalculate(
        self,
        energy: float = 0.0,
        args: Any = (),
        leads: Sequence[int] | None = None,
        what: str = "modes",
        *,
        params: Mapping[str, Any] | None = None,
    ) -> System:
        """A copy whose leads hold their modes (or self-energies) at one energy, as Kwant's.

        Useful when only the scattering region changes between calls: the lead modes are
        computed once. The copy's leads use these `params` whatever is passed later. Solved
        at another energy, a precalculated lead is computed again there, with a
        RuntimeWarning (Kwant would use the values of this `energy`, which are wrong
        there).

        Parameters
        ----------
        energy : float
            The energy at which the leads are evaluated.
        args : sequence
            Kwant's deprecated positional parameters (with a DeprecationWarning).
        leads : sequence of int, optional
            The leads to precalculate; all by default.
        what : {'modes', 'selfenergy', 'all'}
            What to store, as in Kwant: the modes ('modes': S-matrix, scattering states and
            LDOS, but no Green's function), the self-energy ('selfenergy': Green's
            functions and their transmissions, but no S-matrix elements, scattering states
            or LDOS: see :class:`LeadWithoutModesError`) or both ('all').
        params : dict, optional
            Parameter values by name.

        Returns
        -------
        System
            The copy; a precalculated lead becomes a :class:`ModesLead` or
            :class:`SelfEnergyLead` on the same interface sites. A builder lead whose unit
            cell has sites without hoppings into the next cell keeps its Hamiltonian for
            ``what='modes'`` (the same results, computed at each call).

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain(norbs=1)
        >>> syst = meso.Builder()
        >>> syst[(lat(x) for x in range(3))] = 0.0
        >>> syst[lat.neighbors()] = -1.0
        >>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
        >>> lead[lat(0)] = 0.0
        >>> lead[lat.neighbors()] = -1.0
        >>> syst.attach_lead(lead); syst.attach_lead(lead.reversed())
        []
        []
        >>> fixed = syst.finalized().precalculate(0.5)
        >>> round(meso.smatrix(fixed, 0.5).transmission(1, 0), 12)
        1.0
        """
        if what not in ("modes", "selfenergy", "all"):
            raise ValueError(f"what must be 'modes', 'selfenergy' or 'all', got {what!r}")
        params = _legacy_params(args, params)
        if self.magnetic_flux is not None:
            raise NotImplementedError(
                "precalculate is not available for a system with magnetic_flux= (its gauge "
                "depends on the lead types); put the Peierls phase in the value functions"
            )
        count = len(self.leads)
        chosen = list(range(count)) if leads is None else list(leads)
        for k in chosen:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < count:
                raise ValueError(
                    f"lead {k!r} does not exist; this system has leads 0..{count - 1}"
                )
        fixed: list[AnyLead] = list(self.leads)
        # As Kwant's: 'modes' keeps only the modes (no Green's function from the lead),
        # 'selfenergy' only the self-energy (no S-matrix elements or scattering states).
        keep_modes = what in ("modes", "all")
        keep_selfenergy = what in ("selfenergy", "all")

        def stored(k: int, lead: Any, part: str, cell: Any = None) -> _AtOneEnergy:
            compute = functools.partial(_lead_part, lead, part, params, cell)
            return _AtOneEnergy(compute(energy), energy, k, compute)

        for k in chosen:
            lead = self.leads[k]
            interface = [self.sites[i] for i in self.lead_interfaces[k]]
            names = sorted(lead.parameters)
            if isinstance(lead, InfiniteSystem):
                _, cell_orbs = self.lead_interface_orbitals(k)
                whole_cell = np.array_equal(cell_orbs, np.arange(lead.num_orbitals))
                if keep_modes and whole_cell:
                    fixed[k] = ModesLead(
                        stored(k, lead, "modes"),
                        interface,
                        names,
                        with_selfenergy=keep_selfenergy,
                    )
                elif keep_selfenergy:
                    # Sites of the cell outside the interface: the self-energy (on the
                    # interface) stands for both ('all'; its channels are the modes'
                    # up to a unitary change of basis).
                    fixed[k] = SelfEnergyLead(
                        stored(k, lead, "selfenergy", cell_orbs),
                        interface,
                        names,
                        with_modes=keep_modes,
                    )
                continue
            if keep_modes and not lead.has_modes:
                raise ValueError(
                    f"lead {k} is known only by its self-energy, so its modes cannot be "
                    "precalculated; use what='selfenergy' for it"
                )
            if keep_selfenergy and not lead.has_selfenergy:
                raise ValueError(
                    f"lead {k} holds only its modes, so its self-energy cannot be "
                    "precalculated; use what='modes' for it"
                )
            if isinstance(lead, ModesLead) and keep_modes:
                fixed[k] = ModesLead(
                    stored(k, lead, "modes"),
                    interface,
                    names,
                    with_selfenergy=keep_selfenergy,
                )
            else:
                fixed[k] = SelfEnergyLead(
                    stored(k, lead, "selfenergy"), interface, names, with_modes=keep_modes
                )
        return System(
            sites=self._site_source if self._site_source is not None else self.sites,
            norbs=self.norbs,
            onsite=self._onsite,
            hoppings=self._hoppings,
            leads=fixed,
            lead_interfaces=self.lead_interfaces,
            pos=self.pos,
            spin_degeneracy=self.spin_degeneracy,
            magnetic_flux=self.magnetic_flux,
            lead_paddings=self.lead_paddings,
            **self._symmetries(),
        )

    def slices(self) -> list[NDArray[np.int64]]:
        """Order sites into slices so the Hamiltonian is block tridiagonal.

        This is the slicing the recursive Green's function solver uses
        (:func:`mesoscopic.solvers._slicing.slice_orbitals` applied to the site
        graph): every hopping connects sites in the same or in neighbouring
        slices, each lead's interface lies inside one slice, and sites that no
        lead reaches are left out.

        Returns
        -------
        list of ndarray of int
            Site indices per slice.
        """
        from .solvers._slicing import slice_orbitals

        if not self.leads:
            raise ValueError("slicing needs at least one lead to start from; attach leads first")
        return list(slice_orbitals(self._adjacency(), self.lead_interfaces).slices)
