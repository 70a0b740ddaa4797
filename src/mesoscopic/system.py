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
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from . import _checks
from .lattice import Site

__all__ = ["InfiniteSystem", "System", "UnusedParameterWarning", "UserCodeError"]


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
    names, defaults, takes_all = _signature_info(func, len(sites))
    missing = [n for n in names if n not in params and n not in defaults]
    if missing:
        given = sorted(params) if params else "none"
        raise ValueError(
            f"missing parameter {missing[0]!r} needed by the {what} function "
            f"{_function_name(func)!r}; parameters given: {given}. "
            "Pass it at solve time, e.g. params={" + repr(missing[0]) + ": ...}"
        )
    kwargs = dict(params) if takes_all else {n: params[n] for n in names if n in params}
    try:
        return func(*sites, **kwargs)
    except Exception as exc:
        if isinstance(exc, UserCodeError) or _is_package_function(func):
            raise
        place = where() if where is not None else f"the {what} value"
        shown = ", ".join(f"{k}={_checks._show(v)}" for k, v in kwargs.items()) or "none"
        raise UserCodeError(
            f"the {what} value function {_function_name(func)}{_function_location(func)} "
            f"raised {type(exc).__name__}: {exc}\n"
            f"  while evaluating {place}\n"
            f"  with parameters: {shown}\n"
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
    pos = tuple(float(x) for x in np.ravel(site.pos))
    return f"{site!r} at position {pos}"


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


def _infer_norbs(builder: Any) -> dict[int, int]:
    """Orbitals per site family: declared, else from constant matrix values, else 1."""
    norbs: dict[int, int] = {}
    for site, value in builder.site_value_pairs():
        fam = site.family
        if fam.norbs is not None:
            norbs[id(fam)] = fam.norbs
        elif not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(id(fam), int(np.shape(value)[0]))
    for (a, b), value in builder.hopping_value_pairs():
        for fam in (a.family, b.family):
            if fam.norbs is not None:
                norbs[id(fam)] = fam.norbs
        if not callable(value) and np.ndim(value) == 2:
            norbs.setdefault(id(a.family), int(np.shape(value)[0]))
            norbs.setdefault(id(b.family), int(np.shape(value)[1]))
    return norbs


class _Group:
    """Terms sharing one value (constant or function) and one block shape.

    ``rows``/``cols`` are site indices (equal for onsite terms). ``sites`` holds
    what a value function receives: a list of Site (or Site pairs) for per-element
    calls, or a tuple of SiteArray for vectorized calls.
    """

    __slots__ = ("cols", "conj", "onsite", "rows", "shape", "sites", "value", "vectorized")

    def __init__(
        self,
        rows: NDArray[np.int64],
        cols: NDArray[np.int64],
        value: Any,
        shape: tuple[int, int],
        sites: Any,
        *,
        onsite: bool,
        vectorized: bool = False,
        conj: bool = False,
    ) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.cols = np.asarray(cols, dtype=np.int64)
        self.value = value
        self.shape = shape
        self.sites = sites
        self.onsite = onsite
        self.vectorized = vectorized
        self.conj = conj

    def describe(self, k: int, *, with_function: bool = True) -> str:
        """The term(s) for a message: site or hopping with positions, and the function."""
        kind = "onsite" if self.onsite else "hopping"
        if self.vectorized:
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
        """Evaluate the value for every term: array of shape (n, *shape)."""
        n = len(self.rows)
        what = "onsite" if self.onsite else "hopping"
        if not callable(self.value):
            block = _as_block(self.value, self.shape, self.describe, 0)
            return np.broadcast_to(block, (n, *self.shape))
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


def _group_terms(
    items: Sequence[Any],
    values: Sequence[Any],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    norbs: NDArray[np.int64],
    *,
    onsite: bool,
    vectorize: bool,
) -> list[_Group]:
    """Group terms by (value, block shape[, families]) for evaluation in bulk."""
    keyed: dict[tuple[Any, ...], list[int]] = {}
    for k, value in enumerate(values):
        shape = (int(norbs[rows[k]]), int(norbs[cols[k]]))
        if callable(value):
            key: tuple[Any, ...] = ("f", id(value), shape)
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
            from .lattice import SiteArray

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
            _Group(
                rows[idx],
                cols[idx],
                value,
                shape,
                sites,
                onsite=onsite,
                vectorized=bool(callable(value) and vectorize),
            )
        )
    return groups


def _group_parameters(groups: Sequence[_Group]) -> set[str]:
    names: set[str] = set()
    for g in groups:
        if callable(g.value):
            names |= _function_parameters(g.value, 1 if g.onsite else 2)
    return names


def _groups_take_any_parameter(groups: Sequence[_Group]) -> bool:
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
    onsite_groups: Sequence[_Group],
    hopping_groups: Sequence[_Group],
    params: Mapping[str, Any],
    *,
    phases: Callable[[_Group], NDArray[np.complex128] | None] | None = None,
    hermitian_part: bool = True,
    check_hermiticity: bool = True,
) -> sp.csr_matrix:
    """Sparse matrix from evaluated term groups (hoppings added with their conjugates)."""
    rows, cols, data = [], [], []

    def add(
        r_sites: NDArray[np.int64], c_sites: NDArray[np.int64], blocks: NDArray[np.complex128]
    ) -> None:
        na, nb = blocks.shape[1:]
        r = offsets[r_sites][:, None, None] + np.arange(na)[None, :, None]
        c = offsets[c_sites][:, None, None] + np.arange(nb)[None, None, :]
        r, c = np.broadcast_arrays(r, c)
        rows.append(r.ravel())
        cols.append(c.ravel())
        data.append(np.ascontiguousarray(blocks).ravel())

    for g in onsite_groups:
        blocks = g.blocks(params)
        if check_hermiticity and callable(g.value):
            # Relative to each block's own size: a Hamiltonian in any energy unit is checked
            # alike.
            asymmetry = np.abs(blocks - blocks.conj().transpose(0, 2, 1)).max(axis=(1, 2))
            bad = asymmetry > 1e-12 * np.abs(blocks).max(axis=(1, 2))
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
    return sp.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_orbitals, n_orbitals),
    ).tocsr()


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


class InfiniteSystem:
    """A finalized lead: one unit cell repeated along a translational symmetry.

    Cells are numbered ``m = 0, 1, 2, ...`` along the symmetry period (away from
    the scattering region when attached). :meth:`cell_hamiltonian` is
    ``<m|H|m>`` and :meth:`inter_cell_hopping` is ``<m|H|m+1>``, so the Bloch
    Hamiltonian is ``H(k) = h_cell + hop e^{ik} + hop^dagger e^{-ik}``.

    Attributes
    ----------
    sites : list of Site
        Sites of the unit cell (the fundamental domain).
    symmetry : TranslationalSymmetry
    spin_degeneracy : int
    """

    def __init__(
        self, builder: Any, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None
    ) -> None:
        sym = builder.symmetry
        self.symmetry = sym
        self.spin_degeneracy = _check_degeneracy(spin_degeneracy)
        self.magnetic_flux = magnetic_flux
        self.conservation_law = builder.conservation_law
        vectorize = bool(getattr(builder, "vectorize", False))
        sites = sorted(builder._sites, key=lambda s: (s.family.name, id(s.family), s.tag))
        if not sites:
            raise ValueError("the lead has no sites")
        index = {s: i for i, s in enumerate(sites)}
        norbs_map = _infer_norbs(builder)
        norbs = np.array([norbs_map.get(id(s.family), 1) for s in sites], dtype=np.int64)
        self.sites = sites
        self.pos = np.array([s.pos for s in sites], dtype=float)
        self.norbs = norbs
        self.orb_offsets = np.concatenate([[0], np.cumsum(norbs)]).astype(np.int64)
        site_idx = np.arange(len(sites), dtype=np.int64)
        self._onsite = _group_terms(
            sites,
            [builder._sites[s] for s in sites],
            site_idx,
            site_idx,
            norbs,
            onsite=True,
            vectorize=vectorize,
        )
        cell: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
        forward: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
        backward: tuple[list[Any], list[Any], list[int], list[int]] = ([], [], [], [])
        for (a, b), value in builder._hoppings.items():
            dom_b = sym.which(b)
            target = {0: cell, 1: forward, -1: backward}.get(dom_b)
            if target is None:
                raise ValueError(
                    f"lead hopping {(a, b)!r} spans {abs(dom_b)} periods; lead hoppings may "
                    "only connect neighbouring unit cells (use a longer period)"
                )
            target[0].append((a, b))
            target[1].append(value)
            target[2].append(index[a])
            target[3].append(index[sym.to_fd(b)])
        if not forward[0] and not backward[0]:
            raise ValueError(
                "the lead has no hoppings between neighbouring unit cells, so it carries no "
                "current; add hoppings across the period (e.g. lead[lat.neighbors()] = -t)"
            )

        def groups(
            part: tuple[list[Any], list[Any], list[int], list[int]], conj: bool
        ) -> list[_Group]:
            out = _group_terms(
                part[0],
                part[1],
                np.array(part[2], dtype=np.int64),
                np.array(part[3], dtype=np.int64),
                norbs,
                onsite=False,
                vectorize=vectorize,
            )
            for g in out:
                g.conj = conj
            return out

        self._cell = groups(cell, False)
        # <a|H|b> with b in the next cell is directly part of <0|H|1>; with b in the
        # previous cell its conjugate is.
        self._inter = groups(forward, False) + groups(backward, True)
        names = _group_parameters(self._onsite) | _group_parameters(self._cell)
        names |= _group_parameters(self._inter)
        self._takes_any_parameter = any(
            _groups_take_any_parameter(part) for part in (self._onsite, self._cell, self._inter)
        )
        if magnetic_flux:
            names.add(magnetic_flux)
            self._direction = _lead_direction(sym.period)
        self.parameters = frozenset(names)

    def __repr__(self) -> str:
        return (
            f"<InfiniteSystem with {len(self.sites)} sites per cell, {self.num_orbitals} orbitals>"
        )

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    def _phase_function(
        self, params: Mapping[str, Any]
    ) -> Callable[[_Group], NDArray[np.complex128] | None] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0:
            return None

        def phases(g: _Group) -> NDArray[np.complex128]:
            if g.vectorized:
                ra, rb = g.sites[0].pos[:, :2], g.sites[1].pos[:, :2]
            else:
                ra = np.array([a.pos[:2] for a, _ in g.sites])
                rb = np.array([b.pos[:2] for _, b in g.sites])
            return np.exp(-2j * np.pi * flux * _lead_line_integral(ra, rb, self._direction))

        return phases

    def cell_hamiltonian(
        self, params: Mapping[str, Any] | None = None, *, sparse: bool = False
    ) -> Any:
        """Hamiltonian of one unit cell, ``<m|H|m>``, shape (n, n) with n orbitals per cell."""
        params = _params_dict(params)
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
        )
        return mat if sparse else mat.toarray()

    def inter_cell_hopping(
        self, params: Mapping[str, Any] | None = None, *, sparse: bool = False
    ) -> Any:
        """Hopping from cell m+1 to cell m, ``<m|H|m+1>``, shape (n, n)."""
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
        for i, site in enumerate(self.sites):
            value = law(site) if callable(law) else law
            block = np.atleast_2d(np.asarray(value, dtype=complex))
            k = int(self.norbs[i])
            if block.shape != (k, k):
                raise ValueError(
                    f"conservation law on {site!r} has shape {block.shape}, expected ({k}, {k})"
                )
            if not np.allclose(block, block.conj().T, atol=1e-12):
                raise ValueError(f"conservation law on {site!r} must be Hermitian")
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

    def modes(self, energy: float = 0.0, params: Mapping[str, Any] | None = None) -> Any:
        """Propagating and stabilized modes at `energy` (see :func:`mesoscopic.leads.modes`)."""
        from . import leads

        return leads.modes(
            self.cell_hamiltonian(params),
            self.inter_cell_hopping(params),
            energy,
            projectors=self.conservation_projectors(),
        )

    def selfenergy(
        self, energy: float = 0.0, params: Mapping[str, Any] | None = None
    ) -> NDArray[np.complex128]:
        """Retarded self-energy on a copy of the unit cell next to the lead, shape (n, n)."""
        from . import leads

        h_cell = self.cell_hamiltonian(params)
        return leads.selfenergy(h_cell, self.inter_cell_hopping(params), energy)


def _check_degeneracy(value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(
            f"spin_degeneracy must be 1 (spinless or explicit spin orbitals) or 2 "
            f"(spin-degenerate), got {value!r}"
        )
    return int(value)


# --------------------------------------------------------------------------------------
# Finite systems
# --------------------------------------------------------------------------------------


class System:
    """A finalized scattering region with its leads.

    Attributes
    ----------
    sites : list of Site
        All sites, in the order of the Hamiltonian's rows (orbital blocks).
    pos : ndarray, shape (n_sites, dim)
        Site positions (Kwant's method ``pos(i)`` is ``pos[i]`` here).
    norbs : ndarray of int, shape (n_sites,)
        Orbitals per site; ``orb_offsets`` (n_sites + 1,) locates each site's block.
    leads : list of InfiniteSystem
        The leads, numbered in the order they were attached.
    lead_interfaces : list of ndarray of int
        For each lead, the indices of the sites that are images of the lead's
        unit cell sites (same order as ``leads[k].sites``).
    parameters : frozenset of str
        Names of all parameters the value functions take.
    spin_degeneracy : int
        1 or 2; multiplies conductances.
    """

    def __init__(
        self, builder: Any, *, spin_degeneracy: int = 1, magnetic_flux: str | None = None
    ) -> None:
        vectorize = bool(getattr(builder, "vectorize", False))
        sites = list(builder._sites)
        if not sites:
            raise ValueError("the system has no sites")
        index = {s: i for i, s in enumerate(sites)}
        norbs_map = _infer_norbs(builder)
        for lead in builder.leads:
            for fam_id, n in _infer_norbs(lead.builder).items():
                if norbs_map.setdefault(fam_id, n) != n:
                    raise ValueError(
                        f"a lead and the scattering region disagree on the number of orbitals "
                        f"({n} vs {norbs_map[fam_id]}) of a site family; set norbs= on the lattice"
                    )
        norbs = np.array([norbs_map.get(id(s.family), 1) for s in sites], dtype=np.int64)
        site_idx = np.arange(len(sites), dtype=np.int64)
        onsite = _group_terms(
            sites,
            [builder._sites[s] for s in sites],
            site_idx,
            site_idx,
            norbs,
            onsite=True,
            vectorize=vectorize,
        )
        pairs = list(builder._hoppings)
        hoppings = _group_terms(
            pairs,
            [builder._hoppings[p] for p in pairs],
            np.array([index[a] for a, _ in pairs], dtype=np.int64),
            np.array([index[b] for _, b in pairs], dtype=np.int64),
            norbs,
            onsite=False,
            vectorize=vectorize,
        )
        leads = [
            InfiniteSystem(
                lead.builder, spin_degeneracy=spin_degeneracy, magnetic_flux=magnetic_flux
            )
            for lead in builder.leads
        ]
        interfaces = []
        for lead, flead in zip(builder.leads, leads):
            sym = lead.builder.symmetry
            images = [sym.act(lead.domain, s) for s in flead.sites]
            missing = [s for s in images if s not in index]
            if missing:
                raise ValueError(f"lead interface site {missing[0]!r} is not in the system")
            interfaces.append(np.array([index[s] for s in images], dtype=np.int64))
        self._setup(
            sites=sites,
            pos=np.array([s.pos for s in sites], dtype=float),
            norbs=norbs,
            onsite=onsite,
            hoppings=hoppings,
            leads=leads,
            interfaces=interfaces,
            spin_degeneracy=spin_degeneracy,
            magnetic_flux=magnetic_flux,
        )

    @classmethod
    def _from_parts(cls, **parts: Any) -> System:
        self = cls.__new__(cls)
        self._setup(**parts)
        return self

    def _setup(
        self,
        *,
        sites: Any,
        pos: NDArray[np.float64],
        norbs: NDArray[np.int64],
        onsite: list[_Group],
        hoppings: list[_Group],
        leads: list[InfiniteSystem],
        interfaces: list[NDArray[np.int64]],
        spin_degeneracy: int,
        magnetic_flux: str | None,
    ) -> None:
        self.spin_degeneracy = _check_degeneracy(spin_degeneracy)
        if magnetic_flux is not None and not isinstance(magnetic_flux, str):
            raise TypeError(f"magnetic_flux must be a parameter name (str), got {magnetic_flux!r}")
        self.magnetic_flux = magnetic_flux
        self._sites = sites
        self.pos = pos
        self.norbs = norbs
        self.orb_offsets = np.concatenate([[0], np.cumsum(norbs)]).astype(np.int64)
        self._onsite = onsite
        self._hoppings = hoppings
        self.leads = leads
        self.lead_interfaces = interfaces
        self._hop_i = (
            np.concatenate([g.rows for g in hoppings]) if hoppings else np.zeros(0, np.int64)
        )
        self._hop_j = (
            np.concatenate([g.cols for g in hoppings]) if hoppings else np.zeros(0, np.int64)
        )
        names = _group_parameters(onsite) | _group_parameters(hoppings)
        takes_any = _groups_take_any_parameter(onsite) or _groups_take_any_parameter(hoppings)
        for flead in leads:
            names |= flead.parameters
            takes_any = takes_any or getattr(flead, "_takes_any_parameter", True)
        self._takes_any_parameter = takes_any
        if magnetic_flux:
            names.add(magnetic_flux)
        self.parameters = frozenset(names)
        self._check_connected()
        if magnetic_flux is not None:
            self._setup_gauge()

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
    def sites(self) -> list[Site]:
        if not isinstance(self._sites, list):
            self._sites = self._sites()
        return self._sites

    @property
    def id_by_site(self) -> dict[Site, int]:
        if not hasattr(self, "_id_by_site"):
            self._id_by_site = {s: i for i, s in enumerate(self.sites)}
        return self._id_by_site

    @property
    def num_orbitals(self) -> int:
        return int(self.orb_offsets[-1])

    @property
    def graph(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Hoppings as two index arrays ``(i, j)``, each hopping once (``<i|H|j>``)."""
        return self._hop_i, self._hop_j

    def _adjacency(self) -> sp.csr_matrix:
        n = len(self.pos)
        adj = sp.coo_matrix((np.ones(len(self._hop_i)), (self._hop_i, self._hop_j)), shape=(n, n))
        return (adj + adj.T).tocsr()

    def _check_connected(self) -> None:
        n = len(self.pos)
        if n == 1 or not self.leads:
            return
        ncomp, labels = sp.csgraph.connected_components(self._adjacency(), directed=False)
        if ncomp == 1:
            return
        lead_comps = {int(label) for iface in self.lead_interfaces for label in labels[iface]}
        orphan = np.flatnonzero(~np.isin(labels, list(lead_comps)))
        if len(orphan):
            raise ValueError(
                f"the system is disconnected: {len(orphan)} sites (e.g. the site at "
                f"{self.pos[orphan[0]].tolist()}) are not connected to any lead; remove them "
                "or add hoppings"
            )

    def _setup_gauge(self) -> None:
        if self.pos.shape[1] < 2:
            raise ValueError("a magnetic field needs a system in at least two dimensions")
        chi = np.zeros(len(self.pos))
        owner = np.full(len(self.pos), -1)
        for k, (flead, iface) in enumerate(zip(self.leads, self.lead_interfaces)):
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
        self._chi = chi

    def _phase_function(
        self, params: Mapping[str, Any]
    ) -> Callable[[_Group], NDArray[np.complex128] | None] | None:
        flux = _flux_value(params, self.magnetic_flux)
        if self.magnetic_flux is None or flux == 0.0:
            return None

        def phases(g: _Group) -> NDArray[np.complex128]:
            ra, rb = self.pos[g.rows, :2], self.pos[g.cols, :2]
            integral = _landau_line_integral(ra, rb) + self._chi[g.rows] - self._chi[g.cols]
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
        Each call evaluates the whole Hamiltonian; for many elements take them from one
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
        if args:
            raise TypeError("positional args are not supported; pass params={name: value}")
        count = len(self.pos)
        for name, index in (("i", i), ("j", j)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{name} must be a site index (int), got {index!r}")
            if not 0 <= index < count:
                raise ValueError(f"site index {name}={index} is out of range 0..{count - 1}")
        matrix = self.hamiltonian_submatrix(sparse=True, params=params)
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
        """The Hamiltonian of the scattering region (without leads).

        Parameters
        ----------
        params : dict, optional
            Values of the parameters the value functions take, by name.
        sparse : bool
            Return a scipy.sparse CSR matrix instead of a dense array.
        return_norb : bool
            Also return the number of orbitals of each site.

        Returns
        -------
        ndarray or scipy.sparse.csr_matrix, shape (n_orbitals, n_orbitals)
            Complex Hamiltonian, orbitals ordered site by site (``orb_offsets``).

        Examples
        --------
        >>> import mesoscopic as meso
        >>> lat = meso.lattice.chain()
        >>> syst = meso.Builder()
        >>> syst[lat(0)] = lambda site, v: v
        >>> syst.finalized().hamiltonian_submatrix(params={"v": 2.0}).real.tolist()
        [[2.0]]
        """
        if args:
            raise TypeError("positional args are not supported; pass params={name: value}")
        if to_sites is not None or from_sites is not None:
            raise TypeError("to_sites/from_sites selections are not supported; slice the result")
        params = _params_dict(params)
        _warn_unused_parameters(
            params, self.parameters, getattr(self, "_takes_any_parameter", True)
        )
        if not sparse:
            _check_dense(self.num_orbitals, "the dense Hamiltonian of the scattering region")
        mat = _assemble(
            self.num_orbitals,
            self.orb_offsets,
            self._onsite,
            self._hoppings,
            params,
            phases=self._phase_function(params),
            check_hermiticity=check_hermiticity,
        )
        out = mat if sparse else mat.toarray()
        if return_norb:
            return out, self.norbs.copy()
        return out

    def lead_interface_orbitals(self, lead: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Orbital indices of a lead's interface: (system orbitals, lead-cell orbitals)."""
        flead = self.leads[lead]
        iface = self.lead_interfaces[lead]
        if np.any(self.norbs[iface] != flead.norbs):
            k = int(np.argmax(self.norbs[iface] != flead.norbs))
            raise ValueError(
                f"the site at {self.pos[iface[k]].tolist()} has {int(self.norbs[iface[k]])} "
                f"orbitals in the system but {int(flead.norbs[k])} in lead {lead}"
            )
        sys_orbs = np.concatenate(
            [np.arange(self.orb_offsets[i], self.orb_offsets[i + 1]) for i in iface]
        )
        cell_orbs = np.arange(flead.num_orbitals)
        return sys_orbs.astype(np.int64), cell_orbs.astype(np.int64)

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
