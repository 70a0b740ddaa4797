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
   ``tag`` and ``pos``, a few array attributes (``real``, ``imag``, ``conj``) and NumPy's
   pure functions, so that a random number generator, a counter, ``kwant.digest`` or a method
   of a parameter object is never called with columns (each scalar call must see it).
2. Each evaluation: a trial column call on the first 16 terms, then the call on all terms,
   must succeed without a floating-point error (division by zero, overflow, invalid: raised
   inside the call, which stays thread-safe) and return one value per term (or one value
   for all); every trial value, and a sample of the others (the first, the last, others
   spread between them, and the terms with the largest and smallest coordinates, where
   integer arithmetic on tags such as ``x ** 9`` overflows first) must agree with a call
   of the function with that term's own sites to 1e-12 relative. The trial keeps a function
   that builds larger arrays from columns (an outer product) from running on all terms;
   a term group makes it once per function and parameter types and shapes (integers by
   value), which decide those shapes, while the sample is compared at every evaluation. A
   function that branches on a coordinate (``if x > 0``) raises on arrays and is
   evaluated site by site, and so does one that adds or inverts booleans computed from
   tags, which as Python bools add as integers (``(x == 5) + (y == 4)``).
   Verdicts of step 1 are kept per function with the globals, closure cells and defaults
   they rest on, and made again when one of those is replaced.

``MESOSCOPIC_VECTORIZE=0`` turns the column call off.
"""

from __future__ import annotations

import builtins
import cmath
import dis
import inspect
import math
import os
import types
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ColumnSet",
    "columns_of",
    "enabled",
    "evaluate_columns",
    "is_column_safe",
    "make_columns",
]

#: Term groups smaller than this are evaluated site by site (nothing to gain).
MIN_TERMS = 32
#: Term groups up to this size keep their columns between evaluations; larger ones (tens
#: of megabytes of coordinates) make them again from the sites at each evaluation.
MAX_KEPT_TERMS = 1 << 18
#: Terms in the trial column call made before the call on all terms (all of them compared
#: with scalar calls).
TRIAL_TERMS = 16
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
# columns, which could exhaust the memory before it fails; not "shape", "size" or "ndim",
# which differ between one site and columns (a value computed from them is wrong for
# columns, perhaps only where the sample does not look).
_ARRAY_ATTRIBUTES = frozenset({"tag", "pos", "real", "imag", "conj", "conjugate", "dtype"})
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

# Functions already judged (weakly, so that they can be collected): the verdict and what it
# rests on, (namespace or cell, name, object) triples checked again at every use, so that a
# helper redefined in a notebook is judged again.
_VERDICTS: weakref.WeakKeyDictionary[Any, tuple[bool, tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)
_MISSING = object()
_KWDEFAULTS = "__kwdefaults__ items"
# Parameter and global values taken as plain data: exactly these types (a subclass could
# run code of its own on the columns).
_PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes)


def enabled() -> bool:
    """Whether column calls are on (``MESOSCOPIC_VECTORIZE`` is not ``0``)."""
    return os.environ.get("MESOSCOPIC_VECTORIZE", "1").strip() not in ("0", "false", "no")


def _safe_value(value: Any, depth: int, seen: set[int], deps: list[Any]) -> bool:
    """Whether a global, closure or parameter value may be read by a column call."""
    if type(value) in _PLAIN_TYPES:
        return True
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        return value.dtype != object  # a NumPy scalar
    if type(value) is np.ndarray:  # not a subclass (a masked array's mask would be lost)
        return value.dtype != object
    if type(value) is tuple:
        return all(_safe_value(v, depth, seen, deps) for v in value)
    if isinstance(value, types.ModuleType):
        return any(value is m for m in _SAFE_MODULES)
    if isinstance(value, np.ufunc):
        # NumPy's own (np.frompyfunc makes ufuncs of any Python function).
        return getattr(np, value.__name__, None) is value
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
        return _code_is_safe(value, depth + 1, seen, deps)
    return False


def _code_is_safe(func: types.FunctionType, depth: int, seen: set[int], deps: list[Any]) -> bool:
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
    if any(isinstance(c, tuple) and "out" in c for c in code.co_consts):
        return False  # a keyword out= could write into a parameter's array
    namespace = func.__globals__
    deps.append((func, "__code__", code))
    previous: Any = None
    for instruction in dis.get_instructions(code):
        name = instruction.opname
        if name == "IS_OP" and not (
            previous is not None and previous.opname == "LOAD_CONST" and previous.argval is None
        ):
            return False  # "x is 0" on a tag is a Python bool for columns, not per site
        previous = instruction
        if name in _FORBIDDEN_OPS or name in _INPLACE_OPS:
            return False
        if name == "BINARY_OP" and str(instruction.argrepr).endswith("="):
            return False  # x += ..., which could write to a parameter's array
        if name == "LOAD_GLOBAL":
            ident = str(instruction.argval)
            value = namespace.get(ident, _MISSING)
            deps.append((namespace, ident, value))
            if value is not _MISSING:
                if not _safe_value(value, depth, seen, deps):
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
        deps.append((cell, None, content))
        if not _safe_value(content, depth, seen, deps):
            return False
    deps.append((func, "__defaults__", func.__defaults__))
    deps.append((func, _KWDEFAULTS, tuple((func.__kwdefaults__ or {}).items())))
    for default in (func.__defaults__ or ()) + tuple((func.__kwdefaults__ or {}).values()):
        if not _safe_value(default, depth, seen, deps):
            return False
    return True


def _unchanged(dependency: tuple[Any, Any, Any]) -> bool:
    """Whether a global, closure cell or default a verdict rests on is the same object."""
    holder, name, value = dependency
    if isinstance(holder, dict):
        return holder.get(name, _MISSING) is value
    if name is None:  # a closure cell
        try:
            return holder.cell_contents is value
        except ValueError:
            return False
    if name is _KWDEFAULTS:  # a dict that can change in place: its items, by identity
        now = tuple((holder.__kwdefaults__ or {}).items())
        return len(now) == len(value) and all(
            a[0] == b[0] and a[1] is b[1] for a, b in zip(now, value)
        )
    return getattr(holder, name) is value


def is_column_safe(func: Callable[..., Any]) -> bool:
    """Whether `func`'s code allows a column call (step 1 of the module notes; cached)."""
    if not isinstance(func, types.FunctionType):
        return False
    cached = _VERDICTS.get(func)
    if cached is not None and all(_unchanged(d) for d in cached[1]):
        return cached[0]
    deps: list[Any] = []
    try:
        verdict = _code_is_safe(func, 0, set(), deps)
    except Exception:  # an unusual code object: evaluate site by site
        verdict = False
    _VERDICTS[func] = (verdict, tuple(deps))
    return verdict


def params_are_safe(kwargs: Mapping[str, Any]) -> bool:
    """Whether every parameter value may be read by a column call."""
    return all(_safe_value(v, 0, set(), []) for v in kwargs.values())


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or (
        isinstance(value, np.ndarray) and value.dtype == bool
    )


class _TagColumns(np.ndarray):
    """Tags as columns, and every array computed from them.

    For one site a tag's entries are Python ints: their comparisons give Python bools,
    which add as integers (``(x == 5) + (y == 4)`` is 2 where both hold) and invert as
    integers (``~True == -2``), where NumPy's booleans add as a logical or and invert as a
    logical not. Such an operation on booleans from tags refuses the column call (the
    function is then called site by site); everything else is NumPy's arithmetic.
    """

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if ufunc in (np.add, np.invert) and all(_is_bool(x) for x in inputs):
            raise TypeError("booleans from tags added or inverted: not as for Python bools")
        if ufunc in (np.left_shift, np.right_shift):
            raise TypeError("shifts of tags: Python's integers do not overflow or wrap")
        plain = [x.view(np.ndarray) if isinstance(x, _TagColumns) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                x.view(np.ndarray) if isinstance(x, _TagColumns) else x for x in kwargs["out"]
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "__call__" and ufunc in _INTEGER_GROWTH:
            _check_no_overflow(ufunc, plain, result)
        if isinstance(result, tuple):
            return tuple(_as_tag_columns(r) for r in result)
        return _as_tag_columns(result)


# Integer operations whose results can leave int64 (Python's integers grow instead): their
# results on tags are checked against the same operation in floating point.
_INTEGER_GROWTH = (np.add, np.subtract, np.multiply, np.power, np.negative, np.absolute)
_INTEGER_LIMIT = 2.0**62


def _check_no_overflow(ufunc: Any, inputs: Sequence[Any], result: Any) -> None:
    """Refuse (TypeError) an integer result that wrapped around in int64."""
    if not (isinstance(result, np.ndarray) and np.issubdtype(result.dtype, np.integer)):
        return
    approximate = ufunc(*[np.asarray(x, dtype=float) for x in inputs])
    if approximate.size and not np.max(np.abs(approximate)) < _INTEGER_LIMIT:
        raise TypeError("integers from tags beyond int64: Python's integers would grow")


def _as_tag_columns(value: Any) -> Any:
    return value.view(_TagColumns) if type(value) is np.ndarray else value


class _Columns:
    """The sites of a term group as columns: ``tag`` (d, n) int, ``pos`` (dim, n) float."""

    __slots__ = ("pos", "tag")
    tag: NDArray[np.int64]
    pos: NDArray[np.float64]

    def __init__(self, tags: NDArray[np.int64], positions: NDArray[np.float64]) -> None:
        tag = np.ascontiguousarray(tags.T)
        pos = np.ascontiguousarray(positions.T)
        tag.flags.writeable = False
        pos.flags.writeable = False
        self.tag = tag.view(_TagColumns)
        self.pos = pos

    def head(self, count: int) -> _Columns:
        """The first `count` sites."""
        out = object.__new__(_Columns)
        out.tag = self.tag[:, :count]
        out.pos = self.pos[:, :count]
        return out


def make_columns(tags: NDArray[np.int64], positions: NDArray[np.float64]) -> _Columns:
    """Columns of sites given by their tags (n, d) and positions (n, dim)."""
    return _Columns(tags, positions)


class ColumnSet(tuple[_Columns, ...]):
    """The columns of a term group's site arguments (one per argument), and what its
    column evaluations found so far: the terms compared with scalar calls (they depend on
    the columns only) and the calls whose trial passed.

    A trial (step 2 of the module notes) keeps a function that builds larger arrays from
    columns from running on all terms; its arrays' shapes follow from the function, the
    columns and the types and shapes of the parameters, so it is made once per such
    combination (:func:`_call_signature`). Every evaluation still compares its sample
    with scalar calls.
    """

    sample: NDArray[np.intp] | None
    trusted: list[Any]

    def __new__(cls, columns: Sequence[_Columns]) -> ColumnSet:
        out = super().__new__(cls, columns)
        out.sample = None
        out.trusted = []
        return out


#: Calls whose trial passed, kept per column set (the latest ones).
_TRUSTED_CALLS = 8


def _call_signature(func: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """What fixes the shapes of a column call's arrays: the function, and each
    parameter's type and, for arrays, shape and dtype; integers by value (they can size
    arrays), other values that are not numbers by identity."""
    parts: list[Any] = [func]
    for name, value in kwargs.items():
        if isinstance(value, np.ndarray):
            parts.append((name, np.ndarray, value.shape, value.dtype.str))
        elif isinstance(value, (bool, np.bool_, int, np.integer)):
            parts.append((name, type(value), int(value)))
        elif isinstance(value, (float, complex, np.floating, np.complexfloating)):
            parts.append((name, type(value)))
        else:
            parts.append((name, "object", id(value)))
    return tuple(parts)


def columns_of(sites: Sequence[Any], count: int) -> tuple[_Columns, ...] | None:
    """Columns of one Site per term (``count == 1``) or of ``(Site, Site)`` pairs; None if
    the sites' tags or positions differ in length (families of different dimensions)."""
    items = [(s,) for s in sites] if count == 1 else list(sites)
    out = []
    for k in range(count):
        tags = [tuple(item[k].tag) for item in items]
        positions = [np.asarray(item[k].pos, dtype=float) for item in items]
        if len({len(t) for t in tags}) != 1 or len({p.shape for p in positions}) != 1:
            return None
        out.append(_Columns(np.array(tags, dtype=np.int64), np.array(positions)))
    return ColumnSet(out)


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
    notes); None means: evaluate site by site. A :class:`ColumnSet` keeps its sample and
    the calls whose trial passed.
    """
    state = columns if isinstance(columns, ColumnSet) else None
    signature = _call_signature(func, kwargs) if state is not None else None
    # A trial on the first terms: a function whose columns grow beyond one value per term
    # (an outer product) is refused before it is called on all of them.
    trial = min(count, TRIAL_TERMS)
    if trial < count and (state is None or signature not in state.trusted):
        head = tuple(c.head(trial) for c in columns)
        first = _column_values(func, head, kwargs, trial, shape)
        if first is None or not _agrees(first, range(trial), scalar):
            return None
    out = _column_values(func, columns, kwargs, count, shape)
    if out is None:
        return None
    if state is None:
        picked = _sample(count, columns)
    else:
        if state.sample is None:
            state.sample = _sample(count, columns)
        picked = state.sample
    if not _agrees(out, picked, scalar):
        return None
    if state is not None and signature not in state.trusted:
        state.trusted[:] = [signature, *state.trusted[: _TRUSTED_CALLS - 1]]
    return np.ascontiguousarray(out)


def _column_values(
    func: Callable[..., Any],
    columns: tuple[_Columns, ...],
    kwargs: Mapping[str, Any],
    count: int,
    shape: tuple[int, int],
) -> NDArray[np.complex128] | None:
    """One column call's blocks ``(count, *shape)``, or None where it fails, warns of a
    floating-point problem (division by zero, overflow: raised here, thread-safely) or
    gives values of another shape."""
    try:
        with np.errstate(all="raise", under="ignore"):
            out = np.asarray(func(*columns, **kwargs))
            if out.dtype == object or not (
                np.issubdtype(out.dtype, np.number) or out.dtype == bool
            ):
                return None
            out = out.astype(complex)
        if out.shape == (count,) and shape == (1, 1):
            out = out.reshape(count, 1, 1)
        elif out.shape in ((), shape) or (out.shape == (1,) and shape == (1, 1)):
            out = np.broadcast_to(out.reshape(shape), (count, *shape))
        elif out.shape != (count, *shape):
            return None
    except Exception:
        return None
    if not np.isfinite(out).all():
        return None
    return out


def _agrees(
    out: NDArray[np.complex128], picked: Any, scalar: Callable[[int], NDArray[np.complex128]]
) -> bool:
    """Whether the column values of the terms `picked` are those of scalar calls."""
    picked = np.asarray(list(picked), dtype=np.intp)
    try:
        reference = np.array([scalar(int(k)) for k in picked])
    except Exception:
        return False
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    return bool(np.all(np.abs(out[picked] - reference) <= TOLERANCE * scale))
