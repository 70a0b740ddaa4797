"""Kwant's ``kwant.solvers.mumps`` interface, computed by SciPy's sparse LU (not MUMPS).

Scripts written for Kwant call ``kwant.solvers.mumps.smatrix`` or create
``kwant.solvers.mumps.Solver()`` and set its ``options(nrhs=..., ordering=...,
sparse_rhs=...)``. This module accepts those calls so such scripts run unchanged, but
**no MUMPS library is used**: every computation is that of the sparse direct solver
(:mod:`mesoscopic.solvers.sparse`, SciPy's SuperLU factorization), and the options are
checked and recorded (:meth:`Solver.options` returns them) without changing how the
system is solved. Results are the same as with MUMPS to rounding; speed and memory are
those of SuperLU.

Examples
--------
>>> from mesoscopic.solvers import mumps
>>> solver = mumps.Solver()
>>> solver.options(nrhs=4, ordering="amd")["ordering"]   # returns the previous options
'kwant_decides'
>>> solver.options()["ordering"]
'amd'
"""

from __future__ import annotations

from typing import Any

from .. import _checks
from . import sparse

__all__ = ["Solver", "greens_function", "ldos", "smatrix", "wave_function"]

#: The orderings Kwant's MUMPS solver accepts for ``options(ordering=...)``.
ORDERINGS = ("pord", "metis", "scotch", "auto", "amd", "amf", "qamd", "kwant_decides")

_DEFAULTS: dict[str, Any] = {"nrhs": 6, "ordering": "kwant_decides", "sparse_rhs": False}


class Solver(sparse.Solver):
    """The sparse direct solver with the options interface of Kwant's MUMPS solver.

    ``smatrix``, ``greens_function``, ``wave_function`` and ``ldos`` are those of
    :class:`mesoscopic.solvers.sparse.Solver` (SciPy's SuperLU, not MUMPS). The options
    are validated and kept, but do not change the computation.
    """

    def __init__(self) -> None:
        self._options: dict[str, Any] = dict(_DEFAULTS)

    def reset_options(self) -> dict[str, Any]:
        """Restore the default options; returns the previous ones."""
        previous = dict(self._options)
        self._options = dict(_DEFAULTS)
        return previous

    def options(
        self, nrhs: int | None = None, ordering: str | None = None, sparse_rhs: bool | None = None
    ) -> dict[str, Any]:
        """Set Kwant's MUMPS options (recorded only); returns the previous options.

        Parameters
        ----------
        nrhs : int, optional
            Right-hand sides per solve in MUMPS (>= 1).
        ordering : str, optional
            MUMPS fill-in ordering, one of :data:`ORDERINGS`.
        sparse_rhs : bool, optional
            Whether MUMPS takes sparse right-hand sides.

        Returns
        -------
        dict
            The options before this call.
        """
        previous = dict(self._options)
        if nrhs is not None:
            self._options["nrhs"] = _checks.positive_int(nrhs, "nrhs")
        if ordering is not None:
            if ordering not in ORDERINGS:
                raise ValueError(f"ordering must be one of {list(ORDERINGS)}, got {ordering!r}")
            self._options["ordering"] = ordering
        if sparse_rhs is not None:
            self._options["sparse_rhs"] = bool(sparse_rhs)
        return previous


#: The instance behind the module-level functions.
default_solver = Solver()

smatrix = default_solver.smatrix
greens_function = default_solver.greens_function
wave_function = default_solver.wave_function
ldos = default_solver.ldos
