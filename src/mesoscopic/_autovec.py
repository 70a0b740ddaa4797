"""Value functions written for one site, evaluated for many sites in one call when that is safe.

A Kwant-style value function takes Site objects: ``onsite(site, V)`` reads ``site.tag`` or
``site.pos`` and returns a number or a matrix. Most such functions are arithmetic on the
coordinates and the parameters (``4 * t + V * np.exp(-x**2)``, a Peierls phase), and give
the same numbers when called once with *columns*: ``site.tag`` and ``site.pos`` as arrays
of shape ``(d, n)`` over all ``n`` sites of a term group, so that ``x, y = site.pos``
unpacks arrays. Calling the function once instead of ``n`` times is what makes a loop over
disorder realizations or gate voltages cheap.

Whether a function may be called with columns is decided in two steps; anything that fails
either step is evaluated site by site as before, with the same numbers:

1. Its code, read once: a plain Python function (or a parameter that is one) whose
   bytecode stores nothing outside its own local variables (no global, attribute, item or
   closure stores, no in-place operators that could write to a parameter's array), has
   no loops, nested functions, imports, ``with`` or ``try`` blocks, and reads only
   numbers, arrays, NumPy's and ``math``'s functions and constants, a few pure builtins and
   other functions that pass the same test. Attributes are limited to the sites'
   ``tag`` and ``pos``, array attributes (``real``, ``imag``, ``shape``, ...) and NumPy's
   pure functions, so that a random number generator, a counter, ``kwant.digest`` or a method
   of a parameter object is never called with columns (each scalar call must see it).
2. Each evaluation: the column call must succeed without warnings and return one value per
   term (or one value for all); then the function is called site by site on a sample of
   terms (the first, the last and others spread between them) and every sampled value must
   agree with the column value to 1e-12 relative. A function that branches on a
   coordinate (``if x > 0``) raises on arrays and is evaluated site by site. The sample
   includes the terms with the largest and smallest coordinates, where integer arithmetic
   on tags (``x ** 9``) would overflow first.

``MESOSCOPIC_VECTORIZE=0`` turns the column call off.
"""

from __future__ import annotations

import builtins
import cmath
import dis
import inspect
import math
import numbers
import os
import types
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["columns_of", "enabled", "evaluate_columns", "is_column_safe", "make_columns"]

#: Term groups smaller than this are evaluated site by site (nothing to gain).
MIN_TERMS = 32
#: Term groups up to this size keep their columns between evaluations; larger ones (tens
#: of megabytes of coordinates) make them again from the sites at each evaluation.
MAX_KEPT_TERMS = 1 << 18
#: Terms compared with scalar calls at every column evaluation.
SAMPLE_SIZE = 12
#: Largest difference, relative to the largest sampled modulus, of a column value from the
#: scalar one (vectorized and scalar NumPy may round the last bit differently).
TOLERANCE = 1e-12

_FORBIDDEN_OPS = frozenset(
    {
        "STORE_GLOBAL",
        "DELETE_GLOBAL",
        "STORE_ATTR",
        "DELETE_ATTR",
        "STORE_SUBSCR",
        "DELETE_SUBSCR",
        "STORE_SLICE",
        "STORE_DEREF",
        "DELETE_DEREF",
        "STORE_NAME",
        "DELETE_NAME",
        "IMPORT_NAME",
        "IMPORT_FROM",
        "IMPORT_STAR",
        "YIELD_VALUE",
        "GET_YIELD_FROM_ITER",
        "GET_ITER",
        "FOR_ITER",
        "GET_AWAITABLE",
        "BEFORE_WITH",
        "SETUP_WITH",
        "SETUP_FINALLY",
        "PUSH_EXC_INFO",
        "CHECK_EXC_MATCH",
        "LOAD_BUILD_CLASS",
        "MAKE_FUNCTION",
        "PRINT_EXPR",
        "LIST_APPEND",
        "SET_ADD",
        "MAP_ADD",
    }
)
_INPLACE_OPS = frozenset(
    {"INPLACE_ADD", "INPLACE_SUBTRACT", "INPLACE_MULTIPLY", "INPLACE_TRUE_DIVIDE",
     "INPLACE_POWER", "INPLACE_MATRIX_MULTIPLY", "INPLACE_FLOOR_DIVIDE", "INPLACE_MODULO",
     "INPLACE_AND", "INPLACE_OR", "INPLACE_XOR", "INPLACE_LSHIFT", "INPLACE_RSHIFT"}
)  # fmt: skip

_NUMPY_NAMES = frozenset(
    {
        "abs", "absolute", "angle", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
        "arctanh", "array", "asarray", "cbrt", "ceil", "clip", "conj", "conjugate", "cos", "cosh",
        "deg2rad", "divide", "e", "exp", "exp2", "expm1", "fabs", "floor", "floor_divide", "fmax",
        "fmin", "fmod", "heaviside", "hypot", "imag", "log", "log10", "log1p", "log2",
        "logical_and", "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "mod",
        "multiply", "negative", "pi", "power", "rad2deg", "real", "remainder", "rint", "round",
        "sign", "sin", "sinc", "sinh", "sqrt", "square", "subtract", "add", "tan", "tanh",
        "true_divide", "where", "float64", "complex128", "int64",
    }
)  # fmt: skip
# Not "T": ``site.pos.T @ site.pos`` is a number for one site but an (n, n) matrix for
# columns, which could exhaust the memory before it fails.
_ARRAY_ATTRIBUTES = frozenset(
    {"tag", "pos", "real", "imag", "conj", "conjugate", "shape", "ndim", "size", "dtype"}
)
_MATH_NAMES = frozenset(n for n in dir(math) + dir(cmath) if not n.startswith("_"))
# Not round (Python rounds decimals exactly, NumPy by scaling) nor divmod: builtins whose
# array version could round differently at a site the sample does not see.
_SAFE_BUILTINS = frozenset(
    {"abs", "complex", "float", "int", "bool", "len", "min", "max", "sum", "pow", "True",
     "False", "None"}
)  # fmt: skip
_SAFE_MODULES = (np, math, cmath)
_GENERATOR_FLAGS = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)

# Functions already judged (weakly, so that they can be collected).
_VERDICTS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def enabled() -> bool:
    """Whether column calls are on (``MESOSCOPIC_VECTORIZE`` is not ``0``)."""
    return os.environ.get("MESOSCOPIC_VECTORIZE", "1").strip() not in ("0", "false", "no")


def _safe_value(value: Any, depth: int, seen: set[int]) -> bool:
    """Whether a global, closure or parameter value may be read by a column call."""
    if value is None or isinstance(value, (bool, numbers.Number, str, bytes)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, tuple):
        return all(_safe_value(v, depth, seen) for v in value)
    if isinstance(value, types.ModuleType):
        return any(value is m for m in _SAFE_MODULES)
    if isinstance(value, np.ufunc):
        return True
    if isinstance(value, types.BuiltinFunctionType):
        module = getattr(value, "__module__", None)
        name = getattr(value, "__name__", "")
        if module in ("math", "cmath"):
            return True
        return value is getattr(builtins, name, None) and name in _SAFE_BUILTINS
    if isinstance(value, types.FunctionType):
        name = str(getattr(value, "__name__", ""))
        if value is getattr(np, name, None):
            return name in _NUMPY_NAMES
        return _code_is_safe(value, depth + 1, seen)
    return False


def _code_is_safe(func: types.FunctionType, depth: int, seen: set[int]) -> bool:
    """Step 1 of the module notes for a plain function (recursing into those it calls)."""
    if depth > 4:
        return False
    if id(func) in seen:
        return True  # being checked higher up (recursion): decided there
    seen.add(id(func))
    code = func.__code__
    if code.co_flags & _GENERATOR_FLAGS:
        return False
    if any(isinstance(c, types.CodeType) for c in code.co_consts):
        return False
    namespace = func.__globals__
    for instruction in dis.get_instructions(code):
        name = instruction.opname
        if name in _FORBIDDEN_OPS or name in _INPLACE_OPS:
            return False
        if name == "BINARY_OP" and str(instruction.argrepr).endswith("="):
            return False  # x += ..., which could write to a parameter's array
        if name == "LOAD_GLOBAL":
            ident = str(instruction.argval)
            if ident in namespace:
                if not _safe_value(namespace[ident], depth, seen):
                    return False
            elif ident not in _SAFE_BUILTINS:
                return False
        elif name in ("LOAD_ATTR", "LOAD_METHOD"):
            attribute = str(instruction.argval)
            if not (
                attribute in _ARRAY_ATTRIBUTES
                or attribute in _NUMPY_NAMES
                or attribute in _MATH_NAMES
            ):
                return False
        elif name == "LOAD_NAME":
            return False
    for cell in func.__closure__ or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            return False
        if not _safe_value(content, depth, seen):
            return False
    for default in (func.__defaults__ or ()) + tuple((func.__kwdefaults__ or {}).values()):
        if not _safe_value(default, depth, seen):
            return False
    return True


def is_column_safe(func: Callable[..., Any]) -> bool:
    """Whether `func`'s code allows a column call (step 1 of the module notes; cached)."""
    if not isinstance(func, types.FunctionType):
        return False
    verdict = _VERDICTS.get(func)
    if verdict is None:
        try:
            verdict = _code_is_safe(func, 0, set())
        except Exception:  # an unusual code object: evaluate site by site
            verdict = False
        _VERDICTS[func] = verdict
    return verdict


def params_are_safe(kwargs: Mapping[str, Any]) -> bool:
    """Whether every parameter value may be read by a column call."""
    return all(_safe_value(v, 0, set()) for v in kwargs.values())


class _Columns:
    """The sites of a term group as columns: ``tag`` (d, n) int, ``pos`` (dim, n) float."""

    __slots__ = ("pos", "tag")

    def __init__(self, tags: NDArray[np.int64], positions: NDArray[np.float64]) -> None:
        self.tag = np.ascontiguousarray(tags.T)
        self.pos = np.ascontiguousarray(positions.T)
        self.tag.flags.writeable = False
        self.pos.flags.writeable = False


def make_columns(tags: NDArray[np.int64], positions: NDArray[np.float64]) -> _Columns:
    """Columns of sites given by their tags (n, d) and positions (n, dim)."""
    return _Columns(tags, positions)


def columns_of(sites: Sequence[Any], count: int) -> tuple[_Columns, ...] | None:
    """Columns of one Site per term (``count == 1``) or of ``(Site, Site)`` pairs; None if
    the sites' tags or positions differ in length (families of different dimensions)."""
    from ._bulk import LazySites

    if isinstance(sites, LazySites):
        result = sites.columns()
        if result is not None:
            return tuple(_Columns(t, p) for t, p in result)
    items = [(s,) for s in sites] if count == 1 else list(sites)
    out = []
    for k in range(count):
        tags = [tuple(item[k].tag) for item in items]
        positions = [np.asarray(item[k].pos, dtype=float) for item in items]
        if len({len(t) for t in tags}) != 1 or len({p.shape for p in positions}) != 1:
            return None
        out.append(_Columns(np.array(tags, dtype=np.int64), np.array(positions)))
    return tuple(out)


def _sample(count: int, columns: tuple[_Columns, ...]) -> NDArray[np.intp]:
    """Terms compared with scalar calls: both ends and others spread between them, and the
    terms with the extreme coordinates (where an integer power would overflow first)."""
    spread = np.linspace(0, count - 1, SAMPLE_SIZE - 2).round().astype(np.intp)
    # Two more at a fixed odd stride, off the even grid.
    extra = (np.array([count // 3 + 1, (2 * count) // 3 + 1]) * 7919) % count
    extremes = [
        index
        for c in columns
        for values in (c.tag, c.pos)
        if values.size
        for index in (np.argmax(values, axis=1), np.argmin(values, axis=1))
    ]
    return np.unique(np.concatenate([spread, extra, *extremes]).astype(np.intp))


def evaluate_columns(
    func: Callable[..., Any],
    columns: tuple[_Columns, ...],
    kwargs: Mapping[str, Any],
    count: int,
    shape: tuple[int, int],
    scalar: Callable[[int], NDArray[np.complex128]],
) -> NDArray[np.complex128] | None:
    """The blocks ``(count, *shape)`` of all terms from one column call, or None.

    ``scalar(k)`` is term ``k``'s block from a call with its own sites (step 2 of the module
    notes); None means: evaluate site by site.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = func(*columns, **kwargs)
            out = np.asarray(raw)
            if out.dtype == object or not (
                np.issubdtype(out.dtype, np.number) or out.dtype == bool
            ):
                return None
            out = out.astype(complex)
        except Exception:
            return None
    if caught:
        return None
    if out.shape == (count,) and shape == (1, 1):
        out = out.reshape(count, 1, 1)
    elif out.shape in ((), shape) or (out.shape == (1,) and shape == (1, 1)):
        out = np.broadcast_to(out.reshape(shape), (count, *shape))
    elif out.shape != (count, *shape):
        return None
    if not np.isfinite(out).all():
        return None
    picked = _sample(count, columns)
    try:
        reference = np.array([scalar(int(k)) for k in picked])
    except Exception:
        return None
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    if not np.all(np.abs(out[picked] - reference) <= TOLERANCE * scale):
        return None
    return np.ascontiguousarray(out)
