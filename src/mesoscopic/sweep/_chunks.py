"""Chunks of grid points: the observable evaluated at each point of one (on a worker).

A chunk's result stacks every output along a leading axis of calls; it is what the
executors send back, the checkpoint stores and the dataset is assembled from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._observable import Observable, Output, callable_name, default_output_name
from ._plan import Plan, show_point

if TYPE_CHECKING:
    import xarray as xr


# The leading axis of a chunk's outputs (one entry per call) and the variable holding each
# call's index in the grid, in memory and in checkpoint files; no output may take these names.
CALL_DIM = "sweep_call"
CALL_INDEX = "sweep_call_index"


@dataclass
class Variable:
    """One output of a chunk: its values for every call of the chunk."""

    dims: tuple[str, ...]  # without the leading call axis
    data: np.ndarray  # leading axis: calls
    attrs: dict[str, Any]


@dataclass
class ChunkResult:
    """The outputs of one chunk, with the grid indices of its calls."""

    indices: np.ndarray
    variables: dict[str, Variable]
    coords: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _CallOutput:
    dims: tuple[str, ...]
    data: np.ndarray
    attrs: dict[str, Any]


def evaluate_chunk(observable: Callable[..., Any], plan: Plan, indices: np.ndarray) -> ChunkResult:
    """Call the observable at every grid point of one chunk and stack the outputs."""
    collected: dict[str, list[np.ndarray]] = {}
    reference: dict[str, _CallOutput] | None = None
    coords: dict[str, np.ndarray] = {}
    for call_index in indices:
        point = plan.point(int(call_index))
        try:
            raw = observable(**point, **plan.fixed_params)
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python >= 3.11
                shown = {k: v for k, v in point.items() if k != plan.batch_axis}
                exc.add_note(f"while evaluating the sweep at {shown}")
            raise
        outputs, call_coords = _normalize(raw, observable, plan, point)
        if reference is None:
            reference, coords = outputs, call_coords
            collected = {name: [] for name in outputs}
        else:
            _check_same_structure(reference, outputs, point, plan)
        for name, output in outputs.items():
            collected[name].append(output.data)
    assert reference is not None  # chunks are never empty
    variables = {
        name: Variable(reference[name].dims, np.stack(arrays), reference[name].attrs)
        for name, arrays in collected.items()
    }
    return ChunkResult(np.asarray(indices, dtype=np.int64), variables, coords)


def _normalize(
    raw: Any, observable: Callable[..., Any], plan: Plan, point: Mapping[str, Any]
) -> tuple[dict[str, _CallOutput], dict[str, np.ndarray]]:
    """Turn whatever the observable returned into named arrays with dims and attrs."""
    import xarray as xr

    spec = observable if isinstance(observable, Observable) else None
    declared = spec.outputs if spec is not None else {}
    where = f"observable {callable_name(observable)!r} at {show_point(point, plan)}"

    if isinstance(raw, xr.Dataset):
        items: dict[str, Any] = {str(k): v for k, v in raw.data_vars.items()}
    elif isinstance(raw, Mapping):
        items = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"{where} returned a dict with key {key!r}; use string names")
            items[key] = value
    else:
        if len(declared) > 1:
            raise ValueError(
                f"{where} returned a single value, but the Observable declares the outputs "
                f"{list(declared)}: return a dict with these keys"
            )
        if declared:
            name = next(iter(declared))
        elif isinstance(raw, xr.DataArray) and raw.name is not None:
            name = str(raw.name)
        else:
            name = default_output_name(observable)
        items = {name: raw}
    if not items:
        raise ValueError(f"{where} returned no outputs (an empty dict or Dataset)")
    if declared and set(items) != set(declared):
        raise ValueError(
            f"{where} returned outputs {sorted(items)}, but the Observable declares "
            f"{sorted(declared)}"
        )

    outputs: dict[str, _CallOutput] = {}
    coords: dict[str, np.ndarray] = {}
    for name, value in items.items():
        if name in plan.axis_names or name in (CALL_DIM, CALL_INDEX):
            raise ValueError(
                f"{where} returned an output named {name!r}, which is a grid axis or a "
                "reserved name; rename the output"
            )
        output_spec = declared.get(name)
        attrs: dict[str, Any] = {}
        if isinstance(value, xr.DataArray):
            dims, data, attrs, value_coords = _from_dataarray(name, value, plan, where)
            coords.update(value_coords)
        else:
            data = _numeric(np.asarray(value), name, where)
            dims = _name_dims(name, data, output_spec, plan, where)
        if output_spec is not None:
            attrs["units"] = output_spec.units
            if output_spec.long_name is not None:
                attrs["long_name"] = output_spec.long_name
            attrs.update(output_spec.attrs)
        for dim in dims:
            if dim in plan.axis_names and dim != plan.batch_axis:
                raise ValueError(
                    f"{where}: output {name!r} has an axis {dim!r} that is also a grid axis; "
                    "rename the output axis"
                )
        outputs[name] = _CallOutput(dims, data, attrs)

    if spec is not None:
        for dim, values in spec.coords.items():
            coords.setdefault(dim, values)
    sizes: dict[str, int] = {}
    for name, output in outputs.items():
        for dim, length in zip(output.dims, output.data.shape):
            if sizes.setdefault(dim, length) != length:
                raise ValueError(
                    f"{where}: axis {dim!r} has length {sizes[dim]} in one output and "
                    f"{length} in {name!r}"
                )
    for dim, values in list(coords.items()):
        if dim not in sizes:
            del coords[dim]  # coordinates of an axis no output uses
        elif len(values) != sizes[dim]:
            raise ValueError(
                f"{where}: coordinate {dim!r} has {len(values)} values but the axis has "
                f"length {sizes[dim]}"
            )
    return outputs, coords


def _from_dataarray(
    name: str, value: xr.DataArray, plan: Plan, where: str
) -> tuple[tuple[str, ...], np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    dims = tuple(str(d) for d in value.dims)
    if plan.batch_axis is not None:
        if plan.batch_axis not in dims:
            raise ValueError(
                f"{where}: with batch_axis={plan.batch_axis!r} the DataArray {name!r} needs "
                f"a dimension {plan.batch_axis!r}; it has {dims}"
            )
        value = value.transpose(plan.batch_axis, ...)
        dims = tuple(str(d) for d in value.dims)
        _check_batch_length(name, value.shape[0], plan, where)
    data = _numeric(np.asarray(value.values), name, where)
    coords = {
        str(dim): np.asarray(value[dim].values)
        for dim in dims
        if dim != plan.batch_axis and dim in value.coords
    }
    return dims, data, dict(value.attrs), coords


def _name_dims(
    name: str, data: np.ndarray, spec: Output | None, plan: Plan, where: str
) -> tuple[str, ...]:
    own_ndim = data.ndim
    if plan.batch_axis is not None:
        if data.ndim == 0:
            raise ValueError(
                f"{where}: with batch_axis={plan.batch_axis!r} output {name!r} must be an "
                f"array whose first axis runs over the {plan.batch_length} "
                f"{plan.batch_axis} values, got a scalar"
            )
        _check_batch_length(name, data.shape[0], plan, where)
        own_ndim -= 1
    if spec is not None and spec.dims is not None:
        if len(spec.dims) != own_ndim:
            raise ValueError(
                f"{where}: output {name!r} is declared with dims {spec.dims} but has "
                f"{own_ndim} own axes (shape {data.shape})"
            )
        own = spec.dims
    else:
        own = tuple(f"{name}_dim{k}" for k in range(own_ndim))
    return ((plan.batch_axis,) if plan.batch_axis is not None else ()) + tuple(own)


def _check_batch_length(name: str, length: int, plan: Plan, where: str) -> None:
    if length != plan.batch_length:
        raise ValueError(
            f"{where}: output {name!r} has {length} entries along its first axis, but the "
            f"batch axis {plan.batch_axis!r} has {plan.batch_length} values"
        )


def _numeric(data: np.ndarray, name: str, where: str) -> np.ndarray:
    if data.dtype.kind not in "biufc":
        raise TypeError(
            f"{where}: output {name!r} must be numeric (or boolean), got dtype {data.dtype}"
        )
    return data


def _check_same_structure(
    reference: Mapping[str, _CallOutput],
    outputs: Mapping[str, _CallOutput],
    point: Mapping[str, Any],
    plan: Plan,
) -> None:
    if set(reference) != set(outputs):
        raise ValueError(
            f"the observable returned outputs {sorted(outputs)} at "
            f"{show_point(point, plan)} but {sorted(reference)} elsewhere; every call "
            "must return the same outputs"
        )
    for name, first in reference.items():
        now = outputs[name]
        if first.dims != now.dims or first.data.shape != now.data.shape:
            raise ValueError(
                f"output {name!r} has dims {now.dims} and shape {now.data.shape} at "
                f"{show_point(point, plan)} but dims {first.dims} and shape "
                f"{first.data.shape} elsewhere; every call must return the same shapes"
            )
