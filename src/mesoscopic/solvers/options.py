"""Solver settings in one object: which solver, where it runs, and how the batch is split.

:class:`SolverOptions` holds every setting of the batched solvers
(:func:`mesoscopic.transmission`, :func:`mesoscopic.smatrices`) and is the one way the
physics modules that compute S-matrices (:mod:`mesoscopic.noise`,
:mod:`mesoscopic.capacitor`, :mod:`mesoscopic.spin`, :mod:`mesoscopic.thermoelectric`) take
them, as ``options=``. The settings are validated once, when the object is made; it is
frozen, hashable and picklable, so one object can be shared by a whole study.

The batched entries also accept the settings as individual keywords (``solver=``,
``device=``, ...), which build a :class:`SolverOptions`; giving both ``options=`` and a
keyword is an error rather than a silent precedence rule.

Examples
--------
>>> from mesoscopic.solvers import SolverOptions
>>> options = SolverOptions(solver="rgf", workers=2)
>>> options.solver, options.device, options.workers
('rgf', 'cpu', 2)
>>> options.replace(workers=1).workers
1
>>> SolverOptions(solver="lu")
Traceback (most recent call last):
    ...
ValueError: solver must be one of ('auto', 'rgf', 'sparse'), got 'lu'
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .. import _checks
from . import _backend

__all__ = ["SOLVERS", "SolverOptions", "solver_options"]

#: Solver names accepted by :class:`SolverOptions` (and so by every batched entry).
SOLVERS = ("auto", "rgf", "sparse")

#: The batched solvers by name, and the devices, as types.
SolverName = Literal["auto", "rgf", "sparse"]
DeviceName = Literal["cpu", "gpu"]

_FIELDS = ("solver", "device", "workers", "chunk_size", "memory_limit", "blas_threads")


def _optional_count(value: Any, name: str) -> int | None:
    return None if value is None else _checks.positive_int(value, name, also=" or None")


@dataclass(frozen=True)
class SolverOptions:
    """Settings of the batched scattering solvers, validated once.

    Parameters
    ----------
    solver : {"auto", "rgf", "sparse"}
        ``"rgf"``: recursive Green's functions over slices, vectorized over the energies;
        ``"sparse"``: the sparse direct solver, energy by energy (CPU only); ``"auto"``:
        RGF unless the system slices badly or one energy would not fit in memory (see
        :mod:`mesoscopic.batch`).
    device : {"cpu", "gpu"}
        Where the RGF recursion runs (``"gpu"`` needs CuPy and a CUDA device; checked when
        a solver runs, not here). Case-insensitive; stored lower case.
    workers : int
        Processes solving contiguous chunks of energies (CPU only; 1 = no pool).
    chunk_size : int or None
        Energies per RGF batch (None: what fits in memory, capped).
    memory_limit : float or None
        Memory budget in bytes for one RGF batch (None: from the free memory).
    blas_threads : int or None
        BLAS threads per process during an RGF sweep on the CPU (None: one; see
        :mod:`mesoscopic.batch`).

    Raises
    ------
    ValueError
        An unknown solver or device, ``solver="sparse"`` with ``device="gpu"``,
        ``workers > 1`` with ``device="gpu"``, a count that is not a positive integer, or a
        memory limit that is not a positive, finite number of bytes.

    Examples
    --------
    >>> SolverOptions()
    SolverOptions(solver='auto', device='cpu', workers=1, chunk_size=None, memory_limit=None, blas_threads=None)
    >>> SolverOptions(device="GPU").device
    'gpu'
    >>> SolverOptions(solver="sparse", device="gpu")
    Traceback (most recent call last):
        ...
    ValueError: solver='sparse' runs on the CPU only; got device='gpu'
    """  # noqa: E501

    solver: SolverName = "auto"
    device: DeviceName = "cpu"
    workers: int = 1
    chunk_size: int | None = None
    memory_limit: float | None = None
    blas_threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.solver, str) or self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        device = _backend.check_device(self.device)
        if self.solver == "sparse" and device != "cpu":
            raise ValueError(f"solver='sparse' runs on the CPU only; got device={self.device!r}")
        workers = _checks.positive_int(self.workers, "workers")
        if workers != 1 and device != "cpu":
            raise ValueError(
                f"workers > 1 runs processes on the CPU; got workers={workers} with "
                f"device={self.device!r} (a GPU batch is one process)"
            )
        memory_limit = self.memory_limit
        if memory_limit is not None:
            if (
                isinstance(memory_limit, bool)
                or not isinstance(memory_limit, numbers.Real)
                or not math.isfinite(memory_limit)
                or memory_limit <= 0
            ):
                raise ValueError(
                    "memory_limit must be a positive, finite number of bytes or None, got "
                    f"{memory_limit!r}"
                )
            memory_limit = float(memory_limit)
        object.__setattr__(self, "device", device)
        object.__setattr__(self, "workers", workers)
        object.__setattr__(self, "chunk_size", _optional_count(self.chunk_size, "chunk_size"))
        object.__setattr__(self, "memory_limit", memory_limit)
        object.__setattr__(
            self, "blas_threads", _optional_count(self.blas_threads, "blas_threads")
        )

    def replace(self, **changes: Any) -> SolverOptions:
        """A copy with some settings changed (validated again).

        Examples
        --------
        >>> SolverOptions(solver="rgf").replace(chunk_size=16).chunk_size
        16
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise TypeError(
                f"SolverOptions has no setting {unknown[0]!r}; its settings are {_FIELDS}"
            )
        return dataclasses.replace(self, **changes)

    def rgf_keywords(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`mesoscopic.solvers.rgf.RGFProblem.transmission`
        and ``.smatrices`` these settings stand for."""
        return {
            "device": self.device,
            "chunk_size": self.chunk_size,
            "workers": self.workers,
            "memory_limit": self.memory_limit,
            "blas_threads": self.blas_threads,
        }


def solver_options(options: Any = None, /, **keywords: Any) -> SolverOptions:
    """One :class:`SolverOptions` from ``options=`` or from individual keywords, not both.

    Parameters
    ----------
    options : SolverOptions, mapping or None
        The settings as an object, or as a mapping of its field names (a TOML table).
    **keywords
        The settings as individual keywords (``solver=``, ``device=``, ...); a keyword whose
        value is None counts as not given.

    Returns
    -------
    SolverOptions

    Raises
    ------
    TypeError
        Both ``options`` and a keyword given; ``options`` of another type; an unknown
        setting.

    Examples
    --------
    >>> solver_options(solver="sparse").solver
    'sparse'
    >>> solver_options({"workers": 2}).workers
    2
    >>> solver_options(SolverOptions(), solver="rgf")
    Traceback (most recent call last):
        ...
    TypeError: give the solver settings either as options=SolverOptions(...) or as keywords, not both; got options and solver='rgf'
    """  # noqa: E501
    unknown = sorted(set(keywords) - set(_FIELDS))
    if unknown:
        raise TypeError(f"unknown solver setting {unknown[0]!r}; the settings are {_FIELDS}")
    given = {name: value for name, value in keywords.items() if value is not None}
    if options is None:
        return SolverOptions(**given)
    if given:
        shown = ", ".join(f"{name}={value!r}" for name, value in given.items())
        raise TypeError(
            "give the solver settings either as options=SolverOptions(...) or as keywords, "
            f"not both; got options and {shown}"
        )
    if isinstance(options, SolverOptions):
        return options
    if isinstance(options, Mapping):
        unknown = sorted(str(name) for name in set(options) - set(_FIELDS))
        if unknown:
            raise TypeError(f"options has no setting {unknown[0]!r}; the settings are {_FIELDS}")
        return SolverOptions(**options)
    raise TypeError(
        "options must be a mesoscopic.solvers.SolverOptions (or a mapping of its settings), "
        f"got {type(options).__name__}"
    )
