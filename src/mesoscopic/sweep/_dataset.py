"""The labelled dataset assembled from the chunks, with its provenance attributes."""

from __future__ import annotations

import datetime
import platform
import sys
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._chunks import ChunkResult
from ._observable import qualified_name
from ._plan import Plan, show_point

if TYPE_CHECKING:
    import xarray as xr


PROVENANCE_KEYS = (
    "mesoscopic_version",
    "software",
    "observable",
    "grid",
    "batch_axis",
    "fixed_params",
    "seeds",
    "fingerprint",
    "created",
)


def utc_now() -> str:
    """The time now in UTC, to the second, in ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance_attrs(
    observable: Callable[..., Any], plan: Plan, fingerprint: str
) -> dict[str, Any]:
    """The dataset attributes that record how the sweep was made."""
    import scipy
    import xarray as xr

    from .._version import __version__

    seeds = {
        name: values.tolist()
        for name, values in zip(plan.axis_names, plan.axis_values)
        if "seed" in name.lower()
    }
    seeds.update({k: _jsonable(v) for k, v in plan.fixed_params.items() if "seed" in k.lower()})
    return {
        "mesoscopic_version": __version__,
        "software": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "xarray": xr.__version__,
            "platform": sys.platform,
        },
        "observable": qualified_name(observable),
        "grid": {name: values.tolist() for name, values in zip(plan.axis_names, plan.axis_values)},
        "batch_axis": plan.batch_axis,
        "fixed_params": _jsonable(plan.fixed_params),
        "seeds": seeds,
        "fingerprint": fingerprint,
        "created": utc_now(),
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def assemble(plan: Plan, chunks: Sequence[ChunkResult], attrs: dict[str, Any]) -> xr.Dataset:
    """The labelled dataset of the whole grid, from chunks that cover it once."""
    import xarray as xr

    if not chunks:
        raise ValueError("the sweep produced no results")  # unreachable for a valid grid
    reference = chunks[0]

    def where(chunk: ChunkResult) -> str:
        return show_point(plan.point(int(chunk.indices[0])), plan)

    for chunk in chunks[1:]:
        if set(chunk.variables) != set(reference.variables):
            raise ValueError(
                f"the observable returned outputs {sorted(chunk.variables)} at {where(chunk)} "
                f"but {sorted(reference.variables)} at {where(reference)}; every call must "
                "return the same outputs"
            )
        for name, variable in chunk.variables.items():
            first = reference.variables[name]
            if variable.dims != first.dims or variable.data.shape[1:] != first.data.shape[1:]:
                raise ValueError(
                    f"output {name!r} has dims {variable.dims} and shape "
                    f"{variable.data.shape[1:]} at {where(chunk)} but dims {first.dims} and "
                    f"shape {first.data.shape[1:]} at {where(reference)}; every call must "
                    "return the same shapes"
                )
        for dim, values in chunk.coords.items():
            if dim in reference.coords and not np.array_equal(values, reference.coords[dim]):
                raise ValueError(f"coordinate {dim!r} differs between chunks")

    filled = np.zeros(plan.n_calls, dtype=bool)
    for chunk in chunks:
        filled[chunk.indices] = True
    if not filled.all():
        raise RuntimeError(f"{int((~filled).sum())} grid points have no result")

    call_axes = plan.call_axes
    data_vars = {}
    for name, first in reference.variables.items():
        dtype = np.result_type(*(chunk.variables[name].data.dtype for chunk in chunks))
        full = np.empty((plan.n_calls, *first.data.shape[1:]), dtype=dtype)
        for chunk in chunks:
            full[chunk.indices] = chunk.variables[name].data
        shaped = full.reshape(plan.call_shape + first.data.shape[1:])
        array = xr.DataArray(shaped, dims=call_axes + first.dims, attrs=dict(first.attrs))
        own_dims = [d for d in first.dims if d != plan.batch_axis]
        data_vars[name] = array.transpose(*plan.axis_names, *own_dims)

    coords: dict[Hashable, Any] = {}
    for axis, values in zip(plan.axis_names, plan.axis_values):
        axis_attrs = {"units": plan.units[axis]} if axis in plan.units else {}
        coords[axis] = (axis, values, axis_attrs)
    for dim, values in reference.coords.items():
        dim_attrs = {"units": plan.units[dim]} if dim in plan.units else {}
        coords[dim] = (dim, values, dim_attrs)
    unused = sorted(set(plan.units) - set(coords))
    if unused:
        warnings.warn(
            f"units were given for {unused}, which are neither grid axes nor coordinates of "
            f"the outputs ({sorted(map(str, coords))}); they are not recorded",
            UserWarning,
            stacklevel=3,
        )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
