"""The default solver's functions, under Kwant's ``kwant.solvers.default`` path.

``smatrix``, ``greens_function``, ``wave_function`` and ``ldos`` here are the same objects
as the top-level :func:`mesoscopic.smatrix` and friends (:mod:`mesoscopic.transport`): the
sparse direct solver (:mod:`mesoscopic.solvers.sparse`, SciPy's SuperLU) on a finalized
system. Kwant's default is its MUMPS solver when installed; results agree, the linear
algebra library differs.

Examples
--------
>>> import mesoscopic as meso
>>> from mesoscopic.solvers import default
>>> default.smatrix is meso.transport.smatrix
True
"""

from __future__ import annotations

from ..transport import greens_function, ldos, smatrix, wave_function

__all__ = ["greens_function", "ldos", "smatrix", "wave_function"]
