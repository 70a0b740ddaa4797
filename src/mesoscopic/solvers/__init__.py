"""Scattering solvers. All return :class:`mesoscopic.scattering.SMatrix`.

* :mod:`~mesoscopic.solvers.sparse`: sparse direct solver by wave-function matching, for any
  geometry and any number of leads.
* :mod:`~mesoscopic.solvers.rgf`: recursive Green's functions over slices, batched over
  energies, on the CPU or a GPU.
* :mod:`~mesoscopic.solvers.options`: :class:`SolverOptions`, the settings of the batched
  solvers in one validated object (``options=`` of :func:`mesoscopic.transmission`,
  :func:`mesoscopic.smatrices` and the physics modules built on them).
"""

from __future__ import annotations

from . import options, rgf, sparse
from .options import SolverOptions
from .rgf import scattering_matrices, transmission_matrices
from .sparse import scattering_matrix, scattering_states

__all__ = [
    "SolverOptions",
    "options",
    "rgf",
    "scattering_matrices",
    "scattering_matrix",
    "scattering_states",
    "sparse",
    "transmission_matrices",
]
