"""run_sweep: the plan, the checkpoint, the executor and the dataset put together."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .. import io as _io
from ._checkpoint import CheckpointStore
from ._chunks import ChunkResult
from ._dataset import PROVENANCE_KEYS, assemble, provenance_attrs
from ._executors import ExecutorName, check_picklable, choose_executor, run_chunks
from ._fingerprint import describe_sweep, fingerprint_of
from ._memory import check_memory
from ._observable import callable_name
from ._plan import make_plan

if TYPE_CHECKING:
    import xarray as xr


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
    >>> from mesoscopic.sweep import Observable, run_sweep
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
    plan = make_plan(grid, fixed_params, batch_axis, units)
    chosen = choose_executor(executor, client, scheduler, workers)
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (automatic), got {progress!r}")
    user_attrs = dict(attrs or {})
    clashes = sorted(set(map(str, user_attrs)) & set(PROVENANCE_KEYS))
    if clashes:
        raise ValueError(
            f"attrs may not set {clashes}: these names hold the provenance "
            f"({', '.join(PROVENANCE_KEYS)}); choose other names"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    points_per_call = plan.batch_length
    check_memory(plan.n_calls * points_per_call, plan.n_calls, None, grid=plan.call_sizes)
    if chosen == "processes":
        check_picklable(observable, plan.fixed_params)

    description = describe_sweep(observable, plan)
    fingerprint = fingerprint_of(description)
    store = None
    done: list[ChunkResult] = []
    if checkpoint is not None:
        store = CheckpointStore(checkpoint)
        store.open(description, fingerprint, overwrite=overwrite)
        done = store.load_chunks(fingerprint, plan.n_calls)

    sized = False

    def check_result_size(result: ChunkResult) -> None:
        nonlocal sized
        if not sized:
            sized = True
            per_call = sum(v.data.nbytes for v in result.variables.values()) / len(result.indices)
            check_memory(
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
        name=callable_name(observable),
    )

    def collect(result: ChunkResult) -> None:
        check_result_size(result)
        if store is not None:
            store.write_chunk(result, fingerprint)
        results.append(result)
        bar.update(len(result.indices) * points_per_call)

    try:
        run_chunks(
            chosen,
            observable,
            plan,
            remaining,
            collect,
            chunk_size=chunk_size,
            workers=workers,
            client=client,
            scheduler=scheduler,
            finished=results,
            saved_in=None if store is None else store.directory,
        )
    finally:
        bar.close()

    provenance = provenance_attrs(observable, plan, fingerprint)
    dataset = assemble(plan, results, {**user_attrs, **provenance})
    if store is not None:
        _io.save(dataset, store.final_path)
    return dataset


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
