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

from ._executors import ExecutorName as ExecutorName
from ._memory import check_memory as _check_memory  # noqa: F401 (the meso command's estimate)
from ._observable import Observable, Output
from ._run import run_sweep

__all__ = ["Observable", "Output", "run_sweep"]
