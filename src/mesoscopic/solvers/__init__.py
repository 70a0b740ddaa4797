"""Scattering solvers. They return :class:`mesoscopic.scattering.SMatrix` (``greens_function``:
:class:`mesoscopic.scattering.GreensFunction`).

* :mod:`~mesoscopic.solvers.sparse`: sparse direct solver by wave-function matching, for any
  geometry and any number of leads; its ``Solver`` class and ``smatrix``,
  ``greens_function``, ``wave_function``, ``ldos`` take finalized systems, as Kwant's.
* :mod:`~mesoscopic.solvers.default`: the default solver's functions (the top-level
  :func:`mesoscopic.smatrix` and friends), at Kwant's ``kwant.solvers.default`` path.
* :mod:`~mesoscopic.solvers.mumps`: Kwant's MUMPS solver interface (options accepted), computed
  by the same SciPy sparse LU as ``sparse``: no MUMPS library is used.
* :mod:`~mesoscopic.solvers.rgf`: recursive Green's functions over slices, batched over
  energies, on the CPU or a GPU.
* :mod:`~mesoscopic.solvers.options`: :class:`SolverOptions`, the settings of the batched
  solvers in one validated object (``options=`` of :func:`mesoscopic.transmission`,
  :func:`mesoscopic.smatrices` and the physics modules built on them).
"""

from __future__ import annotations

from . import default, mumps, options, rgf, sparse
from .options import SolverOptions
from .rgf import scattering_matrices, transmission_matrices
from .sparse import scattering_matrix, scattering_states

__all__ = [
    "SolverOptions",
    "default",
    "mumps",
    "options",
    "rgf",
    "scattering_matrices",
    "scattering_matrix",
    "scattering_states",
    "sparse",
    "transmission_matrices",
]
