"""What identifies a sweep: its description and the fingerprint hashed from it.

The description is kept readable, so that a checkpoint refused for belonging to another
sweep can say in words which parts differ (:func:`explain_difference`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._observable import Observable, qualified_name
from ._plan import Plan


def _identity(func: Any) -> dict[str, Any]:
    """What distinguishes one observable from another, for the fingerprint.

    Every part is readable, so that a refused checkpoint can say what changed: the
    wrappers' arguments and output specs, the function's qualified name, the hash of
    its source, and the simple constants it uses (see :func:`_referenced_constants`).
    """
    if isinstance(func, Observable):
        return {
            "observable": func.name,
            "outputs": {
                name: [
                    spec.units,
                    None if spec.dims is None else list(spec.dims),
                    spec.long_name,
                    [list(pair) for pair in spec.attrs],
                ]
                for name, spec in func.outputs.items()
            },
            "coords": {name: _fingerprint_value(values) for name, values in func.coords.items()},
            "func": _identity(func.func),
        }
    if isinstance(func, functools.partial):
        return {
            "args": [_fingerprint_value(value) for value in func.args],
            "keywords": {key: _fingerprint_value(value) for key, value in func.keywords.items()},
            "func": _identity(func.func),
        }
    identity: dict[str, Any] = {"name": qualified_name(func), "source": _source_digest(func)}
    if inspect.isfunction(func):
        identity["constants"] = _referenced_constants(func)
    elif not inspect.isroutine(func):
        # A callable object: its state changes the results.
        with contextlib.suppress(Exception):
            state = hashlib.sha256(pickle.dumps(func, protocol=4)).hexdigest()
            identity["state_sha256"] = state
    return identity


def _source_digest(func: Any) -> str | None:
    try:
        source = inspect.getsource(func if inspect.isroutine(func) else type(func))
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


# Constants of these types enter the fingerprint by value (containers when all their items
# are such constants); anything else a function refers to (modules, classes, ...) does not.
_CONSTANT_TYPES = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray)


def _is_simple_constant(value: Any, depth: int = 0) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufcU"
    if isinstance(value, _CONSTANT_TYPES):
        return True
    if depth < 3 and isinstance(value, (tuple, list, set, frozenset)):
        return all(_is_simple_constant(item, depth + 1) for item in value)
    if depth < 3 and isinstance(value, Mapping):
        return all(
            isinstance(key, str) and _is_simple_constant(item, depth + 1)
            for key, item in value.items()
        )
    return False


def _referenced_constants(func: Any) -> dict[str, Any]:
    """Module-level constants and closure values that a function uses, by name.

    Names its code (nested functions and comprehensions included) looks up in its
    module's globals are followed: simple constants (numbers, strings, tuples, arrays,
    ...) enter by value; functions of the same module enter by the hash of their
    source, and the constants they use are followed in turn. Closure values enter by
    value when they are simple constants.
    """
    found: dict[str, Any] = {}
    module = getattr(func, "__module__", None)
    namespace = getattr(func, "__globals__", {})
    pending = [func]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        code = current.__code__
        for name, cell in zip(code.co_freevars, current.__closure__ or ()):
            with contextlib.suppress(ValueError):  # an empty cell
                value = cell.cell_contents
                if _is_simple_constant(value):
                    found[f"closure {name}"] = _compact(_fingerprint_value(value))
        for name in sorted(_global_names(code)):
            if name not in namespace:
                continue
            value = namespace[name]
            if _is_simple_constant(value):
                found[name] = _compact(_fingerprint_value(value))
            elif (
                inspect.isfunction(value)
                and value.__module__ == module
                and value.__globals__ is namespace
            ):
                found[name] = {"function": _source_digest(value)}
                pending.append(value)
    return found


def _compact(description: Any) -> Any:
    """A long description (a table of numbers) replaced by its hash, to keep manifests small."""
    text = json.dumps(description, sort_keys=True, allow_nan=True)
    if len(text) <= 1000:
        return description
    return {"value_sha256": hashlib.sha256(text.encode()).hexdigest()}


def _global_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if inspect.iscode(constant):
            names |= _global_names(constant)
    return names


def _fingerprint_value(value: Any) -> Any:
    """A stable stand-in for a fixed parameter: the same value gives the same result."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (complex, np.complexfloating)):
        return {"complex": [float(value.real), float(value.imag)]}
    if isinstance(value, bytes):
        return {"bytes_sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufcU":
        if value.size <= 64 and value.dtype.kind != "c":
            return {"array": value.tolist(), "dtype": value.dtype.str}
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return {"array_sha256": digest, "shape": list(value.shape), "dtype": value.dtype.str}
    if isinstance(value, (set, frozenset)):
        return {"set": sorted(json.dumps(_fingerprint_value(v)) for v in value)}
    if isinstance(value, Mapping):
        return {str(k): _fingerprint_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fingerprint_value(v) for v in value]
    # A finalized System (often holding closures, which cannot be pickled) by the hash of
    # its sites, hoppings, leads and value functions.
    content_digest = getattr(value, "content_digest", None)
    if callable(content_digest):
        return {"content_sha256": content_digest()}
    # Other objects: their repr may hold a memory address, which differs from run to run,
    # so they are identified by their pickled state instead.
    try:
        return {"pickle_sha256": hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()}
    except Exception:
        warnings.warn(
            f"a parameter of type {type(value).__qualname__} (in fixed_params, or bound to "
            "the observable) cannot be pickled, so only "
            "its type enters the checkpoint fingerprint: a changed value would not be "
            "detected on resuming; start a new checkpoint after changing it",
            RuntimeWarning,
            stacklevel=4,
        )
        return {"type": f"{type(value).__module__}.{type(value).__qualname__}"}


def describe_sweep(observable: Callable[..., Any], plan: Plan) -> dict[str, Any]:
    """What makes the sweep's results what they are, in readable parts."""
    return {
        "observable": _identity(observable),
        "axes": list(plan.axis_names),  # the key order of "grid" is lost when hashing
        "grid": {
            name: {"dtype": values.dtype.str, "values": values.tolist()}
            for name, values in zip(plan.axis_names, plan.axis_values)
        },
        "batch_axis": plan.batch_axis,
        "fixed_params": _fingerprint_value(plan.fixed_params),
    }


def fingerprint_of(description: Mapping[str, Any]) -> str:
    """A short hash of a sweep description."""
    text = json.dumps(description, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def explain_difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Say in words how two sweep descriptions differ, naming the parts that do."""
    old_grid, new_grid = stored.get("grid", {}), current.get("grid", {})
    if stored.get("axes") != current.get("axes"):
        return f"its grid axes are {stored.get('axes')}, this sweep has {current.get('axes')}"
    for axis in new_grid:
        if old_grid.get(axis) != new_grid[axis]:
            return (
                f"grid axis {axis!r} differs (stored "
                f"{_summary(old_grid.get(axis, {}).get('values', []))}, "
                f"now {_summary(new_grid[axis]['values'])})"
            )
    changes: list[str] = []
    for key in ("batch_axis", "fixed_params", "observable"):
        _differing_parts(key, stored.get(key, _ABSENT), current.get(key, _ABSENT), changes)
    if not changes:
        return "its fingerprint differs"
    shown = changes[:6] + ([f"and {len(changes) - 6} more"] if len(changes) > 6 else [])
    return "it differs in " + "; ".join(shown)


_ABSENT = "<absent>"


def _differing_parts(where: str, old: Any, new: Any, changes: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            _differing_parts(
                f"{where}.{key}", old.get(key, _ABSENT), new.get(key, _ABSENT), changes
            )
        return
    if _is_digest(old) or _is_digest(new):
        changes.append(f"{where} differs (its code or content)")
    elif old == _ABSENT:
        changes.append(f"{where} (absent before, now {_shown(new)})")
    elif new == _ABSENT:
        changes.append(f"{where} (stored {_shown(old)}, absent now)")
    else:
        changes.append(f"{where} (stored {_shown(old)}, now {_shown(new)})")


def _is_digest(value: Any) -> bool:
    """A hash standing for code or content, which says nothing readable itself."""
    if isinstance(value, str):
        return len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    if isinstance(value, Mapping):
        return bool(value) and all(
            ("sha256" in key or key == "function") and (v is None or _is_digest(v))
            for key, v in value.items()
            if key not in ("shape", "dtype")
        )
    return False


def _shown(value: Any) -> str:
    return _summary(value) if isinstance(value, list) else repr(value)


def _summary(values: Sequence[Any]) -> str:
    if len(values) <= 4:
        return repr(list(values))
    return f"{len(values)} values from {values[0]!r} to {values[-1]!r}"
