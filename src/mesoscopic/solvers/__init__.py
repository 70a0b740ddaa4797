"""Scattering solvers. All return :class:`mesoscopic.scattering.SMatrix`.

* :mod:`~mesoscopic.solvers.sparse`: sparse direct solver by wave-function matching, for any
  geometry and any number of leads.
* :mod:`~mesoscopic.solvers.rgf`: recursive Green's functions over slices, batched over
  energies, on the CPU or a GPU.
"""

from __future__ import annotations

from . import sparse
from .sparse import scattering_matrix, scattering_states

__all__ = ["scattering_matrix", "scattering_states", "sparse"]

from . import rgf
from .rgf import scattering_matrices, transmission_matrices

__all__ += ["rgf", "scattering_matrices", "transmission_matrices"]
