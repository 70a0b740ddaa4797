"""Scattering solvers. All return :class:`mesoscopic.scattering.SMatrix`.

* :mod:`~mesoscopic.solvers.sparse`: sparse direct solver by wave-function matching, for any
  geometry and any number of leads.
"""

from __future__ import annotations

from . import sparse
from .sparse import scattering_matrix, scattering_states

__all__ = ["scattering_matrix", "scattering_states", "sparse"]
