"""The plan of a sweep: its grid, its fixed parameters and how calls map onto the grid."""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

_MAX_DEFAULT_CHUNK = 256


@dataclass(frozen=True)
class Plan:
    """A validated grid and how the observable calls cover it (sent to the workers)."""

    axis_names: tuple[str, ...]
    axis_values: tuple[np.ndarray, ...]
    batch_axis: str | None
    fixed_params: dict[str, Any]
    units: dict[str, str]

    @property
    def call_axes(self) -> tuple[str, ...]:
        return tuple(name for name in self.axis_names if name != self.batch_axis)

    @property
    def call_shape(self) -> tuple[int, ...]:
        return tuple(
            len(values)
            for name, values in zip(self.axis_names, self.axis_values)
            if name != self.batch_axis
        )

    @property
    def n_calls(self) -> int:
        return math.prod(self.call_shape)

    @property
    def call_sizes(self) -> tuple[int, ...]:
        """Number of values of every grid axis, the batch axis included."""
        return tuple(len(values) for values in self.axis_values)

    @property
    def batch_values(self) -> np.ndarray | None:
        if self.batch_axis is None:
            return None
        return self.axis_values[self.axis_names.index(self.batch_axis)]

    @property
    def batch_length(self) -> int:
        values = self.batch_values
        return 1 if values is None else len(values)

    def point(self, call_index: int) -> dict[str, Any]:
        """Keyword arguments of one observable call."""
        position = np.unravel_index(call_index, self.call_shape) if self.call_shape else ()
        lookup = dict(zip(self.call_axes, position))
        kwargs: dict[str, Any] = {}
        for name, values in zip(self.axis_names, self.axis_values):
            if name == self.batch_axis:
                kwargs[name] = values.copy()
            else:
                kwargs[name] = values[lookup[name]].item()
        return kwargs


def make_plan(
    grid: Mapping[str, ArrayLike],
    fixed_params: Mapping[str, Any] | None,
    batch_axis: str | None,
    units: Mapping[str, str] | None,
) -> Plan:
    """Check the grid, the fixed parameters, the batch axis and the units."""
    import xarray as xr

    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping of axis name -> 1-D values, got {type(grid).__name__}"
        )
    if not grid:
        raise ValueError("grid is empty; give at least one axis, e.g. {'energy': [0.1, 0.2]}")
    axis_units = {str(k): v for k, v in (units or {}).items()}
    for key, unit in axis_units.items():
        if not isinstance(unit, str):
            raise TypeError(f"units[{key!r}] must be a string, got {unit!r}")
    names: list[str] = []
    values_list: list[np.ndarray] = []
    for name, raw in grid.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(
                f"grid axis name {name!r} must be a valid Python identifier: it is passed "
                "to the observable as a keyword argument"
            )
        if isinstance(raw, xr.DataArray):
            if "units" in raw.attrs and name not in axis_units:
                axis_units[name] = str(raw.attrs["units"])
            raw = raw.values
        values = _axis_values(name, raw)
        names.append(name)
        values_list.append(values)
    fixed = dict(fixed_params or {})
    for key in fixed:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"fixed_params key {key!r} must be a valid Python identifier")
    overlap = sorted(set(fixed) & set(names))
    if overlap:
        raise ValueError(
            f"fixed_params {overlap} are also grid axes; a parameter is either swept or fixed"
        )
    if batch_axis is not None and batch_axis not in names:
        raise ValueError(f"batch_axis {batch_axis!r} is not a grid axis; grid axes are {names}")
    return Plan(tuple(names), tuple(values_list), batch_axis, fixed, axis_units)


def _axis_values(name: str, raw: Any) -> np.ndarray:
    if isinstance(raw, (str, bytes)) or np.ndim(raw) == 0:
        raise ValueError(
            f"grid axis {name!r} must be a 1-D sequence of values, got the single value "
            f"{raw!r}; write [{raw!r}] or pass it in fixed_params"
        )
    try:
        values = np.asarray(list(raw) if isinstance(raw, range) else raw)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"grid axis {name!r} must be a 1-D sequence of values: {exc}") from exc
    if values.ndim != 1:
        raise ValueError(
            f"grid axis {name!r} must be 1-D, got an array of shape {values.shape}; "
            "use one axis per parameter"
        )
    if values.size == 0:
        raise ValueError(f"grid axis {name!r} is empty; give at least one value")
    if values.dtype.kind not in "biufU":
        raise TypeError(
            f"grid axis {name!r} must hold numbers, booleans or strings, got dtype "
            f"{values.dtype} ({values[:3].tolist()!r}...)"
        )
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError(f"grid axis {name!r} contains NaN; give real values")
    unique, counts = np.unique(values, return_counts=True)
    if unique.size < values.size:
        repeated = unique[counts > 1]
        raise ValueError(
            f"grid axis {name!r} holds {repeated[0].item()!r} more than once"
            + (f" (and {repeated.size - 1} other repeated values)" if repeated.size > 1 else "")
            + "; every grid value must be distinct, or its results could not be told apart"
        )
    return values


def default_chunk_size(n_calls: int, parallelism: int) -> int:
    # Several chunks per worker balance the load and bound what a crash can lose.
    """Calls per chunk when the user gives no chunk size."""
    return max(1, min(_MAX_DEFAULT_CHUNK, math.ceil(n_calls / (8 * parallelism))))


def split_into_chunks(indices: np.ndarray, size: int) -> list[np.ndarray]:
    """Consecutive pieces of at most `size` call indices."""
    return [indices[start : start + size] for start in range(0, indices.size, size)]


def show_point(point: Mapping[str, Any], plan: Plan) -> str:
    """A grid point as ``name=value`` pairs for messages (without the batch axis)."""
    shown = {k: v for k, v in point.items() if k != plan.batch_axis}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "the batch"
