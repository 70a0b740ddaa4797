"""Parameter sweeps: one observable over a grid, serially, on local processes or on Dask.

:func:`run_sweep` calls ``observable(**point)`` at every point of the Cartesian
product of a parameter grid (energy, gate, field, bias, temperature, disorder seed,
...) and returns a labelled :class:`xarray.Dataset`: one dimension per grid axis,
followed by the observable's own dimensions, units in the variable attributes and
provenance (package version, grid, fixed parameters, seeds, time, observable) in
the dataset attributes.

The same code runs

* serially (``executor="serial"``, the default),
* on local worker processes (``executor="processes"``; the observable must be
  picklable, i.e. a function defined with ``def`` at module level, a
  :class:`functools.partial` of one, or an :class:`Observable` wrapping one), or
* on Dask distributed (``executor="dask"``): an existing ``client=``, a
  ``scheduler="tcp://host:port"`` address, or else a LocalCluster started for the
  sweep and closed after it. Dask ships the observable with cloudpickle, so closures
  and lambdas work there; functions from your own modules must be importable on the
  workers.

Work is cut into chunks of grid points; with ``checkpoint=`` every finished chunk is
written at once (atomically, see :mod:`mesoscopic.io`) and a re-run of the same sweep
loads the finished chunks instead of computing them again, whatever stopped the
first run (an exception, Ctrl-C, a dead worker, ``kill -9``).

What a checkpoint guarantees:

* It records a fingerprint of the grid, the fixed parameters and the observable, and
  a readable description of each part beside it; pointing a different sweep at it
  raises an error that names the parts that differ. The observable enters by its
  qualified name and the hash of its source, the arguments of partials and the
  outputs of Observables, and the simple constants (numbers, strings, tuples, arrays,
  ...) it reads from its module or its closure, following the functions of its own
  module that it calls. A finalized System among the fixed parameters enters by
  :meth:`~mesoscopic.system.System.content_digest`; other objects by their pickled
  state, or by their type alone when they cannot be pickled (a warning says so).
  Functions of other modules and constants reached through attributes
  (``module.NAME``) do not enter it: after changing those, start a new checkpoint.
* Each chunk holds a SHA-256 checksum of its data (indices, values, dtypes, shapes,
  attributes, coordinates). A chunk that fails it, or cannot be read, is set aside as
  ``*.damaged`` and its points are computed again, with a warning.
* Only regular NetCDF3 files are read, and a chunk's fingerprint is checked before its
  data; a directory, a link, another format or another sweep's chunk is refused.
* The final dataset ``<stem>.nc`` is written atomically; temporaries left by a killed
  save are removed on the next run. An existing ``<stem>.nc`` that is not this sweep's
  result is not replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import inspect
import json
import keyword
import math
import multiprocessing
import os
import pathlib
import pickle
import platform
import sys
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import io as _io
from .._workers import exit_with_parent

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Observable", "Output", "run_sweep"]

ExecutorName = Literal["serial", "processes", "dask"]

_EXECUTORS = ("serial", "processes", "dask")
_CALL_DIM = "sweep_call"
_CALL_INDEX = "sweep_call_index"
_MANIFEST = "sweep.json"
_CHUNK_PREFIX = "chunk-"
_MANIFEST_FORMAT = 2  # 2: chunks carry a checksum; the observable's constants fingerprinted
_MAX_MANIFEST_BYTES = 64 * 2**20
_CHECKSUM = "checksum"
_MAX_DEFAULT_CHUNK = 256
_PROVENANCE_KEYS = (
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


@dataclass(frozen=True)
class Output:
    """Description of one output of an :class:`Observable`.

    Parameters
    ----------
    units : str
        Unit of the values, written to the variable's ``units`` attribute
        (``"1"`` for dimensionless, ``"e^2/h"``, ``"t"`` for the hopping, ...).
    dims : tuple of str, optional
        Names of the output's own axes when the observable returns a plain array
        (for example ``("lead_to", "lead_from")`` for a transmission matrix); ``()``
        for a scalar. With a `batch_axis`, the leading batch axis is not listed.
        Default: taken from a returned DataArray, else named ``<output>_dim0``,
        ``<output>_dim1``, ...
    long_name : str, optional
        Human-readable description, written to ``long_name``.

    Examples
    --------
    >>> Output("e^2/h", long_name="linear conductance")
    Output(units='e^2/h', dims=None, long_name='linear conductance')
    """

    units: str
    dims: tuple[str, ...] | None = None
    long_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.units, str):
            raise TypeError(f"units must be a string such as 'e^2/h', got {self.units!r}")
        if self.dims is not None:
            if isinstance(self.dims, str) or not all(isinstance(d, str) for d in self.dims):
                raise TypeError(f"dims must be a tuple of strings, got {self.dims!r}")
            object.__setattr__(self, "dims", tuple(self.dims))


class Observable:
    """A function of named parameters with named, described outputs.

    Wrapping a function is optional: :func:`run_sweep` accepts any callable. The
    wrapper gives the outputs units, axis names and coordinates, and the sweep a
    name. It is picklable whenever `func` is.

    Parameters
    ----------
    func : callable
        Called as ``func(**point, **fixed_params)``. Returns a number, an array, a
        dict of those, an :class:`xarray.DataArray` or an :class:`xarray.Dataset`.
    outputs : mapping of str to Output or str, optional
        The outputs by name; a string is shorthand for ``Output(units=string)``. With
        one output, `func` may return the bare value; with several it returns a dict
        with exactly these keys.
    coords : mapping of str to array_like, optional
        Coordinate values for the outputs' own axes, e.g. ``{"lead": [0, 1]}``.
    name : str, optional
        Name of the observable in the provenance and the progress bar; default the
        function's name.

    Examples
    --------
    >>> def transmission(energy):
    ...     return {"T": 1.0, "R": 0.0}
    >>> observable = Observable(transmission, outputs={"T": "1", "R": "1"})
    >>> observable(energy=0.5)
    {'T': 1.0, 'R': 0.0}
    >>> observable.name
    'transmission'
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        outputs: Mapping[str, Output | str] | None = None,
        coords: Mapping[str, ArrayLike] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}: {func!r}")
        self.func = func
        self.outputs: dict[str, Output] = {}
        for key, spec in (outputs or {}).items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"output names must be non-empty strings, got {key!r}")
            if isinstance(spec, str):
                spec = Output(spec)
            if not isinstance(spec, Output):
                raise TypeError(
                    f"output {key!r} must be described by an Output or a units string, "
                    f"got {spec!r}"
                )
            self.outputs[key] = spec
        self.coords = {str(k): np.asarray(v) for k, v in (coords or {}).items()}
        for key, values in self.coords.items():
            if values.ndim != 1:
                raise ValueError(
                    f"coords[{key!r}] must be 1-D, got an array of shape {values.shape}"
                )
        self.name = name if name is not None else _callable_name(func)

    def __call__(self, **params: Any) -> Any:
        return self.func(**params)

    def __repr__(self) -> str:
        return f"Observable({self.name}, outputs={list(self.outputs)})"


def run_sweep(
    observable: Callable[..., Any],
    grid: Mapping[str, ArrayLike],
    *,
    fixed_params: Mapping[str, Any] | None = None,
    batch_axis: str | None = None,
    executor: ExecutorName | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    units: Mapping[str, str] | None = None,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """Evaluate an observable over the Cartesian product of a parameter grid.

    Parameters
    ----------
    observable : callable
        Called as ``observable(**point, **fixed_params)`` with one value of every grid
        axis (as a Python scalar). Returns a number, an array, a dict of those, an
        :class:`xarray.DataArray` (its dims, coords and attrs are kept) or an
        :class:`xarray.Dataset`; every call must return the same structure and
        shapes. Wrap it in an :class:`Observable` to name outputs and give units.
    grid : mapping of str to 1-D array_like
        Axis name -> values, e.g. ``{"energy": np.linspace(0.1, 1, 50), "seed":
        range(10)}``. Names are keyword arguments of the observable; the order of the
        mapping is the order of the dataset's dimensions. Values are numbers,
        booleans or strings, non-empty and without NaN.
    fixed_params : mapping, optional
        Parameters passed unchanged to every call (recorded in the provenance and
        part of the checkpoint fingerprint).
    batch_axis : str, optional
        A grid axis whose whole vector is passed in one call (for solvers batched
        over energies). The observable then returns arrays whose first axis runs
        along it (or DataArrays with that dimension).
    executor : {"serial", "processes", "dask"}, optional
        Default: ``"dask"`` when `client` or `scheduler` is given, else ``"serial"``.
    workers : int, optional
        Number of worker processes for ``"processes"`` and for the LocalCluster of
        ``"dask"`` (one thread each). Default: the number of CPUs.
    client : distributed.Client, optional
        An existing Dask client to run on; it is left open.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``; a client
        is connected for the sweep and closed after it.
    chunk_size : int, optional
        Observable calls per chunk, the unit of work sent to a worker and of
        checkpointing. Default: about eight chunks per worker, at most 256 calls each.
    checkpoint : str or path-like, optional
        Where to keep results. Finished chunks go to the directory
        ``<stem>.chunks/`` and the assembled dataset to ``<stem>.nc``, where
        ``<stem>`` is `checkpoint` without a trailing ``.nc``. Re-running the same
        sweep with the same `checkpoint` resumes; a different sweep raises. Each chunk
        carries a SHA-256 checksum of its data: a chunk that fails it is computed
        again with a warning. Entries that are not NetCDF3 files written for this
        sweep are refused before their data are read.
    progress : bool, optional
        Show a tqdm progress bar (on stderr) counting grid points. Default: shown
        when stderr is a terminal.
    units : mapping of str to str, optional
        Units of grid axes and output coordinates by name, e.g. ``{"energy": "t"}``
        (a grid axis given as a DataArray with a ``units`` attribute has its own).
    attrs : mapping, optional
        Extra dataset attributes (title, model description, ...). They may not use
        the provenance names: mesoscopic_version, software, observable, grid,
        batch_axis, fixed_params, seeds, fingerprint, created.
    overwrite : bool, optional
        With a `checkpoint`: replace an existing ``<stem>.nc`` that is not this
        sweep's own result, and discard a checkpoint directory that belongs to a
        different sweep. Default False: both raise before anything is computed.

    Returns
    -------
    xarray.Dataset
        One variable per output, dims ``(*grid axes, *output dims)``, with the grid
        values as coordinates. Attributes: `attrs` plus ``mesoscopic_version``,
        ``software`` (versions), ``observable``, ``grid`` (axis -> list of values),
        ``batch_axis``, ``fixed_params``, ``seeds`` (values of every axis or fixed
        parameter whose name contains "seed"), ``fingerprint`` and ``created`` (UTC
        time of assembly). Save it with :func:`mesoscopic.io.save`, which stores the
        dict-valued attributes as JSON.

    Raises
    ------
    ValueError
        Unknown executor, bad grid (empty, not 1-D, NaN, repeated values, names that
        are not identifiers), bad options, a checkpoint that belongs to a different
        sweep or holds foreign files, an existing ``<stem>.nc`` of another sweep
        (without `overwrite`), results that would not fit in memory (estimated
        before computing from the grid size, then from the first results), or
        outputs whose structure changes between calls.
    TypeError
        A non-callable observable, one that cannot be pickled for
        ``executor="processes"``, or outputs that are not numeric.
    ImportError
        ``executor="dask"`` without Dask distributed installed.
    RuntimeError
        A worker process died (``executor="processes"``); finished chunks are kept
        in the checkpoint. Or worker processes were started while a script was
        being imported by a spawned process: the script needs an
        ``if __name__ == "__main__":`` guard.

    Examples
    --------
    >>> import numpy as np
    >>> from mesoscopic.analytic import chain_barrier_transmission
    >>> def barrier(energy, height):
    ...     return chain_barrier_transmission(energy, height, 3)
    >>> result = run_sweep(
    ...     Observable(barrier, outputs={"transmission": "1"}),
    ...     {"energy": [-1.0, 0.0, 1.0], "height": [0.0, 0.5]},
    ...     units={"energy": "t", "height": "t"},
    ...     progress=False,
    ... )
    >>> result["transmission"].dims
    ('energy', 'height')
    >>> result["transmission"].sel(height=0.0).values.tolist()
    [1.0, 1.0, 1.0]
    >>> result.attrs["grid"]
    {'energy': [-1.0, 0.0, 1.0], 'height': [0.0, 0.5]}
    """
    if not callable(observable):
        raise TypeError(
            f"observable must be callable, got {type(observable).__name__}: {observable!r}"
        )
    plan = _make_plan(grid, fixed_params, batch_axis, units)
    chosen = _choose_executor(executor, client, scheduler, workers)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (automatic), got {progress!r}")
    user_attrs = dict(attrs or {})
    clashes = sorted(set(map(str, user_attrs)) & set(_PROVENANCE_KEYS))
    if clashes:
        raise ValueError(
            f"attrs may not set {clashes}: these names hold the provenance "
            f"({', '.join(_PROVENANCE_KEYS)}); choose other names"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    points_per_call = plan.batch_length
    _check_memory(plan.n_calls * points_per_call, plan.n_calls, None, grid=plan.call_sizes)
    if chosen == "processes":
        _check_picklable(observable, plan.fixed_params)

    description = _describe(observable, plan)
    fingerprint = _fingerprint(description)
    store = None
    done: list[_ChunkResult] = []
    if checkpoint is not None:
        store = _CheckpointStore(checkpoint)
        store.open(description, fingerprint, overwrite=overwrite)
        done = store.load_chunks(fingerprint, plan.n_calls)

    sized = False

    def check_result_size(result: _ChunkResult) -> None:
        nonlocal sized
        if not sized:
            sized = True
            per_call = sum(v.data.nbytes for v in result.variables.values()) / len(result.indices)
            _check_memory(
                plan.n_calls * points_per_call,
                plan.n_calls,
                math.ceil(per_call / points_per_call),
                grid=plan.call_sizes,
            )

    for chunk in done[:1]:
        check_result_size(chunk)

    finished = np.zeros(plan.n_calls, dtype=bool)
    for chunk in done:
        finished[chunk.indices] = True
    remaining = np.flatnonzero(~finished)

    results = list(done)
    bar = _progress_bar(
        progress,
        total=plan.n_calls * points_per_call,
        initial=int(finished.sum()) * points_per_call,
        name=_callable_name(observable),
    )

    def collect(result: _ChunkResult) -> None:
        check_result_size(result)
        if store is not None:
            store.write_chunk(result, fingerprint)
        results.append(result)
        bar.update(len(result.indices) * points_per_call)

    try:
        if remaining.size:
            if chosen == "serial":
                size = chunk_size or _default_chunk_size(remaining.size, 1)
                for indices in _split(remaining, size):
                    collect(_evaluate_chunk(observable, plan, indices))
            elif chosen == "processes":
                count = workers or os.cpu_count() or 1
                size = chunk_size or _default_chunk_size(remaining.size, count)
                _run_processes(
                    observable, plan, _split(remaining, size), count, collect, store, results
                )
            else:
                with _dask_client(client, scheduler, workers) as dask_client:
                    count = max(1, sum(dask_client.nthreads().values()))
                    size = chunk_size or _default_chunk_size(remaining.size, count)
                    _run_dask(dask_client, observable, plan, _split(remaining, size), collect)
    finally:
        bar.close()

    provenance = _provenance(observable, plan, fingerprint)
    dataset = _assemble(plan, results, {**user_attrs, **provenance})
    if store is not None:
        _io.save(dataset, store.final_path)
    return dataset


# --- memory ---------------------------------------------------------------------------------

# Per observable call: its flag, its index and the index's copies in the chunk lists.
_BOOKKEEPING_BYTES_PER_CALL = 24


def _check_memory(
    n_points: int, n_calls: int, bytes_per_point: int | None, *, grid: Sequence[int] = ()
) -> None:
    """Refuse a sweep whose results would not fit in the memory available now.

    The results are held twice while they are assembled (the chunks and the dataset).
    Without `bytes_per_point` (before the first result), one byte per point is the
    lower bound used.
    """
    available = _available_memory()
    if available is None:
        return
    per_point = 1 if bytes_per_point is None else max(int(bytes_per_point), 1)
    needed = 2 * n_points * per_point + n_calls * _BOOKKEEPING_BYTES_PER_CALL
    if needed <= available:
        return
    shape = " x ".join(map(str, grid))
    if bytes_per_point is None:
        size = (
            f"at least {_format_bytes(needed)} (one byte per point, held twice while assembling)"
        )
    else:
        size = f"about {_format_bytes(needed)} (held twice while assembling)"
    raise ValueError(
        f"the sweep has {n_points} points"
        + (f" ({shape} grid values)" if len(grid) > 1 else "")
        + (f" of {per_point} bytes each" if bytes_per_point is not None else "")
        + f" and its results would need {size} of memory, more than the "
        f"{_format_bytes(available)} available; sweep fewer points, or split the grid "
        "into several sweeps"
    )


def _available_memory() -> int | None:
    """Bytes of memory available to this process now, or None when unknown."""
    available = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # the total where "free" is unknown
        if available is None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                available = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
    # A container's own limit (cgroup v2) may be lower than the machine's memory.
    with contextlib.suppress(OSError, ValueError):
        limit = pathlib.Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = pathlib.Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            left = max(int(limit) - int(used), 0)
            available = left if available is None else min(available, left)
    return available


def _format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


# --- the plan: the grid and how calls map onto it ---------------------------------------


@dataclass(frozen=True)
class _Plan:
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


def _make_plan(
    grid: Mapping[str, ArrayLike],
    fixed_params: Mapping[str, Any] | None,
    batch_axis: str | None,
    units: Mapping[str, str] | None,
) -> _Plan:
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
    return _Plan(tuple(names), tuple(values_list), batch_axis, fixed, axis_units)


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


def _default_chunk_size(n_calls: int, parallelism: int) -> int:
    # Several chunks per worker balance the load and bound what a crash can lose.
    return max(1, min(_MAX_DEFAULT_CHUNK, math.ceil(n_calls / (8 * parallelism))))


def _split(indices: np.ndarray, size: int) -> list[np.ndarray]:
    return [indices[start : start + size] for start in range(0, indices.size, size)]


# --- evaluating a chunk (runs on the workers) --------------------------------------------


@dataclass
class _Variable:
    dims: tuple[str, ...]  # without the leading call axis
    data: np.ndarray  # leading axis: calls
    attrs: dict[str, Any]


@dataclass
class _ChunkResult:
    indices: np.ndarray
    variables: dict[str, _Variable]
    coords: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _CallOutput:
    dims: tuple[str, ...]
    data: np.ndarray
    attrs: dict[str, Any]


def _evaluate_chunk(
    observable: Callable[..., Any], plan: _Plan, indices: np.ndarray
) -> _ChunkResult:
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
        name: _Variable(reference[name].dims, np.stack(arrays), reference[name].attrs)
        for name, arrays in collected.items()
    }
    return _ChunkResult(np.asarray(indices, dtype=np.int64), variables, coords)


def _normalize(
    raw: Any, observable: Callable[..., Any], plan: _Plan, point: Mapping[str, Any]
) -> tuple[dict[str, _CallOutput], dict[str, np.ndarray]]:
    """Turn whatever the observable returned into named arrays with dims and attrs."""
    import xarray as xr

    spec = observable if isinstance(observable, Observable) else None
    declared = spec.outputs if spec is not None else {}
    where = f"observable {_callable_name(observable)!r} at {_show_point(point, plan)}"

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
            name = _default_output_name(observable)
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
        if name in plan.axis_names or name in (_CALL_DIM, _CALL_INDEX):
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
    name: str, value: xr.DataArray, plan: _Plan, where: str
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
    name: str, data: np.ndarray, spec: Output | None, plan: _Plan, where: str
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


def _check_batch_length(name: str, length: int, plan: _Plan, where: str) -> None:
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
    plan: _Plan,
) -> None:
    if set(reference) != set(outputs):
        raise ValueError(
            f"the observable returned outputs {sorted(outputs)} at "
            f"{_show_point(point, plan)} but {sorted(reference)} elsewhere; every call "
            "must return the same outputs"
        )
    for name, first in reference.items():
        now = outputs[name]
        if first.dims != now.dims or first.data.shape != now.data.shape:
            raise ValueError(
                f"output {name!r} has dims {now.dims} and shape {now.data.shape} at "
                f"{_show_point(point, plan)} but dims {first.dims} and shape "
                f"{first.data.shape} elsewhere; every call must return the same shapes"
            )


def _show_point(point: Mapping[str, Any], plan: _Plan) -> str:
    shown = {k: v for k, v in point.items() if k != plan.batch_axis}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "the batch"


# --- executors ----------------------------------------------------------------------------


def _choose_executor(
    executor: str | None, client: Any, scheduler: str | None, workers: int | None
) -> ExecutorName:
    if executor is None:
        executor = "dask" if client is not None or scheduler is not None else "serial"
    if executor not in _EXECUTORS:
        raise ValueError(f"executor must be one of {list(_EXECUTORS)}, got {executor!r}")
    if executor != "dask" and (client is not None or scheduler is not None):
        raise ValueError(f"client= and scheduler= need executor='dask', got executor={executor!r}")
    if client is not None and scheduler is not None:
        raise ValueError("give either client= or scheduler=, not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string, got {scheduler!r}")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if executor == "serial" or client is not None or scheduler is not None:
            raise ValueError(
                "workers= sets the size of a local pool: it applies to executor='processes' "
                "and to executor='dask' without client= or scheduler="
            )
    return executor  # type: ignore[return-value]


def _check_picklable(observable: Callable[..., Any], fixed_params: Mapping[str, Any]) -> None:
    try:
        pickle.dumps(observable)
    except Exception as exc:
        raise TypeError(
            f"executor='processes' sends the observable to worker processes, but "
            f"{_callable_name(observable)!r} cannot be pickled ({exc}). Define it with def "
            "at module level (not a lambda or a nested function), or use "
            "executor='serial' or executor='dask'"
        ) from exc
    for key, value in fixed_params.items():
        try:
            pickle.dumps(value)
        except Exception as exc:
            raise TypeError(
                f"executor='processes' sends fixed_params to worker processes, but "
                f"fixed_params[{key!r}] cannot be pickled ({exc}). Build it inside the "
                "observable, or use executor='dask', which pickles closures too"
            ) from exc


def _run_processes(
    observable: Callable[..., Any],
    plan: _Plan,
    chunks: Sequence[np.ndarray],
    workers: int,
    collect: Callable[[_ChunkResult], None],
    store: _CheckpointStore | None,
    results: Sequence[_ChunkResult],
) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent)
    clean_exit = False
    try:
        with _explain_missing_main_guard("executor='processes'"):
            futures = [pool.submit(_evaluate_chunk, observable, plan, chunk) for chunk in chunks]
        try:
            for future in as_completed(futures):
                collect(future.result())
        except BrokenProcessPool as exc:
            saved = (
                f"; they are saved in {str(store.directory)!r}: run the same sweep again to resume"
                if store is not None
                else ""
            )
            guard = ""
            if multiprocessing.get_start_method() != "fork":
                guard = (
                    ". Worker processes are started with the "
                    f"{multiprocessing.get_start_method()!r} method, which imports the main "
                    "script again: if it has no " + _MAIN_GUARD + " guard around the sweep, "
                    "each worker starts the sweep itself and dies"
                )
            raise RuntimeError(
                f"a worker process died (killed or out of memory) with {len(results)} "
                f"chunks finished{saved}{guard}"
            ) from exc
        clean_exit = True
    finally:
        # After an error or Ctrl-C, do not wait for chunks whose results would be lost.
        pool.shutdown(wait=clean_exit, cancel_futures=True)


_MAIN_GUARD = 'if __name__ == "__main__":'
_BOOTSTRAPPING = "bootstrapping phase"


@contextlib.contextmanager
def _explain_missing_main_guard(what: str) -> Iterator[None]:
    """Turn multiprocessing's bootstrapping error into advice about the main guard."""
    try:
        yield
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and _BOOTSTRAPPING not in str(cause):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise RuntimeError(
            f"{what} starts worker processes, and this process is itself a worker that is "
            "still importing the main script: the script runs the sweep at import time. "
            "Worker processes started with 'spawn' (the default on Windows and macOS, and "
            "for Dask's LocalCluster) or 'forkserver' import the main script again, so the "
            f"code that starts the sweep must sit under {_MAIN_GUARD}, e.g.\n\n"
            f"    {_MAIN_GUARD}\n        result = run_sweep(...)\n"
        ) from exc


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "executor='dask' needs Dask distributed: pip install 'mesoscopic[dask]'"
        ) from exc
    return distributed


@contextlib.contextmanager
def _dask_client(client: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    distributed = _import_distributed()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        yield client
        return
    if scheduler is not None:
        try:
            connected = distributed.Client(scheduler)
        except OSError as exc:
            raise OSError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); check that it "
                "runs and that the address is tcp://host:port"
            ) from exc
        with connected:
            yield connected
        return
    try:
        with _explain_missing_main_guard("executor='dask' with a LocalCluster"):
            # The scheduler's HTTP server always starts: a free port on the loopback
            # interface keeps it private and clear of other clusters on this machine.
            cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",
            )
    except RuntimeError as exc:
        if "Nanny failed to start" not in str(exc):
            raise
        # The workers' own errors go to their stderr; this process only sees that they died.
        raise RuntimeError(
            f"the Dask LocalCluster could not start its worker processes ({exc}). They are "
            "started with 'spawn', which imports the main script again: a script that "
            f"runs the sweep at import time needs {_MAIN_GUARD} around it (the workers' "
            "errors are printed above)"
        ) from exc
    with cluster, distributed.Client(cluster) as local:
        yield local


def _run_dask(
    client: Any,
    observable: Callable[..., Any],
    plan: _Plan,
    chunks: Sequence[np.ndarray],
    collect: Callable[[_ChunkResult], None],
) -> None:
    distributed = _import_distributed()
    # Shipped once to every worker rather than once per chunk.
    [observable_ref, plan_ref] = client.scatter([observable, plan], broadcast=True, hash=False)
    futures = [
        client.submit(_evaluate_chunk, observable_ref, plan_ref, chunk, pure=False)
        for chunk in chunks
    ]
    try:
        for future in distributed.as_completed(futures):
            collect(future.result())
            future.release()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.cancel([observable_ref, plan_ref])


# --- checkpoints ----------------------------------------------------------------------------


class _CheckpointStore:
    """A directory of finished chunks plus the final NetCDF file beside it."""

    def __init__(self, checkpoint: str | os.PathLike[str]) -> None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path, got {checkpoint!r}")
        path = pathlib.Path(checkpoint)
        stem = path.with_suffix("") if path.suffix == ".nc" else path
        if not stem.name:
            raise ValueError(f"checkpoint must name a file, got {str(checkpoint)!r}")
        self.final_path = stem.with_name(stem.name + ".nc")
        self.directory = stem.with_name(stem.name + ".chunks")

    def open(self, description: dict[str, Any], fingerprint: str, *, overwrite: bool) -> None:
        """Check the final file and the directory, then resume, start over or start."""
        manifest_path = self.directory / _MANIFEST
        if self.directory.is_symlink() or (
            self.directory.exists() and not self.directory.is_dir()
        ):
            raise ValueError(
                f"checkpoint directory {str(self.directory)!r} exists and is not a directory"
            )
        stored = self._read_manifest(manifest_path) if manifest_path.exists() else None
        if stored is not None and stored.get("fingerprint") != fingerprint and not overwrite:
            raise ValueError(
                f"checkpoint {str(self.directory)!r} belongs to a different sweep: "
                f"{_difference(stored.get('description', {}), description)}. Use a new "
                f"checkpoint path, pass overwrite=True to discard it and its result, or "
                f"delete {str(self.directory)!r} to start over"
            )
        if not overwrite:
            self._check_final_file(fingerprint)
        # A final save killed half-way leaves a temporary beside the final file.
        _io._remove_stale_temporaries(self.final_path)
        if self.directory.exists():
            self._remove_temporaries()
        if stored is not None:
            if stored.get("fingerprint") == fingerprint:
                return
            self._discard()
        elif self.directory.exists() and any(self.directory.glob(f"{_CHUNK_PREFIX}*")):
            if not overwrite:
                raise ValueError(
                    f"checkpoint directory {str(self.directory)!r} holds chunks but no "
                    f"{_MANIFEST}; delete it to start over"
                )
            self._discard()
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": _MANIFEST_FORMAT,
            "fingerprint": fingerprint,
            "started": _utc_now(),
            "description": description,
        }
        _write_text_atomically(manifest_path, json.dumps(manifest, indent=1, allow_nan=True))

    def _read_manifest(self, manifest_path: pathlib.Path) -> dict[str, Any]:
        try:
            if manifest_path.is_symlink() or not manifest_path.is_file():
                raise ValueError("it is not a regular file")
            if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
                raise ValueError(f"it is larger than {_MAX_MANIFEST_BYTES} bytes")
            stored = json.loads(manifest_path.read_text())
            if not isinstance(stored, dict):
                raise ValueError("it is not a JSON object")
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read checkpoint manifest {str(manifest_path)!r} ({exc}); delete "
                f"{str(self.directory)!r} to start over"
            ) from exc
        if stored.get("format") != _MANIFEST_FORMAT:
            raise ValueError(
                f"checkpoint {str(self.directory)!r} has format {stored.get('format')!r}, "
                f"from another version of mesoscopic (this one writes format "
                f"{_MANIFEST_FORMAT}); delete it to start over"
            )
        return stored

    def _check_final_file(self, fingerprint: str) -> None:
        """An existing final file is replaced only if it is this sweep's own result."""
        final = self.final_path
        if not (final.exists() or final.is_symlink()):
            return
        seen: list[Any] = []

        def stop_after_attributes(attrs: dict[Any, Any]) -> None:
            seen.append(attrs.get("fingerprint"))
            raise _AttributesRead

        with contextlib.suppress(_AttributesRead, ValueError, OSError):
            _io._read_netcdf(final, check_attrs=stop_after_attributes, netcdf3_only=True)
        if seen != [fingerprint]:
            raise ValueError(
                f"{str(final)!r} exists and is not the result of this sweep; run_sweep does "
                "not replace it: pass overwrite=True to replace it, or choose another "
                "checkpoint path"
            )

    def _discard(self) -> None:
        """Empty a checkpoint directory of another sweep; refuse if it holds other files."""
        entries = list(self.directory.iterdir())
        foreign = [
            entry.name
            for entry in entries
            if entry.is_symlink()
            or not entry.is_file()
            or not (entry.name == _MANIFEST or entry.name.startswith(_CHUNK_PREFIX))
        ]
        if foreign:
            raise ValueError(
                f"checkpoint directory {str(self.directory)!r} holds entries that are not "
                f"checkpoint files ({', '.join(sorted(foreign)[:5])}); it is not discarded: "
                "delete it yourself, or use a new checkpoint path"
            )
        for entry in entries:
            entry.unlink()

    def _remove_temporaries(self) -> None:
        # Left by a writer killed between creating and renaming a file: never data.
        for leftover in self.directory.glob(".*.tmp"):
            if leftover.is_file() or leftover.is_symlink():
                leftover.unlink(missing_ok=True)

    def load_chunks(self, fingerprint: str, n_calls: int) -> list[_ChunkResult]:
        """The finished chunks: fingerprint checked first, then the checksum of the data."""
        chunks = []
        covered = np.zeros(n_calls, dtype=bool)
        for path in sorted(self.directory.glob(f"{_CHUNK_PREFIX}*.nc")):
            chunk = self._read_chunk(path, fingerprint)
            if chunk is None:
                continue
            indices = chunk.indices
            if indices.size and (indices.min() < 0 or indices.max() >= n_calls):
                raise ValueError(f"checkpoint chunk {str(path)!r} has points outside the grid")
            if np.unique(indices).size != indices.size or covered[indices].any():
                self._set_aside(path, "holds points that another chunk holds too")
                continue
            covered[indices] = True
            chunks.append(chunk)
        return chunks

    def _read_chunk(self, path: pathlib.Path, fingerprint: str) -> _ChunkResult | None:
        if path.is_symlink() or not path.is_file():
            raise ValueError(
                f"checkpoint entry {str(path)!r} is not a regular file; a checkpoint holds "
                "only NetCDF3 files written by mesoscopic, so it is not opened. Delete it, "
                f"or delete {str(self.directory)!r} to start over"
            )
        with open(path, "rb") as handle:
            magic = handle.read(3)
        if magic != b"CDF":
            raise ValueError(
                f"checkpoint chunk {str(path)!r} is not a NetCDF3 file written by mesoscopic "
                f"(it starts with {magic!r}); it is not opened. Delete it, or delete "
                f"{str(self.directory)!r} to start over"
            )

        def same_sweep(attrs: dict[Any, Any]) -> None:
            if attrs.get("fingerprint") != fingerprint:
                raise _ForeignChunk

        try:
            dataset = _io._read_netcdf(path, check_attrs=same_sweep, netcdf3_only=True)
            chunk = _chunk_from_dataset(dataset)
        except _ForeignChunk:
            raise ValueError(
                f"checkpoint chunk {str(path)!r} belongs to a different sweep; delete "
                f"{str(self.directory)!r} to start over"
            ) from None
        except Exception as exc:
            # Atomic writes never leave such a file; something else damaged it.
            self._set_aside(path, f"is unreadable ({exc})")
            return None
        stored = dataset.attrs.get(_CHECKSUM)
        if stored is None or stored != _chunk_checksum(chunk):
            self._set_aside(path, "fails its checksum (its data changed after it was written)")
            return None
        return chunk

    def _set_aside(self, path: pathlib.Path, problem: str) -> None:
        damaged = path.with_name(path.name + ".damaged")
        os.replace(path, damaged)
        warnings.warn(
            f"checkpoint chunk {str(path)!r} {problem}; it is kept as {damaged.name!r} and "
            "its points are computed again",
            RuntimeWarning,
            stacklevel=4,
        )

    def write_chunk(self, chunk: _ChunkResult, fingerprint: str) -> None:
        name = f"{_CHUNK_PREFIX}{int(chunk.indices[0]):010d}-{uuid.uuid4().hex[:8]}.nc"
        _io.save(_chunk_to_dataset(chunk, fingerprint), self.directory / name)


class _ForeignChunk(Exception):
    """A chunk whose fingerprint is not this sweep's (raised before its data are read)."""


class _AttributesRead(Exception):
    """Stops reading a file once its attributes are known."""


def _chunk_checksum(chunk: _ChunkResult) -> str:
    """SHA-256 of a chunk as the NetCDF round trip keeps it.

    It covers the call indices, every output (name, dims, attributes, dtype, shape and
    bytes) and the output coordinates.
    """
    digest = hashlib.sha256()

    def add_array(label: str, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind in "biufc":
            canonical = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
            header = [label, canonical.dtype.str, list(canonical.shape)]
            digest.update(json.dumps(header).encode())
            digest.update(canonical.tobytes())
        else:  # strings: their dtype may change from fixed-width to object on reading
            text = [label, list(values.shape), [str(v) for v in values.ravel().tolist()]]
            digest.update(json.dumps(text).encode())

    add_array(_CALL_INDEX, chunk.indices.astype(np.int64))
    for name in sorted(chunk.variables):
        variable = chunk.variables[name]
        about = [name, list(variable.dims), variable.attrs]
        digest.update(json.dumps(about, sort_keys=True, default=_io._json_default).encode())
        add_array(name, variable.data)
    for dim in sorted(chunk.coords):
        add_array(f"coordinate {dim}", chunk.coords[dim])
    return digest.hexdigest()


def _chunk_to_dataset(chunk: _ChunkResult, fingerprint: str) -> xr.Dataset:
    import xarray as xr

    data_vars: dict[str, Any] = {
        name: ((_CALL_DIM, *variable.dims), variable.data, variable.attrs)
        for name, variable in chunk.variables.items()
    }
    data_vars[_CALL_INDEX] = (_CALL_DIM, chunk.indices)
    coords = {dim: (dim, values) for dim, values in chunk.coords.items()}
    attrs = {"fingerprint": fingerprint, _CHECKSUM: _chunk_checksum(chunk)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _chunk_from_dataset(dataset: xr.Dataset) -> _ChunkResult:
    variables = {
        str(name): _Variable(
            tuple(str(d) for d in variable.dims[1:]), variable.values, dict(variable.attrs)
        )
        for name, variable in dataset.data_vars.items()
        if name != _CALL_INDEX
    }
    coords = {str(name): dataset[name].values for name in dataset.coords}
    indices = dataset[_CALL_INDEX].values
    if indices.dtype.kind not in "iu":
        raise ValueError(f"{_CALL_INDEX} has dtype {indices.dtype}, not integers")
    for name, variable in variables.items():
        if variable.data.shape[:1] != indices.shape:
            raise ValueError(f"output {name!r} does not have one entry per call")
    return _ChunkResult(indices.astype(np.int64), variables, coords)


def _write_text_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str:
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


# --- description, fingerprint, provenance ---------------------------------------------------


def _callable_name(func: Any) -> str:
    if isinstance(func, Observable):
        return func.name
    if isinstance(func, functools.partial):
        return _callable_name(func.func)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return str(name) if name else type(func).__name__


def _default_output_name(observable: Callable[..., Any]) -> str:
    name = _callable_name(observable).rsplit(".", 1)[-1]
    return name if name.isidentifier() else "value"


def _qualified_name(func: Any) -> str:
    target = func
    while isinstance(target, (Observable, functools.partial)):
        target = target.func
    module = getattr(target, "__module__", None) or type(target).__module__
    return f"{module}.{_callable_name(target)}"


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
                name: [spec.units, None if spec.dims is None else list(spec.dims), spec.long_name]
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
    identity: dict[str, Any] = {"name": _qualified_name(func), "source": _source_digest(func)}
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


def _describe(observable: Callable[..., Any], plan: _Plan) -> dict[str, Any]:
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


def _fingerprint(description: Mapping[str, Any]) -> str:
    text = json.dumps(description, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _provenance(observable: Callable[..., Any], plan: _Plan, fingerprint: str) -> dict[str, Any]:
    import scipy
    import xarray as xr

    import mesoscopic

    seeds = {
        name: values.tolist()
        for name, values in zip(plan.axis_names, plan.axis_values)
        if "seed" in name.lower()
    }
    seeds.update({k: _jsonable(v) for k, v in plan.fixed_params.items() if "seed" in k.lower()})
    return {
        "mesoscopic_version": mesoscopic.__version__,
        "software": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "xarray": xr.__version__,
            "platform": sys.platform,
        },
        "observable": _qualified_name(observable),
        "grid": {name: values.tolist() for name, values in zip(plan.axis_names, plan.axis_values)},
        "batch_axis": plan.batch_axis,
        "fixed_params": _jsonable(plan.fixed_params),
        "seeds": seeds,
        "fingerprint": fingerprint,
        "created": _utc_now(),
    }


# --- assembling the dataset -----------------------------------------------------------------


def _assemble(plan: _Plan, chunks: Sequence[_ChunkResult], attrs: dict[str, Any]) -> xr.Dataset:
    import xarray as xr

    if not chunks:
        raise ValueError("the sweep produced no results")  # unreachable for a valid grid
    reference = chunks[0]

    def where(chunk: _ChunkResult) -> str:
        return _show_point(plan.point(int(chunk.indices[0])), plan)

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


# --- progress -------------------------------------------------------------------------------


class _NoProgress:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(show: bool | None, *, total: int, initial: int, name: str) -> Any:
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return _NoProgress()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, initial=initial, unit="pt", desc=name, dynamic_ncols=True)
