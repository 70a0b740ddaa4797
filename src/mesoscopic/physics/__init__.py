"""Lead physics under the names Kwant scripts use: ``physics.Bands(lead)``.

Examples
--------
>>> import mesoscopic as meso
>>> lat = meso.lattice.chain(norbs=1)
>>> lead = meso.Builder(meso.TranslationalSymmetry((-1,)))
>>> lead[lat(0)] = 0.0
>>> lead[lat.neighbors()] = -1.0
>>> bands = meso.physics.Bands(lead.finalized())
>>> [round(float(e), 12) for e in bands(0.0)]
[-2.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _checks
from .. import leads as _leads
from ..system import InfiniteSystem

__all__ = ["Bands"]

#: Largest stack of Bloch Hamiltonians (bytes) that ``Bands.energies`` diagonalizes at once.
_BATCH_BYTES = 64 << 20


class Bands:
    """Band structure of a finalized lead, callable on a momentum.

    Parameters
    ----------
    lead : InfiniteSystem
        A finalized lead (``fsys.leads[i]`` or ``lead_builder.finalized()``).
    params : dict, optional
        Parameter values by name.

    Calling ``bands(k)`` returns the sorted energies at momentum k (in units of
    1/period, H(k) = h_cell + hop e^{ik} + h.c.), shape (n_orbitals,);
    ``bands(k, derivative_order=1)`` also returns the velocities dE/dk.
    """

    def __init__(
        self,
        lead: InfiniteSystem,
        args: tuple[Any, ...] = (),
        *,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if args:
            raise TypeError("positional args are not supported; pass params={name: value}")
        if not isinstance(lead, InfiniteSystem):
            raise TypeError(
                f"Bands needs a finalized lead (InfiniteSystem), got {type(lead).__name__}"
            )
        self._bands = _leads.Bands(lead.cell_hamiltonian(params), lead.inter_cell_hopping(params))

    def __call__(self, k: float, derivative_order: int = 0) -> Any:
        if np.ndim(k) != 0:
            raise TypeError(
                f"k must be one momentum (a real number), got an array of shape {np.shape(k)}; "
                "use Bands.energies(momenta) for many"
            )
        return self._bands(k, derivative_order=derivative_order)

    def energies(self, momenta: Any) -> NDArray[np.float64]:
        """Energies at many momenta, shape (n_k, n_orbitals).

        The Bloch Hamiltonians are diagonalized in batches of at most
        ``_BATCH_BYTES`` bytes, so the memory stays bounded for any number of momenta.
        """
        ks = np.ravel(_checks.real_array(momenta, "momenta"))
        n = self._bands.h_cell.shape[0]
        batch = max(1, _BATCH_BYTES // (16 * n * n))
        parts = [
            _leads.bands(self._bands.h_cell, self._bands.hop, ks[start : start + batch])
            for start in range(0, len(ks), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, n))
